package decode

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
)

// ipView is what a journey needs of one IP packet, read from its bytes
// starting at the IP header: where it goes, and a fingerprint of the
// fields that forwarding and NAT leave alone, so that the same packet is
// recognised in every namespace, on every device and in every kernel
// record that shows it.
//
// (The fields are in an order that leaves no padding between them: a
// replay reads millions of views, on other goroutines than made them.)
type ipView struct {
	fp uint64 // 0 when the packet could not be read
	ep Endpoints
	// quoted is the start of the packet an ICMP error quotes, nil when
	// this is not an ICMP error.
	quoted []byte
	// TCP
	tcpSeq, tcpAck uint32
	tcpPayload     uint32
	tcpFlags       uint8
	proto          uint8 // transport protocol number
	ttl            uint8 // IPv4 TTL or IPv6 hop limit: not in the fingerprint (routers lower it)
	// ICMP and ICMPv6
	icmpType, icmpCode uint8
}

// TCP flag bits.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

var fpSeed = maphash.MakeSeed()

// readIP reads an IPv4 or IPv6 packet from its header on. The
// fingerprint covers: the IP version and transport protocol, the IPv4
// identification, total length and fragment field (for IPv6 the payload
// length and flow label), and what identifies the segment: the TCP
// sequence number and flags, the ICMP type, code, and echo id and
// sequence, the UDP length and first 12 payload bytes (all a trace
// event's 20 transport header bytes show). Addresses, ports,
// TTL and checksums are left out: NAT and routers change them.
func readIP(b []byte) (v ipView, ok bool) {
	if len(b) < 1 {
		return v, false
	}
	var h maphash.Hash
	h.SetSeed(fpSeed)
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return v, false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return v, false
		}
		if n := int(binary.BigEndian.Uint16(b[2:])); n >= ihl && n < len(b) {
			b = b[:n] // without link-layer padding
		}
		v.proto, v.ttl = b[9], b[8]
		src, _ := netip.AddrFromSlice(b[12:16])
		dst, _ := netip.AddrFromSlice(b[16:20])
		v.ep = Endpoints{Src: netip.AddrPortFrom(src, 0), Dst: netip.AddrPortFrom(dst, 0)}
		h.Write([]byte{4, v.proto, b[4], b[5], b[2], b[3], b[6] & 0x3f, b[7]}) // id, total length, fragment
		if frag := binary.BigEndian.Uint16(b[6:]) & 0x1fff; frag != 0 {
			v.fp = h.Sum64() | 1 // a later fragment: no transport header
			return v, true
		}
		l4 = b[ihl:]
	case 6:
		if len(b) < 40 {
			return v, false
		}
		if n := 40 + int(binary.BigEndian.Uint16(b[4:])); n < len(b) {
			b = b[:n] // without link-layer padding
		}
		src, _ := netip.AddrFromSlice(b[8:24])
		dst, _ := netip.AddrFromSlice(b[24:40])
		v.ep = Endpoints{Src: netip.AddrPortFrom(src, 0), Dst: netip.AddrPortFrom(dst, 0)}
		v.ttl = b[7]
		next, rest := b[6], b[40:]
	exts:
		for i := 0; i < 8; i++ { // extension headers
			switch next {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(rest) < 8 {
					return v, false
				}
				n := (int(rest[1]) + 1) * 8
				if len(rest) < n {
					return v, false
				}
				next, rest = rest[0], rest[n:]
			case 44: // fragment
				if len(rest) < 8 {
					return v, false
				}
				h.Write(rest[4:8]) // identification
				if binary.BigEndian.Uint16(rest[2:])&0xfff8 != 0 {
					next, rest = rest[0], nil // a later fragment: no transport header
					break exts
				}
				next, rest = rest[0], rest[8:]
			default:
				break exts
			}
		}
		v.proto = next
		h.Write([]byte{6, v.proto, b[4], b[5], b[1] & 0x0f, b[2], b[3]}) // payload length, flow label
		if isLocalScope(src) || isLocalScope(dst) {
			// No NAT rewrites these, and without an identification two
			// hosts' neighbour discovery would look alike.
			h.Write(b[8:40])
		}
		l4 = rest
	default:
		return v, false
	}
	switch v.proto {
	case 6: // TCP
		if len(l4) >= 14 {
			v.ep.Src = netip.AddrPortFrom(v.ep.Src.Addr(), binary.BigEndian.Uint16(l4))
			v.ep.Dst = netip.AddrPortFrom(v.ep.Dst.Addr(), binary.BigEndian.Uint16(l4[2:]))
			v.tcpSeq = binary.BigEndian.Uint32(l4[4:])
			v.tcpAck = binary.BigEndian.Uint32(l4[8:])
			v.tcpFlags = l4[13]
			h.Write(l4[4:8])
			h.WriteByte(v.tcpFlags &^ 0xc0) // without ECE/CWR, which routers may set
			if len(l4) >= 13 {
				v.tcpPayload = uint32(tcpPayloadLen(b, l4))
			}
		}
	case 17, 132: // UDP, SCTP
		if len(l4) >= 4 {
			v.ep.Src = netip.AddrPortFrom(v.ep.Src.Addr(), binary.BigEndian.Uint16(l4))
			v.ep.Dst = netip.AddrPortFrom(v.ep.Dst.Addr(), binary.BigEndian.Uint16(l4[2:]))
		}
		if v.proto == 17 && len(l4) >= 6 {
			// The UDP length and the first payload bytes: an unconnected
			// socket's datagrams with DF set all have IPv4 id 0, and IPv6
			// has no id at all. Twelve of them reach past a QUIC short
			// header's flags and 8-byte connection id into its packet
			// number.
			h.Write(l4[4:6])
			if len(l4) > 8 {
				h.Write(l4[8:min(len(l4), 20)])
			}
		}
		if v.proto == 132 && len(l4) >= 8 {
			h.Write(l4[4:8]) // verification tag
		}
	case 1, 58: // ICMP, ICMPv6
		if len(l4) >= 2 {
			v.icmpType, v.icmpCode = l4[0], l4[1]
			h.Write(l4[:2])
			if isICMPError(v.proto, v.icmpType) {
				if len(l4) > 8 {
					v.quoted = l4[8:]
				}
			} else if len(l4) >= 8 {
				h.Write(l4[4:8]) // echo id and sequence (or the type's first word)
			}
		}
	}
	v.fp = h.Sum64() | 1
	return v, true
}

