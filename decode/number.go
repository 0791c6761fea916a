package decode

import "strconv"

// AppendUint appends v in decimal, writing the one- and two-digit values
// most packet fields hold without strconv's scratch buffer and copy.
func AppendUint(b []byte, v uint64) []byte {
	switch {
	case v < 10:
		return append(b, byte('0'+v))
	case v < 100:
		return append(b, byte('0'+v/10), byte('0'+v%10))
	}
	return strconv.AppendUint(b, v, 10)
}

// grow makes room for n more bytes without changing b's length.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), 2*cap(b)+n)
	copy(nb, b)
	return nb
}
