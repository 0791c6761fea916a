package decode

import (
	"strconv"

	"github.com/gopacket/gopacket/layers"
)

// AppendSummary appends a one-line description of the packet: one segment
// per encapsulation depth, outer first, joined by " | ", e.g.
//
//	VXLAN vni 42 10.0.0.1:39000 > 10.0.0.2:4789 | TCP 172.16.0.2:40000 > 172.16.1.9:8080 [S] seq 1 win 64240 len 0
func (p *Packet) AppendSummary(b []byte) []byte {
	start := 0
	for i := 1; i <= len(p.Layers); i++ {
		if i < len(p.Layers) && p.Layers[i].Depth == p.Layers[start].Depth {
			continue
		}
		if start > 0 {
			b = append(b, " | "...)
		}
		b = appendSegment(b, p.Layers[start:i])
		start = i
	}
	if p.Truncated && p.Frame.Len > len(p.Frame.Data) {
		b = append(b, " (captured "...)
		b = strconv.AppendInt(b, int64(len(p.Frame.Data)), 10)
		b = append(b, " of "...)
		b = strconv.AppendInt(b, int64(p.Frame.Len), 10)
		b = append(b, " bytes)"...)
	}
	return b
}

// segment gathers the layers of one depth by role.
type segment struct {
	link, net, trans, app, tunnel *Layer
	nflog                         *NFLOG
	failed                        *Layer
	ipTunnel                      Tunnel          // an IP header (or its extension) that carries IP
	tags                          [maxTags]*Layer // vlan and mpls, outer first
	ntags                         int
}

func appendSegment(b []byte, ls []Layer) []byte {
	var s segment
	for i := range ls {
		l := &ls[i]
		if l.Err != nil && !l.Short {
			s.failed = l
			continue
		}
		switch l.Proto {
		case ProtoEth, ProtoSLL, ProtoSLL2, ProtoLoopback:
			s.link = l
		case ProtoNFLOG:
			s.nflog = l.dl.(*NFLOG)
		case ProtoVLAN, ProtoMPLS:
			if s.ntags < maxTags {
				s.tags[s.ntags] = l
				s.ntags++
			}
		case ProtoIPv4, ProtoIPv6, ProtoARP:
			if s.net == nil {
				s.net = l
			}
		case ProtoTCP, ProtoUDP, ProtoSCTP, ProtoICMP, ProtoICMPv6:
			s.trans = l
		case ProtoDNS, ProtoTLS, ProtoHTTP, ProtoWireGuard:
			s.app = l
		case ProtoVXLAN, ProtoGeneve, ProtoGRE:
			s.tunnel = l
		}
		if l.Short && l.Err != nil {
			s.failed = l
		}
		if upperTunnel[l.Tunnel] != "" {
			s.ipTunnel = l.Tunnel
		}
	}
	quoted := ls[0].Quoted
	if quoted {
		b = append(b, "quoted "...)
	}
	b = s.appendTags(b)
	b = s.appendLabel(b)
	b = s.appendAddrs(b)
	// A quoted packet is cut after a few bytes: its lengths mean nothing.
	if !quoted || (s.trans != nil && s.trans.Proto == ProtoTCP) {
		b = s.appendDetail(b)
	}
	if s.failed != nil {
		b = append(b, " ["...)
		b = append(b, s.failed.Proto.String()...)
		b = append(b, ": "...)
		b = append(b, s.failed.Err.Error()...)
		b = append(b, ']')
	}
	return b
}

func (s *segment) appendTags(b []byte) []byte {
	if n := s.nflog; n != nil {
		b = append(b, "NFLOG "...)
		b = AppendUint(b, uint64(n.Group))
		if len(n.Prefix) > 0 {
			b = strconv.AppendQuote(append(b, ' '), string(n.Prefix))
		}
		if n.HasHook {
			if n.Family == 7 { // a bridge hook, not the IP hook of that number
				b = append(b, " bridge"...)
			}
			b = append(append(b, ' '), n.HookName()...)
		}
		b = append(b, ' ')
	}
	var last Proto
	for _, t := range s.tags[:s.ntags] {
		if t.Proto == last {
			b = append(b, ',')
		} else {
			if last != ProtoUnknown {
				b = append(b, ' ')
			}
			b = append(b, t.Proto.String()...)
			b = append(b, ' ')
		}
		switch v := t.dl.(type) {
		case *layers.Dot1Q:
			b = AppendUint(b, uint64(v.VLANIdentifier))
		case *mplsEntry:
			b = AppendUint(b, uint64(v.Label))
		}
		last = t.Proto
	}
	if s.ntags > 0 {
		b = append(b, ' ')
	}
	return b
}

