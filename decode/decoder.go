package decode

import (
	"errors"
	"fmt"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/hooktrace/hooktrace/capture"
)

// MaxDepth bounds how many packets may nest inside one another.
const MaxDepth = 8

// Decoder decodes frames into layers without allocating on the hot path:
// it owns one set of layer structs per encapsulation depth and reuses them
// for every frame. A Decoder is not safe for concurrent use.
type Decoder struct {
	levels []*level
	pkt    Packet
}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder {
	return &Decoder{pkt: Packet{Layers: make([]Layer, 0, 16)}}
}

// errUnsupportedLink reports a frame whose link type hooktrace cannot read.
type errUnsupportedLink capture.LinkType

func (e errUnsupportedLink) Error() string {
	return fmt.Sprintf("unsupported link type %d", uint32(e))
}

var errEmptyFrame = errors.New("empty frame: no bytes were captured")

// SupportsLinkType says whether Decode understands a link type.
func SupportsLinkType(lt capture.LinkType) bool {
	return firstLayer(lt, []byte{0x45}) != gopacket.LayerTypeZero
}

// firstLayer picks the decoder for a frame's first bytes.
func firstLayer(lt capture.LinkType, data []byte) gopacket.LayerType {
	switch lt {
	case capture.LinkTypeEthernet:
		return layers.LayerTypeEthernet
	case capture.LinkTypeNull, capture.LinkTypeLoop:
		return layers.LayerTypeLoopback
	case capture.LinkTypeRaw, capture.LinkTypeRawDLT12, capture.LinkTypeRawDLT14:
		if t := ipByVersion(data); t != gopacket.LayerTypeZero {
			return t
		}
		return layers.LayerTypeIPv4 // let IPv4 report the bad version
	case capture.LinkTypeIPv4:
		return layers.LayerTypeIPv4
	case capture.LinkTypeIPv6:
		return layers.LayerTypeIPv6
	case capture.LinkTypeLinuxSLL:
		return layers.LayerTypeLinuxSLL
	case capture.LinkTypeLinuxSLL2:
		return layers.LayerTypeLinuxSLL2
	case capture.LinkTypeNFLOG:
		return layerTypeNFLOG
	}
	return gopacket.LayerTypeZero
}

// Decode decodes a frame. The returned Packet, its layers and the frame's
// bytes are valid until the next call of Decode: copy what must be kept.
func (d *Decoder) Decode(f capture.Frame) *Packet {
	p := &d.pkt
	p.Frame = f
	p.Layers = p.Layers[:0]
	p.Truncated = f.Len > len(f.Data)
	first := firstLayer(f.LinkType, f.Data)
	if first == gopacket.LayerTypeZero {
		p.Layers = append(p.Layers, Layer{Err: errUnsupportedLink(f.LinkType), rest: f.Data})
		return p
	}
	if len(f.Data) == 0 {
		p.Layers = append(p.Layers, Layer{Proto: protoOf(first), Err: errEmptyFrame})
		return p
	}
	data := f.Data
	quoted := false
	for depth := 0; len(data) > 0; depth++ {
		if depth == MaxDepth {
			p.Layers = append(p.Layers, Layer{Depth: depth, Quoted: quoted, rest: data,
				Err: fmt.Errorf("more than %d nested packets; the rest is not decoded", MaxDepth)})
			return p
		}
		lv := d.level(depth)
		next := lv.decode(p, data, first, depth, quoted)
		if next == nil {
			return p
		}
		quoted = quoted || next.tunnel == TunnelICMP
		first, data = next.first, next.payload
	}
	return p
}

func (d *Decoder) level(depth int) *level {
	for len(d.levels) <= depth {
		d.levels = append(d.levels, newLevel())
	}
	return d.levels[depth]
}

// offsetIn returns where sub starts inside frame. Every layer's bytes are
// a subslice of the frame, so the difference of capacities is the offset.
func offsetIn(frame, sub []byte) int {
	return cap(frame) - cap(sub)
}

