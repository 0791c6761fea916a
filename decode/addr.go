package decode

import (
	"net/netip"
	"strconv"
)

// AppendIP appends an IPv4 (4 bytes) or IPv6 (16 bytes) address in its
// usual text form; other lengths are appended as hex.
func AppendIP(b, ip []byte) []byte {
	switch len(ip) {
	case 4:
		b = grow(b, 15)
		for i, x := range ip {
			if i > 0 {
				b = append(b, '.')
			}
			if x >= 100 {
				b = append(b, '0'+x/100)
			}
			if x >= 10 {
				b = append(b, '0'+x/10%10)
			}
			b = append(b, '0'+x%10)
		}
		return b
	case 16:
		return netip.AddrFrom16([16]byte(ip)).AppendTo(b)
	}
	return appendHexBytes(b, ip, 0)
}

// AppendMAC appends a hardware address as colon-separated hex.
func AppendMAC(b, mac []byte) []byte {
	return appendHexBytes(b, mac, ':')
}

const hexDigits = "0123456789abcdef"

func appendHexBytes(b, v []byte, sep byte) []byte {
	for i, c := range v {
		if i > 0 && sep != 0 {
			b = append(b, sep)
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&15])
	}
	return b
}

// AppendHex appends v as 0x followed by at least four hex digits.
func AppendHex(b []byte, v uint64) []byte {
	b = append(b, '0', 'x')
	n := len(b)
	b = strconv.AppendUint(b, v, 16)
	for len(b)-n < 4 {
		b = append(b[:n+1], b[n:]...)
		b[n] = '0'
	}
	return b
}
