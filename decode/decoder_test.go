package decode

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/hooktrace/hooktrace/capture"
)

// build serializes layers with gopacket, an encoder independent of the
// decoder under test.
func build(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	for _, l := range ls {
		if n, ok := l.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}); ok {
			for _, m := range ls {
				if nl, ok := m.(gopacket.NetworkLayer); ok {
					n.SetNetworkLayerForChecksum(nl)
				}
			}
		}
	}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

var (
	macA = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	macB = net.HardwareAddr{2, 0, 0, 0, 0, 2}
)

func eth(typ layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: typ}
}

func ip4(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 7, Protocol: proto,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

func ip6(src, dst string, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

func tcp(sport, dport uint16) *layers.TCP {
	return &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Seq: 100, Window: 1000, DataOffset: 5}
}

func udp(sport, dport uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
}

// stack describes the decoded layers: protos by depth, "*" after a layer
// that opens an inner packet, "!" after one that carries an error.
func stack(p *Packet) string {
	var b strings.Builder
	for i, l := range p.Layers {
		if i > 0 {
			if l.Depth != p.Layers[i-1].Depth {
				b.WriteString(" | ")
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteString(l.Proto.String())
		if l.Tunnel != TunnelNone {
			b.WriteString("*" + l.Tunnel.String())
		}
		if l.Err != nil {
			b.WriteByte('!')
		}
	}
	return b.String()
}

func decodeBytes(lt capture.LinkType, data []byte) *Packet {
	return NewDecoder().Decode(capture.Frame{LinkType: lt, Data: data, Len: len(data)})
}

func TestDecodeStacks(t *testing.T) {
	inner := func() []gopacket.SerializableLayer {
		return []gopacket.SerializableLayer{eth(layers.EthernetTypeIPv4), ip4("172.16.0.2", "172.16.1.9", layers.IPProtocolTCP), tcp(40000, 8080)}
	}
	vxlan := func(port uint16) []byte {
		ls := []gopacket.SerializableLayer{eth(layers.EthernetTypeIPv4), ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), udp(39000, port),
			&layers.VXLAN{ValidIDFlag: true, VNI: 42}}
		return build(t, append(ls, inner()...)...)
	}
	quoted := build(t, ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), udp(5000, 53), gopacket.Payload("q"))
	unreach := build(t, eth(layers.EthernetTypeIPv4), ip4("10.0.0.2", "10.0.0.1", layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, gopacket.Payload(quoted[:28]))
	tcpQuoted := build(t, ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP), tcp(1234, 80))
	timeExceeded := build(t, eth(layers.EthernetTypeIPv4), ip4("10.9.9.9", "10.0.0.1", layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(11, 0)}, gopacket.Payload(tcpQuoted[:28]))
	ipip := build(t, eth(layers.EthernetTypeIPv4), ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolIPv4),
		ip4("10.1.0.1", "10.2.0.1", layers.IPProtocolUDP), udp(1, 2), gopacket.Payload("x"))
	sit := build(t, eth(layers.EthernetTypeIPv4), ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolIPv6),
		ip6("2001:db8::1", "2001:db8::2", layers.IPProtocolTCP), tcp(1, 443))
	gre := build(t, eth(layers.EthernetTypeIPv4), ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolGRE),
		&layers.GRE{Protocol: layers.EthernetTypeIPv4, KeyPresent: true, Key: 5}, ip4("10.1.0.1", "10.2.0.1", layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 2})
	gretap := build(t, append([]gopacket.SerializableLayer{eth(layers.EthernetTypeIPv4), ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolGRE),
		&layers.GRE{Protocol: layers.EthernetTypeTransparentEthernetBridging}}, inner()...)...)
	qinq := build(t, eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 200, Type: layers.EthernetTypeIPv4}, ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP), tcp(1, 2))
	mpls := build(t, eth(layers.EthernetTypeMPLSUnicast), &layers.MPLS{Label: 16, TTL: 64}, &layers.MPLS{Label: 17, StackBottom: true, TTL: 64},
		ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), udp(1, 2), gopacket.Payload("m"))
	tlsHello := build(t, eth(layers.EthernetTypeIPv4), ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP), tcp(40000, 443), gopacket.Payload(clientHello("example.com")))
	httpReq := build(t, eth(layers.EthernetTypeIPv4), ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP), tcp(40000, 80),
		gopacket.Payload("GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	wg := make([]byte, 148)
	wg[0] = 1
	wgPkt := build(t, eth(layers.EthernetTypeIPv4), ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), udp(51820, 51820), gopacket.Payload(wg))
	cut := vxlan(4789)[:14+20+8+8+14+20+6]

	for _, tc := range []struct {
		name string
		lt   capture.LinkType
		data []byte
		want string
		sum  string
	}{
		{"vxlan 4789", capture.LinkTypeEthernet, vxlan(4789), "eth ipv4 udp vxlan*vxlan | eth ipv4 tcp",
			"VXLAN vni 42 10.0.0.1:39000 > 10.0.0.2:4789 | TCP 172.16.0.2:40000 > 172.16.1.9:8080 [S] seq 100 win 1000 len 0"},
		{"vxlan 8472", capture.LinkTypeEthernet, vxlan(8472), "eth ipv4 udp vxlan*vxlan | eth ipv4 tcp", ""},
		{"port unreachable", capture.LinkTypeEthernet, unreach, "eth ipv4 icmp*icmp-quote | ipv4 udp",
			"ICMP 10.0.0.2 > 10.0.0.1 port unreachable | quoted UDP 10.0.0.1:5000 > 10.0.0.2:53"},
		{"time exceeded quotes 8 TCP bytes", capture.LinkTypeEthernet, timeExceeded, "eth ipv4 icmp*icmp-quote | ipv4 tcp",
			"ICMP 10.9.9.9 > 10.0.0.1 time exceeded in transit | quoted TCP 10.0.0.1:1234 > 10.0.0.2:80 seq 100"},
		{"ipip", capture.LinkTypeEthernet, ipip, "eth ipv4*ipip | ipv4 udp", "IPIP 192.0.2.1 > 192.0.2.2 | UDP 10.1.0.1:1 > 10.2.0.1:2 len 1"},
		{"sit", capture.LinkTypeEthernet, sit, "eth ipv4*sit | ipv6 tcp", ""},
		{"gre", capture.LinkTypeEthernet, gre, "eth ipv4 gre*gre | ipv4 icmp",
			"GRE key 5 192.0.2.1 > 192.0.2.2 | ICMP 10.1.0.1 > 10.2.0.1 echo request id 1 seq 2"},
		{"gretap", capture.LinkTypeEthernet, gretap, "eth ipv4 gre*gre | eth ipv4 tcp", ""},
		{"qinq", capture.LinkTypeEthernet, qinq, "eth vlan vlan ipv4 tcp", "vlan 100,200 TCP 10.0.0.1:1 > 10.0.0.2:2 [S] seq 100 win 1000 len 0"},
		{"mpls", capture.LinkTypeEthernet, mpls, "eth mpls mpls ipv4 udp", "mpls 16,17 UDP 10.0.0.1:1 > 10.0.0.2:2 len 1"},
		{"tls sni", capture.LinkTypeEthernet, tlsHello, "eth ipv4 tcp tls", ""},
		{"http", capture.LinkTypeEthernet, httpReq, "eth ipv4 tcp http",
			"HTTP 10.0.0.1:40000 > 10.0.0.2:80 GET /index.html HTTP/1.1 host example.com"},
		{"wireguard", capture.LinkTypeEthernet, wgPkt, "eth ipv4 udp wireguard", ""},
		{"raw ip", capture.LinkTypeRaw, ipip[14:], "ipv4*ipip | ipv4 udp", ""},
		{"inner tcp cut", capture.LinkTypeEthernet, cut, "eth ipv4 udp vxlan*vxlan | eth ipv4 tcp!", ""},
		{"unknown link type", 147, []byte{1, 2}, "unknown!", ""},
		{"ethernet cut", capture.LinkTypeEthernet, []byte{1, 2, 3}, "eth!", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := decodeBytes(tc.lt, tc.data)
			if got := stack(p); got != tc.want {
				t.Errorf("stack\n got %s\nwant %s", got, tc.want)
			}
			if tc.sum != "" {
				if got := string(p.AppendSummary(nil)); got != tc.sum {
					t.Errorf("summary\n got %s\nwant %s", got, tc.sum)
				}
			}
		})
	}
}

