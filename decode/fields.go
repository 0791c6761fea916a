package decode

import (
	"github.com/gopacket/gopacket/layers"
)

// FieldWriter receives a layer's fields in order. Printers implement it:
// NDJSON writes each as a key, the TUI builds a tree. Byte slices and
// addresses are only valid during the call.
type FieldWriter interface {
	Str(key, val string)
	Text(key string, val []byte) // text from the packet, such as a DNS name
	Uint(key string, val uint64)
	Hex(key string, val uint64) // shown as 0x..., such as an EtherType
	Bool(key string, val bool)
	IP(key string, addr []byte) // 4 or 16 bytes
	MAC(key string, addr []byte)
	// BeginList starts a list of objects or values under key; each Begin
	// of an object inside it is closed by End.
	BeginList(key string)
	EndList()
	BeginObject()
	EndObject()
}

// WriteFields writes the layer's decoded fields. A layer whose decoding
// failed writes none; one decoded in part writes what it has.
func (l *Layer) WriteFields(w FieldWriter) {
	if l.dl == nil || (l.Err != nil && !l.Short) {
		return
	}
	switch v := l.dl.(type) {
	case *layers.Ethernet:
		w.MAC("src", v.SrcMAC)
		w.MAC("dst", v.DstMAC)
		w.Hex("type", uint64(v.EthernetType))
	case *layers.LinuxSLL:
		w.Str("pkttype", sllPacketType(uint8(v.PacketType)))
		w.MAC("src", v.Addr)
		w.Hex("type", uint64(v.EthernetType))
	case *layers.LinuxSLL2:
		w.Str("pkttype", sllPacketType(uint8(v.PacketType)))
		w.Uint("ifindex", uint64(v.InterfaceIndex))
		w.MAC("src", v.Addr)
		w.Hex("type", uint64(v.ProtocolType))
	case *layers.Loopback:
		w.Uint("family", uint64(v.Family))
	case *NFLOG:
		v.writeFields(w)
	case *layers.ARP:
		writeARP(w, v)
	case *layers.Dot1Q:
		w.Uint("id", uint64(v.VLANIdentifier))
		w.Uint("pcp", uint64(v.Priority))
		w.Hex("type", uint64(v.Type))
	case *mplsEntry:
		w.Uint("label", uint64(v.Label))
		w.Uint("tc", uint64(v.TrafficClass))
		w.Bool("bottom", v.StackBottom)
		w.Uint("ttl", uint64(v.TTL))
	case *ipv4Layer:
		writeIPv4(w, &v.IPv4)
	case *ipv6Layer:
		w.IP("src", v.SrcIP)
		w.IP("dst", v.DstIP)
		w.Uint("hlim", uint64(v.HopLimit))
		w.Uint("next", uint64(v.NextHeader))
		w.Uint("flow", uint64(v.FlowLabel))
		w.Uint("plen", uint64(v.Length))
	case *layers.IPv6HopByHop:
		w.Uint("next", uint64(v.NextHeader))
		w.Uint("options", uint64(len(v.Options)))
	case *ipv6FragLayer:
		w.Uint("id", uint64(v.Identification))
		w.Uint("offset", uint64(v.FragmentOffset)*8)
		w.Bool("more", v.MoreFragments)
		w.Uint("next", uint64(v.NextHeader))
	case *ipv6OptsLayer:
		w.Uint("next", uint64(v.NextHeader))
		w.Uint("options", uint64(len(v.Options)))
	case *ipv6ExtLayer:
		w.Uint("next", uint64(v.NextHeader))
	case *icmpv4Layer:
		writeICMPv4(w, &v.ICMPv4)
	case *icmpv6Layer:
		writeICMPv6(w, &v.ICMPv6, l.detail)
	case *tcpLayer:
		writeTCP(w, v)
	case *udpLayer:
		w.Uint("sport", uint64(v.SrcPort))
		w.Uint("dport", uint64(v.DstPort))
		if !v.short {
			w.Uint("ulen", uint64(v.Length))
		}
	case *sctpLayer:
		w.Uint("sport", uint64(v.SrcPort))
		w.Uint("dport", uint64(v.DstPort))
		w.Hex("vtag", uint64(v.VerificationTag))
	case *layers.DNS:
		writeDNS(w, v)
	case *vxlanLayer:
		w.Uint("vni", uint64(v.VNI))
	case *geneveLayer:
		w.Uint("vni", uint64(v.VNI))
		w.Hex("type", uint64(v.Protocol))
	case *greLayer:
		w.Hex("type", uint64(v.Protocol))
		if v.KeyPresent {
			w.Uint("key", uint64(v.Key))
		}
		if v.SeqPresent {
			w.Uint("seq", uint64(v.Seq))
		}
	case *WireGuard:
		w.Str("msg", v.TypeName())
		if v.Sender != 0 || v.Type == wgInitiation || v.Type == wgResponse {
			w.Hex("sender", uint64(v.Sender))
		}
		if v.Type != wgInitiation {
			w.Hex("receiver", uint64(v.Receiver))
		}
		if v.Type == wgData {
			w.Uint("counter", v.Counter)
		}
	case *TLSHello:
		w.Str("handshake", "client_hello")
		w.Hex("version", uint64(v.HelloVersion))
		if len(v.SNI) > 0 {
			w.Text("sni", v.SNI)
		}
		if len(v.ALPN) > 0 {
			w.Text("alpn", v.ALPN)
		}
	case *HTTP:
		writeHTTP(w, v)
	}
}