// level is the set of layer structs and parsers of one encapsulation depth.
type level struct {
	container gopacket.DecodingLayerContainer
	parsers   map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded   []gopacket.LayerType
	inner     boundary

	eth   layers.Ethernet
	sll   layers.LinuxSLL
	sll2  layers.LinuxSLL2
	loop  layers.Loopback
	nflog NFLOG
	arp   layers.ARP
	vlan  vlanLayer
	mpls  mplsLayer
	ip4   ipv4Layer
	ip6   ipv6Layer
	frag6 ipv6FragLayer
	opts6 ipv6OptsLayer
	ext6  ipv6ExtLayer
	icmp4 icmpv4Layer
	icmp6 icmpv6Layer
	echo6 layers.ICMPv6Echo
	ns6   layers.ICMPv6NeighborSolicitation
	na6   layers.ICMPv6NeighborAdvertisement
	tcp   tcpLayer
	udp   udpLayer
	sctp  sctpLayer
	dns   layers.DNS
	vxlan vxlanLayer
	gen   geneveLayer
	gre   greLayer
	wg    WireGuard
	tls   TLSHello
	http  HTTP
}

func newLevel() *level {
	lv := &level{parsers: make(map[gopacket.LayerType]*gopacket.DecodingLayerParser)}
	for _, b := range []**boundary{&lv.ip4.b, &lv.ip6.b, &lv.frag6.b, &lv.opts6.b, &lv.ext6.b,
		&lv.icmp4.b, &lv.icmp6.b, &lv.gre.b, &lv.vxlan.b, &lv.gen.b} {
		*b = &lv.inner
	}
	var c gopacket.DecodingLayerContainer = gopacket.DecodingLayerSparse(nil)
	// The extension skipper claims every IPv6 extension type; the
	// specific decoders put after it take theirs back.
	for _, dl := range []gopacket.DecodingLayer{
		&lv.eth, &lv.sll, &lv.sll2, &lv.loop, &lv.nflog, &lv.arp, &lv.vlan, &lv.mpls,
		&lv.ip4, &lv.ip6, &lv.ext6, &lv.frag6, &lv.opts6, &lv.icmp4, &lv.icmp6, &lv.echo6, &lv.ns6, &lv.na6,
		&lv.tcp, &lv.udp, &lv.sctp, &lv.dns, &lv.vxlan, &lv.gen, &lv.gre, &lv.wg, &lv.tls, &lv.http,
	} {
		c = c.Put(dl)
	}
	lv.container = c
	return lv
}

// parser returns the parser that starts at a layer type, sharing this
// level's layer structs with the level's other parsers.
func (lv *level) parser(first gopacket.LayerType) *gopacket.DecodingLayerParser {
	p, ok := lv.parsers[first]
	if !ok {
		p = gopacket.NewDecodingLayerParser(first)
		p.SetDecodingLayerContainer(lv.container)
		lv.parsers[first] = p
	}
	return p
}

// decode decodes one depth's layers into p and returns the inner packet
// to decode next, or nil when decoding ends here.
func (lv *level) decode(p *Packet, data []byte, first gopacket.LayerType, depth int, quoted bool) *boundary {
	lv.inner = boundary{}
	lv.tcp.quoted, lv.udp.quoted = quoted, quoted
	lv.vlan.stack.n, lv.mpls.stack.n = 0, 0
	nvlan, nmpls := 0, 0
	parser := lv.parser(first)
	err := parser.DecodeLayers(data, &lv.decoded)
	if parser.Truncated {
		p.Truncated = true
	}
	for _, t := range lv.decoded {
		dl, _ := lv.container.Decoder(t)
		if n := len(p.Layers); n > 0 && isICMPv6Body(t) && p.Layers[n-1].Proto == ProtoICMPv6 {
			// Echo and neighbour discovery bodies belong to their ICMPv6 layer.
			p.Layers[n-1].detail = dl
			continue
		}
		switch t {
		case layers.LayerTypeDot1Q:
			dl = lv.vlan.stack.at(nvlan)
			nvlan++
		case layers.LayerTypeMPLS:
			dl = lv.mpls.stack.at(nmpls)
			nmpls++
		}
		l := Layer{Proto: protoOf(t), Depth: depth, Quoted: quoted, dl: dl}
		var cut *partial
		switch t {
		case layers.LayerTypeTCP:
			cut = &lv.tcp.partial
		case layers.LayerTypeUDP:
			cut = &lv.udp.partial
		}
		if cut != nil && cut.short {
			l.Short = true
			if !quoted {
				l.Err = cut.err
			}
		}
		p.Layers = append(p.Layers, l)
		if t == layers.LayerTypeIPv6 && lv.ip6.HopByHop != nil {
			// gopacket decodes a hop-by-hop header inside IPv6; show it as
			// the layer it is.
			h := Layer{Proto: ProtoIPv6Hop, Depth: depth, Quoted: quoted, dl: lv.ip6.HopByHop}
			p.Layers = append(p.Layers, h)
		}
	}
	if _, ok := err.(gopacket.UnsupportedLayerType); ok || err == nil {
		// Decoding ends normally at an undecoded payload, or goes on
		// with the inner packet a layer opened.
		if lv.inner.first == gopacket.LayerTypeZero || len(p.Layers) == 0 {
			return nil
		}
		p.Layers[len(p.Layers)-1].Tunnel = lv.inner.tunnel
		return &lv.inner
	}
	failed := first
	if n := len(lv.decoded); n > 0 {
		dl, _ := lv.container.Decoder(lv.decoded[n-1])
		failed = dl.NextLayerType()
	}
	p.Layers = append(p.Layers, Layer{Proto: protoOf(failed), Depth: depth, Quoted: quoted,
		Err: err, rest: lastPayload(lv, data)})
	return nil
}