// appendLabel names the segment by its most specific protocol.
func (s *segment) appendLabel(b []byte) []byte {
	switch {
	case s.tunnel != nil:
		switch v := s.tunnel.dl.(type) {
		case *vxlanLayer:
			b = AppendUint(append(b, "VXLAN vni "...), uint64(v.VNI))
		case *geneveLayer:
			b = AppendUint(append(b, "GENEVE vni "...), uint64(v.VNI))
		case *greLayer:
			b = append(b, "GRE"...)
			if v.Protocol == layers.EthernetTypeTransparentEthernetBridging {
				b = append(b, "TAP"...)
			}
			if v.KeyPresent {
				b = AppendUint(append(b, " key "...), uint64(v.Key))
			}
		}
		return b
	case s.ipTunnel != TunnelNone:
		return append(b, upperTunnel[s.ipTunnel]...)
	case s.app != nil:
		return append(b, upperProto[s.app.Proto]...)
	case s.trans != nil:
		return append(b, upperProto[s.trans.Proto]...)
	case s.net != nil:
		return append(b, upperProto[s.net.Proto]...)
	case s.link != nil:
		return append(b, upperProto[s.link.Proto]...)
	}
	return append(b, "?"...)
}

var upperProto = [protoCount]string{
	ProtoEth: "ETH", ProtoSLL: "SLL", ProtoSLL2: "SLL2", ProtoLoopback: "LOOPBACK", ProtoARP: "ARP",
	ProtoIPv4: "IPv4", ProtoIPv6: "IPv6", ProtoICMP: "ICMP", ProtoICMPv6: "ICMP6", ProtoTCP: "TCP",
	ProtoUDP: "UDP", ProtoSCTP: "SCTP", ProtoDNS: "DNS", ProtoTLS: "TLS", ProtoHTTP: "HTTP",
	ProtoWireGuard: "WireGuard",
}

var upperTunnel = [tunnelCount]string{TunnelIPIP: "IPIP", TunnelSIT: "SIT", TunnelIP6IP6: "IP6IP6", TunnelIP4IP6: "IP4IP6"}

func (s *segment) appendAddrs(b []byte) []byte {
	if s.net == nil {
		if e, ok := linkAddrs(s.link); ok {
			b = AppendMAC(append(b, ' '), e.SrcMAC)
			b = AppendMAC(append(b, " > "...), e.DstMAC)
		}
		return b
	}
	if s.net.Proto == ProtoARP {
		return b
	}
	src, dst := ipAddrs(s.net)
	sport, dport, ok := ports(s.trans)
	b = append(b, ' ')
	b = appendEndpoint(b, src, sport, ok)
	b = append(b, " > "...)
	return appendEndpoint(b, dst, dport, ok)
}

func linkAddrs(l *Layer) (*layers.Ethernet, bool) {
	if l == nil {
		return nil, false
	}
	e, ok := l.dl.(*layers.Ethernet)
	return e, ok
}

func ipAddrs(l *Layer) (src, dst []byte) {
	switch v := l.dl.(type) {
	case *ipv4Layer:
		return v.SrcIP, v.DstIP
	case *ipv6Layer:
		return v.SrcIP, v.DstIP
	}
	return nil, nil
}

func ports(l *Layer) (src, dst uint16, ok bool) {
	if l == nil {
		return 0, 0, false
	}
	switch v := l.dl.(type) {
	case *tcpLayer:
		return uint16(v.SrcPort), uint16(v.DstPort), true
	case *udpLayer:
		return uint16(v.SrcPort), uint16(v.DstPort), true
	case *sctpLayer:
		return uint16(v.SrcPort), uint16(v.DstPort), true
	}
	return 0, 0, false
}

// appendEndpoint writes addr:port, with IPv6 addresses in brackets.
func appendEndpoint(b, ip []byte, port uint16, hasPort bool) []byte {
	if !hasPort {
		return AppendIP(b, ip)
	}
	if len(ip) == 16 {
		b = append(b, '[')
		b = AppendIP(b, ip)
		b = append(b, ']')
	} else {
		b = AppendIP(b, ip)
	}
	return AppendUint(append(b, ':'), uint64(port))
}