func writeIPv4(w FieldWriter, v *layers.IPv4) {
	w.IP("src", v.SrcIP)
	w.IP("dst", v.DstIP)
	w.Uint("ttl", uint64(v.TTL))
	w.Uint("id", uint64(v.Id))
	w.Uint("protocol", uint64(v.Protocol))
	w.Uint("tlen", uint64(v.Length))
	if v.Flags&layers.IPv4DontFragment != 0 {
		w.Bool("df", true)
	}
	if v.Flags&layers.IPv4MoreFragments != 0 {
		w.Bool("mf", true)
	}
	if v.FragOffset != 0 {
		w.Uint("frag_offset", uint64(v.FragOffset)*8)
	}
	if len(v.Options) > 0 {
		w.BeginList("options")
		for i := range v.Options {
			w.Str("", ipv4OptionName(uint8(v.Options[i].OptionType)))
		}
		w.EndList()
	}
}

func writeARP(w FieldWriter, v *layers.ARP) {
	switch v.Operation {
	case layers.ARPRequest:
		w.Str("op", "request")
	case layers.ARPReply:
		w.Str("op", "reply")
	default:
		w.Uint("op", uint64(v.Operation))
	}
	w.IP("src", v.SourceProtAddress)
	w.IP("dst", v.DstProtAddress)
	w.MAC("src_mac", v.SourceHwAddress)
	w.MAC("dst_mac", v.DstHwAddress)
}

func writeICMPv4(w FieldWriter, v *layers.ICMPv4) {
	t, c := v.TypeCode.Type(), v.TypeCode.Code()
	w.Uint("type", uint64(t))
	w.Uint("code", uint64(c))
	w.Str("name", icmpv4Name(t, c))
	switch t {
	case layers.ICMPv4TypeEchoRequest, layers.ICMPv4TypeEchoReply:
		w.Uint("id", uint64(v.Id))
		w.Uint("seq", uint64(v.Seq))
	case layers.ICMPv4TypeDestinationUnreachable:
		if c == layers.ICMPv4CodeFragmentationNeeded {
			w.Uint("mtu", uint64(v.Seq))
		}
	}
}

