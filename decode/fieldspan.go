package decode

import (
	"encoding/binary"
	"strconv"

	"github.com/gopacket/gopacket/layers"
)

// FieldSpan locates one field of a layer in the frame's bytes.
//
// Key is the field's path as WriteFields writes it: "src" for a field,
// "options" for a list, "options[1]" for its second item (counting the
// items written, not the bytes' own numbering) and "options[1].kind" for
// a field of an object in a list. Off and Len are a byte range of the
// frame; a field packed in bits covers the bytes that hold them.
type FieldSpan struct {
	Key      string
	Off, Len int
}

// FieldSpans returns where the layer's fields lie in frame, the bytes the
// packet was decoded from. A field
// that is a name for other fields' bytes (an ICMP type's name) shares
// their span; one computed from more than the header (a payload length)
// or found outside the layer's Span has none. Every span returned lies
// inside the layer's Span.
func (l *Layer) FieldSpans(frame []byte) []FieldSpan {
	if l.dl == nil || (l.Err != nil && !l.Short) {
		return nil
	}
	lo, n := l.Span(frame)
	if n <= 0 || lo < 0 || lo+n > len(frame) {
		return nil
	}
	s := &spanList{frame: frame, lo: lo, hi: lo + n, base: lo}
	s.layer(l)
	return s.out
}

// spanList collects the spans of one layer. Offsets given to add are
// relative to base, the header's first byte in the frame; a span outside
// [lo, hi), the layer's Span, is left out.
type spanList struct {
	frame  []byte
	lo, hi int
	base   int
	out    []FieldSpan
}

func (s *spanList) add(key string, off, n int) {
	o := s.base + off
	if n <= 0 || off < 0 || o < s.lo || o+n > s.hi {
		return
	}
	s.out = append(s.out, FieldSpan{Key: key, Off: o, Len: n})
}

// sub adds the span of b, a subslice of the frame.
func (s *spanList) sub(key string, b []byte) {
	if len(b) == 0 || cap(b) > cap(s.frame) {
		return
	}
	s.add(key, offsetIn(s.frame, b)-s.base, len(b))
}

// hdr is the header's bytes: the layer's Span.
func (s *spanList) hdr() []byte { return s.frame[s.lo:s.hi] }

func item(list string, i int) string { return list + "[" + strconv.Itoa(i) + "]" }

func (s *spanList) layer(l *Layer) {
	switch v := l.dl.(type) {
	case *layers.Ethernet:
		s.add("src", 6, 6)
		s.add("dst", 0, 6)
		s.add("type", 12, 2)
	case *layers.LinuxSLL:
		s.add("pkttype", 0, 2)
		s.add("src", 6, len(v.Addr))
		s.add("type", 14, 2)
	case *layers.LinuxSLL2:
		s.add("pkttype", 10, 1)
		s.add("ifindex", 4, 4)
		s.add("src", 12, len(v.Addr))
		s.add("type", 0, 2)
	case *layers.Loopback:
		s.add("family", 0, 4)
	case *NFLOG:
		s.nflog(v)
	case *layers.ARP:
		s.arp(v)
	case *layers.Dot1Q:
		s.add("id", 0, 2) // 12 bits over two bytes
		s.add("pcp", 0, 1)
		s.add("type", 2, 2)
	case *mplsEntry:
		s.add("label", 0, 3) // 20 bits
		s.add("tc", 2, 1)
		s.add("bottom", 2, 1)
		s.add("ttl", 3, 1)
	case *ipv4Layer:
		s.ipv4(&v.IPv4)
	case *ipv6Layer:
		s.add("src", 8, 16)
		s.add("dst", 24, 16)
		s.add("hlim", 7, 1)
		s.add("next", 6, 1)
		s.add("flow", 1, 3) // 20 bits
		s.add("plen", 4, 2)
	case *layers.IPv6HopByHop:
		s.add("next", 0, 1)
		s.add("options", 2, len(v.Contents)-2)
	case *ipv6FragLayer:
		s.add("id", 4, 4)
		s.add("offset", 2, 2) // 13 bits
		s.add("more", 3, 1)
		s.add("next", 0, 1)
	case *ipv6OptsLayer:
		s.add("next", 0, 1)
		s.add("options", 2, len(v.Contents)-2)
	case *ipv6ExtLayer:
		s.add("next", 0, 1)
	case *icmpv4Layer:
		s.icmpv4(&v.ICMPv4)
	case *icmpv6Layer:
		s.icmpv6(&v.ICMPv6, l.detail)
	case *tcpLayer:
		s.tcp(v)
	case *udpLayer:
		s.add("sport", 0, 2)
		s.add("dport", 2, 2)
		if !v.short {
			s.add("ulen", 4, 2)
		}
	case *sctpLayer:
		s.add("sport", 0, 2)
		s.add("dport", 2, 2)
		s.add("vtag", 4, 4)
	case *layers.DNS:
		s.dns(v)
	case *vxlanLayer:
		s.add("vni", 4, 3)
	case *geneveLayer:
		s.add("vni", 4, 3)
		s.add("type", 2, 2)
	case *greLayer:
		s.gre(v)
	case *WireGuard:
		s.wireGuard(v)
	case *TLSHello:
		s.add("handshake", 5, 1)
		s.add("version", 9, 2)
		s.sub("sni", v.SNI)
		s.sub("alpn", v.ALPN)
	case *HTTP:
		s.http(v)
	}
}

