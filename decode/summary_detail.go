package decode

import (
	"strconv"

	"github.com/gopacket/gopacket/layers"
)

// appendDetail adds what the segment's top protocol says.
func (s *segment) appendDetail(b []byte) []byte {
	if s.app != nil {
		return appendAppDetail(b, s.app)
	}
	if s.tunnel != nil || s.ipTunnel != TunnelNone {
		return b
	}
	if s.trans != nil {
		return appendTransportDetail(b, s.trans)
	}
	if s.net != nil {
		switch v := s.net.dl.(type) {
		case *layers.ARP:
			return appendARP(b, v)
		case *ipv4Layer:
			if v.FragOffset != 0 {
				b = AppendUint(append(b, " frag id "...), uint64(v.Id))
				b = AppendUint(append(b, " offset "...), uint64(v.FragOffset)*8)
			}
			b = AppendUint(append(b, " proto "...), uint64(v.Protocol))
			return strconv.AppendInt(append(b, " len "...), int64(len(v.Payload)), 10)
		case *ipv6Layer:
			b = AppendUint(append(b, " next "...), uint64(v.NextHeader))
			return strconv.AppendInt(append(b, " len "...), int64(len(v.Payload)), 10)
		}
	}
	if e, ok := linkAddrs(s.link); ok {
		b = AppendHex(append(b, " type "...), uint64(e.EthernetType))
		return strconv.AppendInt(append(b, " len "...), int64(len(e.Payload)), 10)
	}
	return b
}

func appendARP(b []byte, v *layers.ARP) []byte {
	switch v.Operation {
	case layers.ARPRequest:
		b = AppendIP(append(b, " who-has "...), v.DstProtAddress)
		return AppendIP(append(b, " tell "...), v.SourceProtAddress)
	case layers.ARPReply:
		b = AppendIP(append(b, ' '), v.SourceProtAddress)
		return AppendMAC(append(b, " is-at "...), v.SourceHwAddress)
	}
	return AppendUint(append(b, " op "...), uint64(v.Operation))
}

func appendTransportDetail(b []byte, l *Layer) []byte {
	switch v := l.dl.(type) {
	case *tcpLayer:
		if v.hasFlags {
			b = append(append(append(b, " ["...), tcpFlagDots[tcpFlagBits(&v.TCP)]...), ']')
		}
		b = AppendUint(append(b, " seq "...), uint64(v.Seq))
		if v.short {
			return b
		}
		if v.ACK {
			b = AppendUint(append(b, " ack "...), uint64(v.Ack))
		}
		b = AppendUint(append(b, " win "...), uint64(v.Window))
		return strconv.AppendInt(append(b, " len "...), int64(len(v.Payload)), 10)
	case *udpLayer:
		if v.short {
			return b
		}
		// The length the header gives, as tcpdump prints it: a snap
		// length or a trace event's header snapshot may keep less.
		n := int64(len(v.Payload))
		if v.Length >= 8 && int64(v.Length)-8 > n {
			n = int64(v.Length) - 8
		}
		return strconv.AppendInt(append(b, " len "...), n, 10)
	case *sctpLayer:
		return strconv.AppendInt(append(b, " len "...), int64(len(v.Payload)), 10)
	case *icmpv4Layer:
		t, c := v.TypeCode.Type(), v.TypeCode.Code()
		b = append(append(b, ' '), icmpv4Name(t, c)...)
		if t == layers.ICMPv4TypeEchoRequest || t == layers.ICMPv4TypeEchoReply {
			b = AppendUint(append(b, " id "...), uint64(v.Id))
			b = AppendUint(append(b, " seq "...), uint64(v.Seq))
		}
		return b
	case *icmpv6Layer:
		t, c := v.TypeCode.Type(), v.TypeCode.Code()
		b = append(append(b, ' '), icmpv6Name(t, c)...)
		switch d := l.detail.(type) {
		case *layers.ICMPv6Echo:
			b = AppendUint(append(b, " id "...), uint64(d.Identifier))
			b = AppendUint(append(b, " seq "...), uint64(d.SeqNumber))
		case *layers.ICMPv6NeighborSolicitation:
			b = AppendIP(append(b, " who-has "...), d.TargetAddress)
		case *layers.ICMPv6NeighborAdvertisement:
			b = AppendIP(append(b, " tgt "...), d.TargetAddress)
		}
		return b
	}
	return b
}

func appendAppDetail(b []byte, l *Layer) []byte {
	switch v := l.dl.(type) {
	case *layers.DNS:
		return appendDNS(b, v)
	case *TLSHello:
		b = append(b, " ClientHello"...)
		if len(v.SNI) > 0 {
			b = append(append(b, " sni "...), v.SNI...)
		}
		if len(v.ALPN) > 0 {
			b = append(append(b, " alpn "...), v.ALPN...)
		}
		return b
	case *HTTP:
		b = append(b, ' ')
		b = appendPrintable(b, v.line, 120)
		if len(v.Host) > 0 {
			b = appendPrintable(append(b, " host "...), v.Host, 80)
		}
		return b
	case *WireGuard:
		b = append(append(b, ' '), v.TypeName()...)
		if v.Type == wgInitiation || v.Type == wgResponse {
			b = AppendHex(append(b, " sender "...), uint64(v.Sender))
		}
		if v.Type != wgInitiation {
			b = AppendHex(append(b, " receiver "...), uint64(v.Receiver))
		}
		if v.Type == wgData {
			b = AppendUint(append(b, " counter "...), v.Counter)
		}
		return b
	}
	return b
}

func appendDNS(b []byte, v *layers.DNS) []byte {
	if v.QR {
		b = append(b, " response "...)
	} else {
		b = append(b, " query "...)
	}
	b = AppendHex(b, uint64(v.ID))
	if v.QR && v.ResponseCode != 0 {
		b = append(append(b, ' '), dnsRcodeName(v.ResponseCode)...)
	}
	for i := range v.Questions {
		q := &v.Questions[i]
		b = append(append(b, ' '), dnsTypeName(q.Type)...)
		b = appendPrintable(append(b, ' '), q.Name, 255)
	}
	for i := range v.Answers {
		a := &v.Answers[i]
		b = append(append(b, ' '), dnsTypeName(a.Type)...)
		switch a.Type {
		case layers.DNSTypeA, layers.DNSTypeAAAA:
			b = AppendIP(append(b, ' '), a.IP)
		case layers.DNSTypeCNAME:
			b = appendPrintable(append(b, ' '), a.CNAME, 255)
		case layers.DNSTypePTR:
			b = appendPrintable(append(b, ' '), a.PTR, 255)
		}
	}
	return b
}

// appendPrintable appends at most max bytes of packet text, with bytes
// that are not printable ASCII as \xNN so a packet cannot drive the terminal.
func appendPrintable(b, s []byte, max int) []byte {
	for i, c := range s {
		if i == max {
			return append(b, "..."...)
		}
		if c < 0x20 || c >= 0x7f || c == '\\' {
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}
