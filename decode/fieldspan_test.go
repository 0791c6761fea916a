package decode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hooktrace/hooktrace/capture"
)

// fieldPaths is a FieldWriter that records each field under its path, as
// FieldSpan keys name them, with the bytes of an address and the number
// of a Uint or Hex.
type fieldPaths struct {
	stack  []string // paths of the open lists and objects
	counts []int    // items written in each
	kind   map[string]byte
	num    map[string]uint64
	raw    map[string][]byte
	order  []string
}

func newFieldPaths() *fieldPaths {
	return &fieldPaths{kind: map[string]byte{}, num: map[string]uint64{}, raw: map[string][]byte{}}
}

func (f *fieldPaths) path(key string) string {
	if len(f.stack) == 0 {
		return key
	}
	top := len(f.stack) - 1
	if key == "" {
		f.counts[top]++
		return f.stack[top] + "[" + strconv.Itoa(f.counts[top]-1) + "]"
	}
	return f.stack[top] + "." + key
}

func (f *fieldPaths) put(key string, kind byte) string {
	p := f.path(key)
	f.kind[p] = kind
	f.order = append(f.order, p)
	return p
}

func (f *fieldPaths) Str(k, v string)         { f.put(k, 's') }
func (f *fieldPaths) Text(k string, v []byte) { f.raw[f.put(k, 't')] = append([]byte{}, v...) }
func (f *fieldPaths) Uint(k string, v uint64) { f.num[f.put(k, 'u')] = v }
func (f *fieldPaths) Hex(k string, v uint64)  { f.num[f.put(k, 'u')] = v }
func (f *fieldPaths) Bool(k string, v bool)   { f.put(k, 'b') }
func (f *fieldPaths) IP(k string, v []byte)   { f.raw[f.put(k, 'a')] = append([]byte{}, v...) }
func (f *fieldPaths) MAC(k string, v []byte)  { f.raw[f.put(k, 'a')] = append([]byte{}, v...) }
func (f *fieldPaths) BeginList(k string) {
	f.stack = append(f.stack, f.put(k, 'l'))
	f.counts = append(f.counts, 0)
}
func (f *fieldPaths) BeginObject() {
	f.stack = append(f.stack, f.put("", 'o'))
	f.counts = append(f.counts, 0)
}
func (f *fieldPaths) EndList()   { f.pop() }
func (f *fieldPaths) EndObject() { f.pop() }
func (f *fieldPaths) pop() {
	f.stack, f.counts = f.stack[:len(f.stack)-1], f.counts[:len(f.counts)-1]
}

// noSpan lists the fields that have no bytes of their own in the header.
var noSpan = map[string]bool{
	"tcp payload": true, // the payload's length
	"http host":   true, // a header after the first line, outside the layer's span
}

// notBigEndian lists the numbers that are not their span's bytes read
// big-endian: bit fields, scaled values, counts and little-endian fields.
var notBigEndian = map[string]bool{
	"vlan id": true, "vlan pcp": true, "mpls label": true, "mpls tc": true,
	"ipv6 flow": true, "ipv6-frag offset": true, "ipv4 frag_offset": true,
	"dns opcode": true, "dns rcode": true,
	"ipv6-hop options": true, "ipv6-opts options": true,
	"loopback family": true, "wireguard sender": true, "wireguard receiver": true, "wireguard counter": true,
	"http status": true, // three ASCII digits
}

// forEachPacket decodes every packet of a capture; a file that does not
// open (the broken fixtures) has none.
func forEachPacket(t *testing.T, path string, fn func(i int, p *Packet)) {
	t.Helper()
	src, err := capture.Open(path)
	if err != nil {
		t.Log(err)
		return
	}
	defer src.Close()
	d := NewDecoder()
	for i := 0; ; i++ {
		f, err := src.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			return // the damaged fixtures end early
		}
		fn(i, d.Decode(f))
	}
}