func (s *spanList) ipv4(v *layers.IPv4) {
	s.add("src", 12, 4)
	s.add("dst", 16, 4)
	s.add("ttl", 8, 1)
	s.add("id", 4, 2)
	s.add("protocol", 9, 1)
	s.add("tlen", 2, 2)
	if v.Flags&layers.IPv4DontFragment != 0 {
		s.add("df", 6, 1)
	}
	if v.Flags&layers.IPv4MoreFragments != 0 {
		s.add("mf", 6, 1)
	}
	if v.FragOffset != 0 {
		s.add("frag_offset", 6, 2)
	}
	if len(v.Options) == 0 {
		return
	}
	s.add("options", 20, len(s.hdr())-20)
	// Each option in the order gopacket took them: end of list and no-op
	// are one byte, the others say their length.
	off := 20
	for i := range v.Options {
		n := max(1, int(v.Options[i].OptionLength))
		s.add(item("options", i), off, n)
		off += n
	}
}

func (s *spanList) arp(v *layers.ARP) {
	h, p := int(v.HwAddressSize), int(v.ProtAddressSize)
	s.add("op", 6, 2)
	s.add("src", 8+h, p)
	s.add("dst", 8+2*h+p, p)
	s.add("src_mac", 8, h)
	s.add("dst_mac", 8+h+p, h)
}

func (s *spanList) icmpv4(v *layers.ICMPv4) {
	t, c := v.TypeCode.Type(), v.TypeCode.Code()
	s.add("type", 0, 1)
	s.add("code", 1, 1)
	s.add("name", 0, 2)
	switch t {
	case layers.ICMPv4TypeEchoRequest, layers.ICMPv4TypeEchoReply:
		s.add("id", 4, 2)
		s.add("seq", 6, 2)
	case layers.ICMPv4TypeDestinationUnreachable:
		if c == layers.ICMPv4CodeFragmentationNeeded {
			s.add("mtu", 6, 2)
		}
	}
}

// icmpv6 spans the 4-byte header and the message body after it (the
// layer's Span covers both).
func (s *spanList) icmpv6(v *layers.ICMPv6, detail any) {
	s.add("type", 0, 1)
	s.add("code", 1, 1)
	s.add("name", 0, 2)
	if v.TypeCode.Type() == layers.ICMPv6TypePacketTooBig && len(v.Payload) >= 4 {
		s.add("mtu", 4, 4)
	}
	switch d := detail.(type) {
	case *layers.ICMPv6Echo:
		s.add("id", 4, 2)
		s.add("seq", 6, 2)
	case *layers.ICMPv6NeighborSolicitation:
		s.sub("target", d.TargetAddress)
	case *layers.ICMPv6NeighborAdvertisement:
		s.sub("target", d.TargetAddress)
	}
}

func (s *spanList) tcp(v *tcpLayer) {
	s.add("sport", 0, 2)
	s.add("dport", 2, 2)
	if v.hasFlags {
		s.add("flags", 13, 1)
	}
	s.add("seq", 4, 4)
	if v.short {
		return
	}
	if v.ACK {
		s.add("ack", 8, 4)
	}
	s.add("win", 14, 2)
	if len(v.Options) == 0 {
		return
	}
	s.add("options", 20, len(s.hdr())-20)
	// Offsets add up from the first option: gopacket keeps every option
	// it read (a bad one ends the list), each with its length.
	off, n := 20, 0
	for i := range v.Options {
		o := &v.Options[i]
		ln := max(1, int(o.OptionLength))
		switch o.OptionType {
		case layers.TCPOptionKindNop, layers.TCPOptionKindEndList:
			off += ln
			continue
		}
		key := item("options", n)
		n++
		s.add(key, off, ln)
		s.add(key+".kind", off, 1)
		switch {
		case o.OptionType == layers.TCPOptionKindMSS && len(o.OptionData) == 2:
			s.add(key+".value", off+2, 2)
		case o.OptionType == layers.TCPOptionKindWindowScale && len(o.OptionData) == 1:
			s.add(key+".value", off+2, 1)
		case o.OptionType == layers.TCPOptionKindTimestamps && len(o.OptionData) == 8:
			s.add(key+".val", off+2, 4)
			s.add(key+".ecr", off+6, 4)
		}
		off += ln
	}
}

func (s *spanList) gre(v *greLayer) {
	s.add("type", 2, 2)
	off := 4
	if v.ChecksumPresent || v.RoutingPresent {
		off += 4
	}
	if v.KeyPresent {
		s.add("key", off, 4)
		off += 4
	}
	if v.SeqPresent {
		s.add("seq", off, 4)
	}
}