func TestDeepNestingStops(t *testing.T) {
	ls := []gopacket.SerializableLayer{eth(layers.EthernetTypeIPv4)}
	for i := 0; i < MaxDepth+2; i++ {
		ls = append(ls, ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolIPv4))
	}
	ls = append(ls, ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), udp(1, 2))
	p := decodeBytes(capture.LinkTypeEthernet, build(t, ls...))
	last := p.Layers[len(p.Layers)-1]
	if last.Err == nil || !strings.Contains(last.Err.Error(), "nested") || last.Depth != MaxDepth {
		t.Fatalf("last layer %+v, stack %s", last, stack(p))
	}
}

func TestFieldsOfApplicationLayers(t *testing.T) {
	p := decodeBytes(capture.LinkTypeEthernet, build(t, eth(layers.EthernetTypeIPv4),
		ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP), tcp(40000, 443), gopacket.Payload(clientHello("example.com"))))
	tls := p.Layers[len(p.Layers)-1].dl.(*TLSHello)
	if string(tls.SNI) != "example.com" || string(tls.ALPN) != "h2" {
		t.Errorf("sni %q alpn %q", tls.SNI, tls.ALPN)
	}
	// A hello cut before the extension list is an error, not a panic.
	hello := clientHello("example.com")
	p = decodeBytes(capture.LinkTypeEthernet, build(t, eth(layers.EthernetTypeIPv4),
		ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolTCP), tcp(40000, 443), gopacket.Payload(hello[:50])))
	if last := p.Layers[len(p.Layers)-1]; last.Proto != ProtoTLS || last.Err == nil {
		t.Errorf("cut hello: %s", stack(p))
	}
}