func writeICMPv6(w FieldWriter, v *layers.ICMPv6, detail interface{}) {
	t, c := v.TypeCode.Type(), v.TypeCode.Code()
	w.Uint("type", uint64(t))
	w.Uint("code", uint64(c))
	w.Str("name", icmpv6Name(t, c))
	if t == layers.ICMPv6TypePacketTooBig && len(v.Payload) >= 4 {
		w.Uint("mtu", uint64(be32(v.Payload)))
	}
	switch d := detail.(type) {
	case *layers.ICMPv6Echo:
		w.Uint("id", uint64(d.Identifier))
		w.Uint("seq", uint64(d.SeqNumber))
	case *layers.ICMPv6NeighborSolicitation:
		w.IP("target", d.TargetAddress)
	case *layers.ICMPv6NeighborAdvertisement:
		w.IP("target", d.TargetAddress)
	}
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func writeTCP(w FieldWriter, v *tcpLayer) {
	w.Uint("sport", uint64(v.SrcPort))
	w.Uint("dport", uint64(v.DstPort))
	if v.hasFlags {
		w.Str("flags", tcpFlagLetters[tcpFlagBits(&v.TCP)])
	}
	w.Uint("seq", uint64(v.Seq))
	if v.short {
		return
	}
	if v.ACK {
		w.Uint("ack", uint64(v.Ack))
	}
	w.Uint("win", uint64(v.Window))
	w.Uint("payload", uint64(len(v.Payload)))
	if len(v.Options) == 0 {
		return
	}
	w.BeginList("options")
	for i := range v.Options {
		o := &v.Options[i]
		switch o.OptionType {
		case layers.TCPOptionKindNop, layers.TCPOptionKindEndList:
			continue
		}
		w.BeginObject()
		w.Str("kind", tcpOptionName(o.OptionType))
		switch {
		case o.OptionType == layers.TCPOptionKindMSS && len(o.OptionData) == 2:
			w.Uint("value", uint64(o.OptionData[0])<<8|uint64(o.OptionData[1]))
		case o.OptionType == layers.TCPOptionKindWindowScale && len(o.OptionData) == 1:
			w.Uint("value", uint64(o.OptionData[0]))
		case o.OptionType == layers.TCPOptionKindTimestamps && len(o.OptionData) == 8:
			w.Uint("val", uint64(be32(o.OptionData)))
			w.Uint("ecr", uint64(be32(o.OptionData[4:])))
		}
		w.EndObject()
	}
	w.EndList()
}

// tcpFlagBits packs the flags in wire order: FIN bit 0 ... CWR bit 7.
func tcpFlagBits(t *layers.TCP) uint8 {
	var b uint8
	for i, on := range [...]bool{t.FIN, t.SYN, t.RST, t.PSH, t.ACK, t.URG, t.ECE, t.CWR} {
		if on {
			b |= 1 << i
		}
	}
	return b
}

// tcpFlagLetters spells each flag combination as letters, SYN first:
// S SYN, A ACK, F FIN, R RST, P PSH, U URG, E ECE, C CWR ("SA" for SYN-ACK).
// tcpFlagDots spells it as tcpdump does ("S." for SYN-ACK).
var tcpFlagLetters, tcpFlagDots = func() (letters, dots [256]string) {
	order := [...]struct {
		bit      uint8
		ltr, dot string
	}{{1, "S", "S"}, {4, "A", ""}, {0, "F", "F"}, {2, "R", "R"}, {3, "P", "P"}, {5, "U", "U"}, {6, "E", "E"}, {7, "C", "W"}}
	for v := 0; v < 256; v++ {
		for _, o := range order {
			if v&(1<<o.bit) != 0 {
				letters[v] += o.ltr
				dots[v] += o.dot
			}
		}
		if v&(1<<4) != 0 {
			dots[v] += "."
		}
		if dots[v] == "" {
			dots[v] = "none"
		}
	}
	return
}()

func writeDNS(w FieldWriter, v *layers.DNS) {
	w.Uint("id", uint64(v.ID))
	w.Bool("qr", v.QR)
	if v.OpCode != 0 {
		w.Uint("opcode", uint64(v.OpCode))
	}
	if v.QR {
		w.Str("rcode", dnsRcodeName(v.ResponseCode))
	}
	w.BeginList("questions")
	for i := range v.Questions {
		q := &v.Questions[i]
		w.BeginObject()
		w.Text("name", q.Name)
		w.Str("type", dnsTypeName(q.Type))
		w.EndObject()
	}
	w.EndList()
	if len(v.Answers) == 0 {
		return
	}
	w.BeginList("answers")
	for i := range v.Answers {
		a := &v.Answers[i]
		w.BeginObject()
		w.Text("name", a.Name)
		w.Str("type", dnsTypeName(a.Type))
		w.Uint("ttl", uint64(a.TTL))
		writeDNSData(w, a)
		w.EndObject()
	}
	w.EndList()
}

func writeDNSData(w FieldWriter, a *layers.DNSResourceRecord) {
	switch a.Type {
	case layers.DNSTypeA, layers.DNSTypeAAAA:
		w.IP("data", a.IP)
	case layers.DNSTypeCNAME:
		w.Text("data", a.CNAME)
	case layers.DNSTypeNS:
		w.Text("data", a.NS)
	case layers.DNSTypePTR:
		w.Text("data", a.PTR)
	case layers.DNSTypeMX:
		w.Text("data", a.MX.Name)
	case layers.DNSTypeTXT:
		if len(a.TXTs) > 0 {
			w.Text("data", a.TXTs[0])
		}
	}
}

func writeHTTP(w FieldWriter, v *HTTP) {
	if v.Status != 0 {
		w.Text("version", v.Version)
		w.Uint("status", uint64(v.Status))
		w.Text("reason", v.Reason)
		return
	}
	w.Text("method", v.Method)
	w.Text("uri", v.Target)
	w.Text("version", v.Version)
	if len(v.Host) > 0 {
		w.Text("host", v.Host)
	}
}

func (n *NFLOG) writeFields(w FieldWriter) {
	w.Uint("family", uint64(n.Family))
	w.Uint("group", uint64(n.Group))
	if n.HasHook {
		w.Uint("hook", uint64(n.Hook))
		w.Str("hook_name", n.HookName())
	}
	w.Text("prefix", n.Prefix)
	if n.Indev != 0 {
		w.Uint("indev", uint64(n.Indev))
	}
	if n.Outdev != 0 {
		w.Uint("outdev", uint64(n.Outdev))
	}
	if n.PhysIndev != 0 {
		w.Uint("physindev", uint64(n.PhysIndev))
	}
	if n.PhysOutdev != 0 {
		w.Uint("physoutdev", uint64(n.PhysOutdev))
	}
	if n.HasMark {
		w.Hex("mark", uint64(n.Mark))
	}
	if n.HasUID {
		w.Uint("uid", uint64(n.UID))
	}
}
