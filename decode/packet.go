package decode

import (
	"github.com/gopacket/gopacket"
	"github.com/hooktrace/hooktrace/capture"
)

// Layer is one decoded protocol header of a packet.
type Layer struct {
	Proto Proto
	// Depth counts the boundaries outside this layer: 0 for the outermost
	// packet, 1 inside the first tunnel or ICMP quote, and so on.
	Depth int
	// Quoted is set for the layers of a packet quoted by an ICMP error.
	Quoted bool
	// Tunnel is set on the layer that opens an inner packet (the VXLAN
	// header, the outer IPv4 of IP-in-IP, an ICMP error): the layers
	// after it are at Depth+1.
	Tunnel Tunnel
	// Err says why decoding stopped at this layer; nil when it did not.
	Err error
	// Short is set when only the leading fields of the header were present.
	Short  bool
	dl     any                    // the decoded header: a gopacket layer or one of ours
	rest   []byte                 // for a layer that failed: the bytes it was given
	detail gopacket.DecodingLayer // the body of an ICMPv6 message, if decoded
}

// Packet is a frame and its layers, outer to inner.
type Packet struct {
	Frame  capture.Frame
	Layers []Layer
	// Truncated is set when a layer found fewer bytes than it announced,
	// usually because of the capture's snap length.
	Truncated bool
}

// Err returns the first decoding error of the packet, or nil.
func (p *Packet) Err() error {
	for i := range p.Layers {
		if p.Layers[i].Err != nil {
			return p.Layers[i].Err
		}
	}
	return nil
}

// Innermost returns the innermost layer that was decoded without error at
// the deepest depth, or nil for a packet with no layers.
func (p *Packet) Innermost() *Layer {
	for i := len(p.Layers) - 1; i >= 0; i-- {
		if p.Layers[i].Err == nil || p.Layers[i].Short {
			return &p.Layers[i]
		}
	}
	return nil
}

// MaxDepth returns the depth of the innermost packet.
func (p *Packet) MaxDepth() int {
	if len(p.Layers) == 0 {
		return 0
	}
	return p.Layers[len(p.Layers)-1].Depth
}

// Span locates the layer's header in frame, the bytes of the packet it
// was decoded from: the offset and length, or the bytes given to a layer
// that failed. An ICMPv6 layer's span goes on past gopacket's 4-byte
// header over the message body its fields show: an echo's identifier and
// sequence, a neighbour message's target, an error's MTU or pointer.
func (l *Layer) Span(frame []byte) (off, n int) {
	if l.dl == nil || l.Err != nil && !l.Short {
		if cap(l.rest) == 0 {
			return 0, 0
		}
		return offsetIn(frame, l.rest), len(l.rest)
	}
	off, n = span(frame, l.dl)
	if v, ok := l.dl.(*icmpv6Layer); ok && n > 0 {
		end := off + n
		if d, ok := l.detail.(interface{ LayerContents() []byte }); ok {
			if b := d.LayerContents(); cap(b) > 0 {
				end = max(end, offsetIn(frame, b)+len(b))
			}
		}
		if icmpv6Quotes(v.TypeCode.Type()) {
			end = max(end, off+n+min(4, len(v.Payload)))
		}
		n = end - off
	}
	return off, n
}