// clientHello builds a minimal TLS 1.2 record holding a ClientHello with
// server_name and ALPN "h2".
func clientHello(name string) []byte {
	ext := func(typ uint16, body []byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, typ)
		b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
		return append(b, body...)
	}
	sni := binary.BigEndian.AppendUint16(nil, uint16(len(name)+3))
	sni = append(sni, 0)
	sni = binary.BigEndian.AppendUint16(sni, uint16(len(name)))
	sni = append(sni, name...)
	alpn := []byte{0, 3, 2, 'h', '2'}
	exts := append(ext(0, sni), ext(16, alpn)...)
	hello := []byte{3, 3}
	hello = append(hello, make([]byte, 32)...)
	hello = append(hello, 0)                // session id
	hello = append(hello, 0, 2, 0x13, 0x01) // one cipher suite
	hello = append(hello, 1, 0)             // compression: null
	hello = binary.BigEndian.AppendUint16(hello, uint16(len(exts)))
	hello = append(hello, exts...)
	hs := append([]byte{1, byte(len(hello) >> 16), byte(len(hello) >> 8), byte(len(hello))}, hello...)
	rec := []byte{0x16, 3, 1}
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(hs)))
	return append(rec, hs...)
}

func TestDecodeAllocatesNothing(t *testing.T) {
	d := NewDecoder()
	data := build(t, eth(layers.EthernetTypeIPv4), ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), udp(39000, 4789),
		&layers.VXLAN{ValidIDFlag: true, VNI: 42}, eth(layers.EthernetTypeIPv4), ip4("172.16.0.2", "172.16.1.9", layers.IPProtocolTCP), tcp(1, 2))
	f := capture.Frame{LinkType: capture.LinkTypeEthernet, Data: data, Len: len(data)}
	d.Decode(f)
	var sum []byte
	if n := testing.AllocsPerRun(100, func() {
		p := d.Decode(f)
		sum = p.AppendSummary(sum[:0])
	}); n != 0 {
		t.Errorf("Decode+AppendSummary of a VXLAN frame allocates %.0f times", n)
	}
}

func BenchmarkDecodeVXLAN(b *testing.B) {
	d := NewDecoder()
	data := build(b, eth(layers.EthernetTypeIPv4), ip4("10.0.0.1", "10.0.0.2", layers.IPProtocolUDP), udp(39000, 4789),
		&layers.VXLAN{ValidIDFlag: true, VNI: 42}, eth(layers.EthernetTypeIPv4), ip4("172.16.0.2", "172.16.1.9", layers.IPProtocolTCP), tcp(1, 2))
	f := capture.Frame{LinkType: capture.LinkTypeEthernet, Data: data, Len: len(data)}
	b.ReportAllocs()
	for b.Loop() {
		d.Decode(f)
	}
}

func TestAppendIP(t *testing.T) {
	for _, tc := range []struct {
		ip   []byte
		want string
	}{
		{[]byte{0, 0, 0, 0}, "0.0.0.0"},
		{[]byte{10, 255, 9, 100}, "10.255.9.100"},
		{net.ParseIP("2001:db8::1"), "2001:db8::1"},
		{net.ParseIP("::ffff:1.2.3.4"), "::ffff:1.2.3.4"},
		{[]byte{1, 2, 3}, "010203"},
	} {
		if got := string(AppendIP(nil, tc.ip)); got != tc.want {
			t.Errorf("AppendIP(%v) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}