func (s *spanList) wireGuard(v *WireGuard) {
	s.add("msg", 0, 1)
	switch v.Type {
	case wgInitiation:
		s.add("sender", 4, 4)
	case wgResponse:
		s.add("sender", 4, 4)
		s.add("receiver", 8, 4)
	case wgCookie:
		s.add("receiver", 4, 4)
	case wgData:
		s.add("receiver", 4, 4)
		s.add("counter", 8, 8)
	}
}

func (s *spanList) http(v *HTTP) {
	if v.Status != 0 {
		s.sub("version", v.Version)
		s.add("status", len(v.Version)+1, 3)
		s.sub("reason", v.Reason)
		return
	}
	s.sub("method", v.Method)
	s.sub("uri", v.Target)
	s.sub("version", v.Version)
	s.sub("host", v.Host) // after the first line: outside the Span
}

func (s *spanList) dns(v *layers.DNS) {
	s.add("id", 0, 2)
	s.add("qr", 2, 1)
	if v.OpCode != 0 {
		s.add("opcode", 2, 1)
	}
	if v.QR {
		s.add("rcode", 3, 1)
	}
	b := s.hdr()
	off := 12
	start := off
	for i := range v.Questions {
		end := dnsNameEnd(b, off)
		if end < 0 || end+4 > len(b) {
			return
		}
		key := item("questions", i)
		s.add(key, off, end+4-off)
		s.add(key+".name", off, end-off)
		s.add(key+".type", end, 2)
		off = end + 4
	}
	s.add("questions", start, off-start)
	start = off
	for i := range v.Answers {
		a := &v.Answers[i]
		end := dnsNameEnd(b, off)
		if end < 0 || end+10 > len(b) {
			return
		}
		rd := int(binary.BigEndian.Uint16(b[end+8:]))
		key := item("answers", i)
		s.add(key, off, end+10+rd-off)
		s.add(key+".name", off, end-off)
		s.add(key+".type", end, 2)
		s.add(key+".ttl", end+4, 4)
		if dnsDataShown(a) {
			s.add(key+".data", end+10, rd)
		}
		off = end + 10 + rd
	}
	if len(v.Answers) > 0 {
		s.add("answers", start, off-start)
	}
}

// dnsNameEnd returns the offset after the name at off, as it is written
// there (a compression pointer ends it), or -1.
func dnsNameEnd(b []byte, off int) int {
	for range 128 {
		if off >= len(b) {
			return -1
		}
		c := b[off]
		switch {
		case c == 0:
			return off + 1
		case c&0xc0 == 0xc0:
			if off+2 > len(b) {
				return -1
			}
			return off + 2
		case c&0xc0 != 0:
			return -1
		}
		off += int(c) + 1
	}
	return -1
}

// dnsDataShown says whether writeDNSData writes a record's data.
func dnsDataShown(a *layers.DNSResourceRecord) bool {
	switch a.Type {
	case layers.DNSTypeA, layers.DNSTypeAAAA, layers.DNSTypeCNAME, layers.DNSTypeNS,
		layers.DNSTypePTR, layers.DNSTypeMX:
		return true
	case layers.DNSTypeTXT:
		return len(a.TXTs) > 0
	}
	return false
}

// nflog finds the TLVs again, as DecodeFromBytes read them: a later TLV
// of a type replaces an earlier one.
func (s *spanList) nflog(n *NFLOG) {
	s.add("family", 0, 1)
	s.add("group", 2, 2)
	b := s.hdr()
	var at [nfulaGID + 1]struct{ off, n int }
	if len(b) >= 8 {
		order := tlvOrder(b[4:])
		for off := 4; off+4 <= len(b); {
			l := int(order.Uint16(b[off:]))
			typ := order.Uint16(b[off+2:])
			if l < 4 || off+l > len(b) {
				break
			}
			if int(typ) < len(at) {
				at[typ].off, at[typ].n = off+4, l-4
			}
			off += min((l+3)&^3, len(b)-off)
		}
	}
	u32 := func(key string, typ int) {
		s.add(key, at[typ].off, min(4, at[typ].n))
	}
	if n.HasHook && at[nfulaPacketHdr].n >= 3 {
		s.add("hook", at[nfulaPacketHdr].off+2, 1)
		s.add("hook_name", at[nfulaPacketHdr].off+2, 1)
	}
	s.sub("prefix", n.Prefix)
	for _, f := range []struct {
		key string
		typ int
		on  bool
	}{
		{"indev", nfulaIfindexIn, n.Indev != 0},
		{"outdev", nfulaIfindexOut, n.Outdev != 0},
		{"physindev", nfulaPhysIn, n.PhysIndev != 0},
		{"physoutdev", nfulaPhysOut, n.PhysOutdev != 0},
		{"mark", nfulaMark, n.HasMark},
		{"uid", nfulaUID, n.HasUID},
	} {
		if f.on {
			u32(f.key, f.typ)
		}
	}
}