// TestFieldSpansFixtures checks every layer of every fixture: each span
// lies inside the layer's span and names a field the layer writes; every
// field written has a span unless it has no bytes of its own; addresses
// are their span's bytes, and numbers their span read big-endian.
func TestFieldSpansFixtures(t *testing.T) {
	files, _ := filepath.Glob("../fixtures/*.pcap*")
	more, _ := filepath.Glob("testdata/journeys/*.pcapng")
	files = append(files, more...)
	if len(files) < 20 {
		t.Fatalf("only %d fixtures found", len(files))
	}
	seen := map[Proto]bool{}
	for _, path := range files {
		forEachPacket(t, path, func(i int, p *Packet) {
			data := p.Frame.Data
			for li := range p.Layers {
				l := &p.Layers[li]
				where := fmt.Sprintf("%s packet %d layer %d (%s)", filepath.Base(path), i+1, li, l.Proto)
				checkLayerSpans(t, where, l, data)
				if l.Err == nil {
					seen[l.Proto] = true
				}
			}
		})
	}
	for _, pr := range []Proto{ProtoEth, ProtoVLAN, ProtoARP, ProtoIPv4, ProtoIPv6, ProtoIPv6Hop, ProtoIPv6Frag,
		ProtoIPv6Opts, ProtoIPv6Ext, ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6, ProtoVXLAN, ProtoGeneve, ProtoGRE,
		ProtoMPLS, ProtoSLL, ProtoSLL2, ProtoNFLOG, ProtoDNS, ProtoSCTP, ProtoWireGuard, ProtoTLS, ProtoHTTP} {
		if !seen[pr] {
			t.Errorf("no fixture has a %s layer", pr)
		}
	}
}

func checkLayerSpans(t *testing.T, where string, l *Layer, data []byte) {
	t.Helper()
	lo, n := l.Span(data)
	w := newFieldPaths()
	l.WriteFields(w)
	spans := l.FieldSpans(data)
	got := map[string]FieldSpan{}
	for _, s := range spans {
		if s.Off < lo || s.Len <= 0 || s.Off+s.Len > lo+n {
			t.Errorf("%s: %s spans %d+%d, outside the layer's %d+%d", where, s.Key, s.Off, s.Len, lo, n)
		}
		if _, dup := got[s.Key]; dup {
			t.Errorf("%s: %s twice", where, s.Key)
		}
		if _, ok := w.kind[s.Key]; !ok {
			t.Errorf("%s: span for %s, a field not written", where, s.Key)
		}
		got[s.Key] = s
	}
	if l.Err != nil {
		return // a header cut short has spans only for what is there
	}
	name := l.Proto.String()
	for _, key := range w.order {
		s, ok := got[key]
		raw, hasRaw := w.raw[key]
		switch {
		case !ok && !noSpan[name+" "+key] && !(hasRaw && len(raw) == 0): // an empty text or address has no bytes
			t.Errorf("%s: %s has no span", where, key)
		case !ok:
		case w.kind[key] == 'a' || w.kind[key] == 't' && l.Proto != ProtoDNS: // DNS names are encoded
			if b := data[s.Off : s.Off+s.Len]; !bytes.Equal(b, raw) {
				t.Errorf("%s: %s is % x, its span %d+%d holds % x", where, key, raw, s.Off, s.Len, b)
			}
		case w.kind[key] == 'u' && !notBigEndian[name+" "+key] && s.Len <= 8:
			var v uint64
			for _, c := range data[s.Off : s.Off+s.Len] {
				v = v<<8 | uint64(c)
			}
			if v != w.num[key] {
				t.Errorf("%s: %s is %d, its span %d+%d holds %d", where, key, w.num[key], s.Off, s.Len, v)
			}
		}
	}
}

