package decode

import (
	"encoding/binary"
	"fmt"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The wrappers below embed gopacket's layers and replace NextLayerType, so
// that one depth's parser stops at a tunnel or a quoted packet (see
// layerTypeBoundary) and application payloads go to hooktrace's own layers.

// boundary records the inner packet a layer opened.
type boundary struct {
	tunnel  Tunnel
	first   gopacket.LayerType
	payload []byte
}

// open records an inner packet and tells the parser to stop there: the
// next depth's parser decodes it. (Returning the zero layer type rather
// than an unknown one spares DecodeLayers an error value per packet.)
func (b *boundary) open(t Tunnel, first gopacket.LayerType, payload []byte) gopacket.LayerType {
	if first == gopacket.LayerTypeZero || first == gopacket.LayerTypePayload || len(payload) == 0 {
		return gopacket.LayerTypeZero
	}
	b.tunnel, b.first, b.payload = t, first, payload
	return gopacket.LayerTypeZero
}

// ipInIP opens an IP-in-IP tunnel when an IP header's next protocol is IP.
func (b *boundary) ipInIP(outerV6 bool, next gopacket.LayerType, payload []byte) gopacket.LayerType {
	switch {
	case next == layers.LayerTypeIPv4 && outerV6:
		return b.open(TunnelIP4IP6, next, payload)
	case next == layers.LayerTypeIPv6 && outerV6:
		return b.open(TunnelIP6IP6, next, payload)
	case next == layers.LayerTypeIPv4:
		return b.open(TunnelIPIP, next, payload)
	case next == layers.LayerTypeIPv6:
		return b.open(TunnelSIT, next, payload)
	}
	return next
}

type ipv4Layer struct {
	layers.IPv4
	b *boundary
}

func (l *ipv4Layer) NextLayerType() gopacket.LayerType {
	if l.FragOffset != 0 {
		return gopacket.LayerTypeZero // a later fragment: the payload is data
	}
	return l.b.ipInIP(false, l.Protocol.LayerType(), l.Payload)
}

type ipv6Layer struct {
	layers.IPv6
	b *boundary
}

func (l *ipv6Layer) NextLayerType() gopacket.LayerType {
	return l.b.ipInIP(true, l.IPv6.NextLayerType(), l.Payload)
}

type ipv6FragLayer struct {
	layers.IPv6Fragment
	b *boundary
}

func (l *ipv6FragLayer) NextLayerType() gopacket.LayerType {
	if l.FragmentOffset != 0 {
		return gopacket.LayerTypeZero
	}
	return l.b.ipInIP(true, l.NextHeader.LayerType(), l.Payload)
}

type ipv6OptsLayer struct {
	layers.IPv6Destination
	b *boundary
}

func (l *ipv6OptsLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeIPv6Destination }

func (l *ipv6OptsLayer) NextLayerType() gopacket.LayerType {
	return l.b.ipInIP(true, l.NextHeader.LayerType(), l.Payload)
}

type ipv6ExtLayer struct {
	layers.IPv6ExtensionSkipper
	b *boundary
}

func (l *ipv6ExtLayer) NextLayerType() gopacket.LayerType {
	return l.b.ipInIP(true, l.IPv6ExtensionSkipper.NextLayerType(), l.Payload)
}

type icmpv4Layer struct {
	layers.ICMPv4
	b *boundary
}

// icmpv4Quotes says whether an ICMPv4 type carries the offending packet.
func icmpv4Quotes(t uint8) bool {
	switch t {
	case layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4TypeSourceQuench,
		layers.ICMPv4TypeRedirect, layers.ICMPv4TypeTimeExceeded, layers.ICMPv4TypeParameterProblem:
		return true
	}
	return false
}

func (l *icmpv4Layer) NextLayerType() gopacket.LayerType {
	if icmpv4Quotes(l.TypeCode.Type()) {
		return l.b.open(TunnelICMP, layers.LayerTypeIPv4, l.Payload)
	}
	return gopacket.LayerTypeZero
}

type icmpv6Layer struct {
	layers.ICMPv6
	b *boundary
}

// icmpv6Quotes says whether an ICMPv6 type carries the offending packet.
func icmpv6Quotes(t uint8) bool {
	return t >= layers.ICMPv6TypeDestinationUnreachable && t <= layers.ICMPv6TypeParameterProblem
}

func (l *icmpv6Layer) NextLayerType() gopacket.LayerType {
	if icmpv6Quotes(l.TypeCode.Type()) {
		if len(l.Payload) <= 4 {
			return gopacket.LayerTypeZero
		}
		// 4 bytes (unused, MTU or pointer) precede the quoted packet.
		return l.b.open(TunnelICMP, layers.LayerTypeIPv6, l.Payload[4:])
	}
	return l.ICMPv6.NextLayerType()
}

type greLayer struct {
	layers.GRE
	b *boundary
}

func (l *greLayer) NextLayerType() gopacket.LayerType {
	next := l.GRE.NextLayerType()
	if next == gopacket.LayerTypePayload {
		return gopacket.LayerTypeZero
	}
	return l.b.open(TunnelGRE, next, l.Payload)
}

type vxlanLayer struct {
	layers.VXLAN
	b *boundary
}

func (l *vxlanLayer) NextLayerType() gopacket.LayerType {
	return l.b.open(TunnelVXLAN, layers.LayerTypeEthernet, l.Payload)
}

type geneveLayer struct {
	layers.Geneve
	b *boundary
}

func (l *geneveLayer) NextLayerType() gopacket.LayerType {
	return l.b.open(TunnelGeneve, l.Protocol.LayerType(), l.Payload)
}

// UDP ports whose payload hooktrace decodes.
const (
	portDNS        = 53
	portMDNS       = 5353
	portLLMNR      = 5355
	portVXLAN      = 4789
	portVXLANLinux = 8472
	portGeneve     = 6081
	portWireGuard  = 51820
)

type udpLayer struct {
	layers.UDP
	partial
}

func (l *udpLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	l.partial = partial{quoted: l.quoted}
	err := l.UDP.DecodeFromBytes(data, df)
	if err != nil && len(data) >= 4 {
		l.SrcPort = layers.UDPPort(binary.BigEndian.Uint16(data))
		l.DstPort = layers.UDPPort(binary.BigEndian.Uint16(data[2:]))
		l.Contents, l.Payload = data, nil
		l.cut(err)
		return nil
	}
	return err
}

func (l *udpLayer) NextLayerType() gopacket.LayerType {
	if l.short || l.quoted || len(l.Payload) == 0 {
		return gopacket.LayerTypeZero
	}
	src, dst := uint16(l.SrcPort), uint16(l.DstPort)
	switch {
	case dst == portVXLAN || dst == portVXLANLinux:
		return layers.LayerTypeVXLAN
	case dst == portGeneve:
		return layers.LayerTypeGeneve
	case isDNSPort(src) || isDNSPort(dst):
		return layers.LayerTypeDNS
	case src == portWireGuard || dst == portWireGuard || looksLikeWireGuard(l.Payload):
		return layerTypeWireGuard
	}
	return gopacket.LayerTypeZero
}

func isDNSPort(p uint16) bool { return p == portDNS || p == portMDNS || p == portLLMNR }

type tcpLayer struct {
	layers.TCP
	partial
}

func (l *tcpLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	l.partial = partial{quoted: l.quoted}
	err := l.TCP.DecodeFromBytes(data, df)
	if err != nil && len(data) >= 4 {
		// A header cut short (an ICMP error quotes only 8 bytes; a snap
		// length may cut anywhere) still names its ports and sequence.
		l.TCP = layers.TCP{}
		l.SrcPort = layers.TCPPort(binary.BigEndian.Uint16(data))
		l.DstPort = layers.TCPPort(binary.BigEndian.Uint16(data[2:]))
		if len(data) >= 8 {
			l.Seq = binary.BigEndian.Uint32(data[4:])
		}
		if len(data) >= 14 {
			l.Ack = binary.BigEndian.Uint32(data[8:])
			flags := data[13]
			l.FIN, l.SYN, l.RST, l.PSH = flags&1 != 0, flags&2 != 0, flags&4 != 0, flags&8 != 0
			l.ACK, l.URG, l.ECE, l.CWR = flags&16 != 0, flags&32 != 0, flags&64 != 0, flags&128 != 0
			l.hasFlags = true
		}
		l.Contents = data
		l.cut(err)
		return nil
	}
	l.hasFlags = err == nil
	return err
}

func (l *tcpLayer) NextLayerType() gopacket.LayerType {
	switch {
	case l.short || l.quoted || len(l.Payload) == 0:
		return gopacket.LayerTypeZero
	case looksLikeClientHello(l.Payload):
		return layerTypeTLSHello
	case looksLikeHTTP(l.Payload):
		return layerTypeHTTP
	}
	return gopacket.LayerTypeZero
}

type sctpLayer struct {
	layers.SCTP
}

func (l *sctpLayer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }

// partial marks a transport header that was decoded only in part.
type partial struct {
	quoted   bool  // inside an ICMP error: the payload is cut, do not decode it
	short    bool  // the header was cut short; only the leading fields are set
	hasFlags bool  // TCP flags were decoded
	err      error // what was missing, for a cut that is not an ICMP quote
}

func (p *partial) cut(err error) {
	p.short = true
	p.err = fmt.Errorf("header cut short, leading fields only: %w", err)
}