// tcpPayloadLen is the segment's payload length from the IP lengths, or
// 0 when the IP header does not say.
func tcpPayloadLen(ip, l4 []byte) int {
	off := int(l4[12]>>4) * 4
	ipHdr := len(ip) - len(l4)
	var total int
	switch ip[0] >> 4 {
	case 4:
		total = int(binary.BigEndian.Uint16(ip[2:]))
	case 6:
		total = 40 + int(binary.BigEndian.Uint16(ip[4:]))
	}
	if n := total - ipHdr - off; n > 0 {
		return n
	}
	return 0
}

// isICMPError says whether an ICMP or ICMPv6 type quotes the packet that
// caused it.
func isICMPError(proto, typ uint8) bool {
	if proto == 1 {
		switch typ {
		case 3, 4, 5, 11, 12: // unreachable, source quench, redirect, time exceeded, parameter problem
			return true
		}
		return false
	}
	return typ < 128 // ICMPv6 errors are types 0-127
}

// icmpErrorName names the common ICMP errors, for a journey step.
func icmpErrorName(proto, typ, code uint8) string {
	if proto == 1 {
		switch typ {
		case 3:
			switch code {
			case 0:
				return "net unreachable"
			case 1:
				return "host unreachable"
			case 2:
				return "protocol unreachable"
			case 3:
				return "port unreachable"
			case 4:
				return "fragmentation needed"
			case 9, 10:
				return "net or host prohibited"
			case 13:
				return "administratively prohibited"
			}
			return "destination unreachable"
		case 11:
			return "time exceeded"
		case 5:
			return "redirect"
		case 12:
			return "parameter problem"
		}
		return "ICMP error"
	}
	switch typ {
	case 1:
		switch code {
		case 0:
			return "no route"
		case 1:
			return "administratively prohibited"
		case 3:
			return "address unreachable"
		case 4:
			return "port unreachable"
		case 5, 6:
			return "source address failed policy"
		}
		return "destination unreachable"
	case 2:
		return "packet too big"
	case 3:
		return "time exceeded"
	case 4:
		return "parameter problem"
	}
	return "ICMPv6 error"
}

// resetKey identifies the TCP reset that answers a segment: it comes
// from the segment's destination to its source, ports swapped, and
// acknowledges the segment's sequence space.
func resetKey(ep Endpoints, ack uint32) uint64 {
	var b [40]byte // hashed at once: most frames make a key
	a := ep.Dst.Addr().As16()
	copy(b[:16], a[:])
	a = ep.Src.Addr().As16()
	copy(b[16:32], a[:])
	binary.BigEndian.PutUint16(b[32:], ep.Dst.Port())
	binary.BigEndian.PutUint16(b[34:], ep.Src.Port())
	binary.BigEndian.PutUint32(b[36:], ack)
	return maphash.Bytes(fpSeed, b[:]) | 1
}

// resetKeyOf is resetKey as the reset itself shows it: from its own
// endpoints (reversed back) and acknowledgement number.
func resetKeyOf(rst *ipView) uint64 {
	return resetKey(Endpoints{Src: rst.ep.Dst, Dst: rst.ep.Src}, rst.tcpAck)
}

// isLocalScope says whether an address never crosses a router or NAT:
// link-local or multicast.
func isLocalScope(a netip.Addr) bool {
	return a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsLinkLocalMulticast()
}

// IPLength returns the length on the wire of the IP packet that b
// begins (a trace event's header snapshot, or an NFLOG message's copy of
// its first bytes): what its header says, or len(b) when b is not an
// IPv4 or IPv6 header or holds more than it says.
func IPLength(b []byte) int {
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		return max(len(b), int(binary.BigEndian.Uint16(b[2:])))
	case len(b) >= 40 && b[0]>>4 == 6:
		return max(len(b), 40+int(binary.BigEndian.Uint16(b[4:])))
	}
	return len(b)
}