// TestFieldSpansLayout checks spans against the byte layouts of fixture
// packets, offsets counted from the frame's first byte.
func TestFieldSpansLayout(t *testing.T) {
	type want struct {
		key      string
		off, len int
	}
	for _, tc := range []struct {
		file   string
		packet int   // 1-based, as the list numbers them
		layer  Proto // the first layer of this protocol
		nth    int   // or the nth (0-based) of them
		spans  []want
	}{
		{"eth-tcp.pcap", 1, ProtoEth, 0, []want{{"dst", 0, 6}, {"src", 6, 6}, {"type", 12, 2}}},
		{"eth-tcp.pcap", 1, ProtoIPv4, 0, []want{{"tlen", 16, 2}, {"id", 18, 2}, {"df", 20, 1}, {"ttl", 22, 1},
			{"protocol", 23, 1}, {"src", 26, 4}, {"dst", 30, 4}}},
		// A SYN with MSS, SACK permitted, timestamps, NOP and window scale.
		{"eth-tcp.pcap", 1, ProtoTCP, 0, []want{{"sport", 34, 2}, {"dport", 36, 2}, {"seq", 38, 4}, {"flags", 47, 1},
			{"win", 48, 2}, {"options", 54, 20}, {"options[0]", 54, 4}, {"options[0].kind", 54, 1},
			{"options[0].value", 56, 2}, {"options[1]", 58, 2}, {"options[2]", 60, 10},
			{"options[2].val", 62, 4}, {"options[2].ecr", 66, 4}, {"options[3]", 71, 3}, {"options[3].value", 73, 1}}},
		{"eth-tcp.pcap", 2, ProtoTCP, 0, []want{{"ack", 42, 4}}},
		{"arp.pcap", 1, ProtoARP, 0, []want{{"op", 20, 2}, {"src_mac", 22, 6}, {"src", 28, 4}, {"dst_mac", 32, 6}, {"dst", 38, 4}}},
		{"qinq.pcap", 1, ProtoVLAN, 0, []want{{"id", 14, 2}, {"pcp", 14, 1}, {"type", 16, 2}}},
		{"qinq.pcap", 1, ProtoVLAN, 1, []want{{"id", 18, 2}, {"type", 20, 2}}},
		{"mpls.pcap", 3, ProtoMPLS, 1, []want{{"label", 18, 3}, {"tc", 20, 1}, {"bottom", 20, 1}, {"ttl", 21, 1}}},
		{"icmp.pcap", 1, ProtoICMP, 0, []want{{"type", 34, 1}, {"code", 35, 1}, {"name", 34, 2}, {"id", 38, 2}, {"seq", 40, 2}}},
		{"icmpv6.pcap", 1, ProtoICMPv6, 0, []want{{"type", 54, 1}, {"target", 62, 16}}},
		{"icmpv6.pcap", 3, ProtoICMPv6, 0, []want{{"id", 58, 2}, {"seq", 60, 2}}},
		{"icmpv6.pcap", 3, ProtoIPv6, 0, []want{{"flow", 15, 3}, {"plen", 18, 2}, {"next", 20, 1}, {"hlim", 21, 1},
			{"src", 22, 16}, {"dst", 38, 16}}},
		{"udp-dns.pcap", 2, ProtoUDP, 0, []want{{"sport", 34, 2}, {"dport", 36, 2}, {"ulen", 38, 2}}},
		// A response: header, www.example.com A IN, an answer whose name
		// is a pointer to the question's.
		// A response: header, www.example.com A IN, the answer with the
		// name written out again.
		{"udp-dns.pcap", 2, ProtoDNS, 0, []want{{"id", 42, 2}, {"qr", 44, 1}, {"rcode", 45, 1},
			{"questions", 54, 21}, {"questions[0].name", 54, 17}, {"questions[0].type", 71, 2},
			{"answers", 75, 31}, {"answers[0]", 75, 31}, {"answers[0].name", 75, 17}, {"answers[0].type", 92, 2},
			{"answers[0].ttl", 96, 4}, {"answers[0].data", 102, 4}}},
		// The answer's name is a pointer to the question's (c0 0c):
		//	0x0030:  0001 0000 0000 0377 7777 0368 7866 0474
		//	0x0040:  6573 7400 0001 0001 c00c 0001 0001 0000
		//	0x0050:  0000 0004 0a63 0050
		{"real-dns.pcap", 2, ProtoDNS, 0, []want{{"questions[0].name", 54, 14}, {"questions[0].type", 68, 2},
			{"answers[0]", 72, 16}, {"answers[0].name", 72, 2}, {"answers[0].type", 74, 2},
			{"answers[0].ttl", 78, 4}, {"answers[0].data", 84, 4}}},
		{"vxlan.pcap", 1, ProtoVXLAN, 0, []want{{"vni", 46, 3}}},
		{"geneve.pcap", 1, ProtoGeneve, 0, []want{{"type", 44, 2}, {"vni", 46, 3}}},
		{"gre.pcap", 3, ProtoGRE, 0, []want{{"type", 36, 2}, {"key", 38, 4}}},
		{"sll.pcap", 1, ProtoSLL, 0, []want{{"pkttype", 0, 2}, {"src", 6, 6}, {"type", 14, 2}}},
		{"sll2.pcap", 1, ProtoSLL2, 0, []want{{"type", 0, 2}, {"ifindex", 4, 4}, {"pkttype", 10, 1}, {"src", 12, 6}}},
		{"nflog.pcap", 1, ProtoNFLOG, 0, []want{{"family", 0, 1}, {"group", 2, 2}}},
		// Hop-by-hop: next header UDP, length 0, router alert, PadN.
		//	0x0030:  0000 0000 0002 1100 0502 0000 0100 9f60
		{"ipv6-ext.pcap", 1, ProtoIPv6Hop, 0, []want{{"next", 54, 1}, {"options", 56, 6}}},
		{"ipv6-ext.pcap", 5, ProtoIPv6Frag, 0, []want{{"next", 54, 1}, {"offset", 56, 2}, {"more", 57, 1}, {"id", 58, 4}}},
	} {
		t.Run(fmt.Sprintf("%s#%d/%s%d", tc.file, tc.packet, tc.layer, tc.nth), func(t *testing.T) {
			found := false
			forEachPacket(t, filepath.Join("../fixtures", tc.file), func(i int, p *Packet) {
				if i+1 != tc.packet {
					return
				}
				nth := 0
				for li := range p.Layers {
					l := &p.Layers[li]
					if l.Proto != tc.layer {
						continue
					}
					if nth++; nth-1 != tc.nth {
						continue
					}
					found = true
					got := map[string]FieldSpan{}
					for _, s := range l.FieldSpans(p.Frame.Data) {
						got[s.Key] = s
					}
					for _, w := range tc.spans {
						if s, ok := got[w.key]; !ok || s.Off != w.off || s.Len != w.len {
							t.Errorf("%s: %d+%d (present %v), want %d+%d", w.key, s.Off, s.Len, ok, w.off, w.len)
						}
					}
					if t.Failed() {
						t.Logf("spans: %+v", l.FieldSpans(p.Frame.Data))
					}
					return
				}
			})
			if !found {
				t.Fatal("no such layer")
			}
		})
	}
}