// lastPayload returns the bytes the failed layer was given.
func lastPayload(lv *level, data []byte) []byte {
	if n := len(lv.decoded); n > 0 {
		dl, _ := lv.container.Decoder(lv.decoded[n-1])
		return dl.LayerPayload()
	}
	return data
}

func isICMPv6Body(t gopacket.LayerType) bool {
	return t == layers.LayerTypeICMPv6Echo || t == layers.LayerTypeICMPv6NeighborSolicitation ||
		t == layers.LayerTypeICMPv6NeighborAdvertisement
}

// span locates a decoded header inside the frame.
func span(frame []byte, dl any) (off, n int) {
	if c, ok := dl.(interface{ LayerContents() []byte }); ok {
		b := c.LayerContents()
		if cap(b) == 0 {
			return 0, 0
		}
		return offsetIn(frame, b), len(b)
	}
	return 0, 0
}

// protoOf maps a gopacket layer type to a Proto, from a table.
func protoOf(t gopacket.LayerType) Proto {
	if t >= 0 && int(t) < len(protoTable) {
		return protoTable[t]
	}
	return ProtoUnknown
}

// protoTable holds protoOfType for every layer type gopacket can number.
var protoTable = func() (t [2000]Proto) {
	for i := range t {
		t[i] = protoOfType(gopacket.LayerType(i))
	}
	return
}()

// protoOfType maps a gopacket layer type to a Proto.
func protoOfType(t gopacket.LayerType) Proto {
	switch t {
	case layers.LayerTypeEthernet:
		return ProtoEth
	case layers.LayerTypeLinuxSLL:
		return ProtoSLL
	case layers.LayerTypeLinuxSLL2:
		return ProtoSLL2
	case layers.LayerTypeLoopback:
		return ProtoLoopback
	case layerTypeNFLOG:
		return ProtoNFLOG
	case layers.LayerTypeARP:
		return ProtoARP
	case layers.LayerTypeDot1Q:
		return ProtoVLAN
	case layers.LayerTypeMPLS:
		return ProtoMPLS
	case layers.LayerTypeIPv4:
		return ProtoIPv4
	case layers.LayerTypeIPv6:
		return ProtoIPv6
	case layers.LayerTypeIPv6Fragment:
		return ProtoIPv6Frag
	case layers.LayerTypeIPv6Destination:
		return ProtoIPv6Opts
	case layers.LayerTypeIPv6HopByHop:
		return ProtoIPv6Hop
	case layers.LayerTypeIPv6Routing:
		return ProtoIPv6Ext
	case layers.LayerTypeICMPv4:
		return ProtoICMP
	case layers.LayerTypeICMPv6, layers.LayerTypeICMPv6Echo,
		layers.LayerTypeICMPv6NeighborSolicitation, layers.LayerTypeICMPv6NeighborAdvertisement:
		return ProtoICMPv6
	case layers.LayerTypeTCP:
		return ProtoTCP
	case layers.LayerTypeUDP:
		return ProtoUDP
	case layers.LayerTypeSCTP:
		return ProtoSCTP
	case layers.LayerTypeDNS:
		return ProtoDNS
	case layers.LayerTypeVXLAN:
		return ProtoVXLAN
	case layers.LayerTypeGeneve:
		return ProtoGeneve
	case layers.LayerTypeGRE:
		return ProtoGRE
	case layerTypeWireGuard:
		return ProtoWireGuard
	case layerTypeTLSHello:
		return ProtoTLS
	case layerTypeHTTP:
		return ProtoHTTP
	}
	return ProtoUnknown
}
