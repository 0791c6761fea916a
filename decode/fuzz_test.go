package decode

import (
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/hooktrace/hooktrace/capture"
)

// discardFields is a FieldWriter that touches every value.
type discardFields struct{ n int }

func (d *discardFields) Str(k, v string)         { d.n += len(k) + len(v) }
func (d *discardFields) Text(k string, v []byte) { d.n += len(k) + len(v) }
func (d *discardFields) Uint(k string, v uint64) { d.n += len(k) }
func (d *discardFields) Hex(k string, v uint64)  { d.n += len(k) }
func (d *discardFields) Bool(k string, v bool)   { d.n += len(k) }
func (d *discardFields) IP(k string, v []byte)   { d.n += len(AppendIP(nil, v)) }
func (d *discardFields) MAC(k string, v []byte)  { d.n += len(AppendMAC(nil, v)) }
func (d *discardFields) BeginList(k string)      {}
func (d *discardFields) EndList()                {}
func (d *discardFields) BeginObject()            {}
func (d *discardFields) EndObject()              {}

var fuzzLinkTypes = []capture.LinkType{
	capture.LinkTypeEthernet, capture.LinkTypeRaw, capture.LinkTypeLinuxSLL, capture.LinkTypeLinuxSLL2,
	capture.LinkTypeNull, capture.LinkTypeNFLOG, capture.LinkTypeIPv6,
}

// FuzzDecode decodes arbitrary bytes under every link type: no panic, layers
// within the frame, fields' spans within their layer, a summary and fields
// for every packet.
func FuzzDecode(f *testing.F) {
	f.Add(uint8(0), build(f, eth(layers.EthernetTypeIPv4), ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), udp(39000, 4789),
		&layers.VXLAN{ValidIDFlag: true, VNI: 42}, eth(layers.EthernetTypeIPv4), ip4("172.16.0.2", "172.16.1.9", layers.IPProtocolTCP), tcp(1, 2)))
	f.Add(uint8(0), build(f, eth(layers.EthernetTypeIPv4), ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP), tcp(40000, 443), gopacket.Payload(clientHello("example.com"))))
	f.Add(uint8(1), build(f, ip6("2001:db8::1", "2001:db8::2", layers.IPProtocolUDP), udp(53, 53), gopacket.Payload([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 1, 0, 1})))
	f.Add(uint8(5), []byte{2, 0, 0, 5, 8, 0, 1, 0, 8, 0, 1, 0, 12, 0, 10, 0, 'h', 'x', 0, 0})
	f.Fuzz(func(t *testing.T, lt uint8, data []byte) {
		d := NewDecoder()
		p := d.Decode(capture.Frame{LinkType: fuzzLinkTypes[int(lt)%len(fuzzLinkTypes)], Data: data, Len: len(data)})
		var w discardFields
		for i := range p.Layers {
			l := &p.Layers[i]
			off, n := l.Span(data)
			if off < 0 || n < 0 || off+n > len(data) {
				t.Fatalf("layer %d (%s) spans %d+%d of %d bytes", i, l.Proto, off, n, len(data))
			}
			l.WriteFields(&w)
			for _, s := range l.FieldSpans(data) {
				if s.Off < off || s.Len <= 0 || s.Off+s.Len > off+n {
					t.Fatalf("layer %d (%s) field %s spans %d+%d, outside the layer's %d+%d", i, l.Proto, s.Key, s.Off, s.Len, off, n)
				}
			}
		}
		p.AppendSummary(nil)
	})
}