// TestFieldSpansIPv4Options checks the options of an IPv4 header (no
// fixture has any): router alert, a no-op, the end of the list and its
// padding.
func TestFieldSpansIPv4Options(t *testing.T) {
	frame := []byte{
		0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, // Ethernet
		0x47, 0x00, 0x00, 0x24, 0x00, 0x07, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, // IPv4, IHL 7
		10, 0, 0, 1, 10, 0, 0, 2,
		0x94, 0x04, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // RA, NOP, EOL, padding
		0x9c, 0x40, 0x13, 0x89, 0x00, 0x08, 0x00, 0x00, // UDP
	}
	p := NewDecoder().Decode(capture.Frame{LinkType: capture.LinkTypeEthernet, Data: frame, Len: len(frame)})
	if len(p.Layers) < 2 || p.Layers[1].Proto != ProtoIPv4 || p.Layers[1].Err != nil {
		t.Fatalf("decoded %s", stack(p))
	}
	checkLayerSpans(t, "IPv4 with options", &p.Layers[1], frame)
	got := map[string]FieldSpan{}
	for _, s := range p.Layers[1].FieldSpans(frame) {
		got[s.Key] = s
	}
	for key, want := range map[string][2]int{"options": {34, 8}, "options[0]": {34, 4}, "options[1]": {38, 1},
		"options[2]": {39, 1}, "df": {20, 1}, "src": {26, 4}} {
		if s := got[key]; s.Off != want[0] || s.Len != want[1] {
			t.Errorf("%s: %d+%d, want %d+%d", key, s.Off, s.Len, want[0], want[1])
		}
	}
}
