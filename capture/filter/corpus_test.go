package filter

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// testPacket is one packet of a test capture: the captured bytes, the length
// on the wire (larger for a truncated capture) and what it is, for failures.
type testPacket struct {
	name    string
	data    []byte
	wireLen int
}

// corpusStart is the timestamp of a test capture's first packet; packet i is
// stamped i milliseconds later, so tcpdump's output names it.
var corpusStart = time.Unix(1700000000, 0)

// writeCapture writes pkts to a pcap file of the given link type in dir and
// returns its path.
func writeCapture(t testing.TB, linkType layers.LinkType, pkts []testPacket) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "corpus.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("create test capture: %v", err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(maxSnaplen, linkType); err != nil {
		t.Fatalf("write test capture header: %v", err)
	}
	for i, p := range pkts {
		ci := gopacket.CaptureInfo{
			Timestamp:     corpusStart.Add(time.Duration(i) * time.Millisecond),
			CaptureLength: len(p.data),
			Length:        p.wireLen,
		}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatalf("write test packet %d (%s): %v", i, p.name, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close test capture: %v", err)
	}
	return path
}

// serialize builds a packet from layers, fixing lengths and checksums.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize %v: %v", ls, err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// Addresses the corpus draws from; expressions in the tests name some of them.
var (
	macs = []net.HardwareAddr{
		{0x02, 0, 0, 0, 0, 0x01}, {0x02, 0, 0, 0, 0, 0x02},
		{0x02, 0, 0, 0, 0, 0x03}, {0x52, 0x54, 0, 0x12, 0x34, 0x56},
	}
	macBroadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	hosts4       = []string{"10.0.0.1", "10.0.0.2", "10.1.2.3", "192.168.1.10", "192.168.1.20", "172.16.5.4", "8.8.8.8", "10.0.0.254"}
	hosts6       = []string{"2001:db8::1", "2001:db8::2", "fe80::1", "2001:db8:1::99"}
	ports        = []uint16{22, 53, 80, 443, 8000, 8080, 8100, 8101, 12345, 51000, 4789}
	ttls         = []uint8{1, 32, 63, 64, 65, 128, 255}
	payloadLens  = []int{0, 0, 6, 20, 60, 150, 400, 1000, 1400}
	tcpFlags     = []string{"S", "SA", "A", "PA", "FA", "R", "RA", "", "FSRPAU", "SE"}
)

// corpusBuilder draws varied packets from a fixed seed, so every run writes
// the same capture.
type corpusBuilder struct {
	t   testing.TB
	rng *rand.Rand
}

func newCorpusBuilder(t testing.TB) *corpusBuilder {
	return &corpusBuilder{t: t, rng: rand.New(rand.NewPCG(1, 2))}
}

func pick[T any](b *corpusBuilder, xs []T) T { return xs[b.rng.IntN(len(xs))] }

func (b *corpusBuilder) eth(typ layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: pick(b, macs), DstMAC: pick(b, macs), EthernetType: typ}
}

func (b *corpusBuilder) ip4(proto layers.IPProtocol) *layers.IPv4 {
	src, dst := pick(b, hosts4), pick(b, hosts4)
	return &layers.IPv4{
		Version: 4, TTL: pick(b, ttls), Protocol: proto, Id: uint16(b.rng.Uint32()),
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4(),
	}
}

func (b *corpusBuilder) ip6(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{
		Version: 6, HopLimit: pick(b, ttls), NextHeader: next,
		SrcIP: net.ParseIP(pick(b, hosts6)), DstIP: net.ParseIP(pick(b, hosts6)),
	}
}

func (b *corpusBuilder) tcp(network gopacket.NetworkLayer) *layers.TCP {
	tcp := &layers.TCP{SrcPort: layers.TCPPort(pick(b, ports)), DstPort: layers.TCPPort(pick(b, ports)),
		Seq: b.rng.Uint32(), Window: 64240}
	for _, f := range pick(b, tcpFlags) {
		switch f {
		case 'F':
			tcp.FIN = true
		case 'S':
			tcp.SYN = true
		case 'R':
			tcp.RST = true
		case 'P':
			tcp.PSH = true
		case 'A':
			tcp.ACK, tcp.Ack = true, b.rng.Uint32()
		case 'U':
			tcp.URG = true
		case 'E':
			tcp.ECE, tcp.CWR = true, true
		}
	}
	if b.rng.IntN(4) == 0 { // a header with options: tcp[12] > 0x50
		tcp.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}
	}
	if err := tcp.SetNetworkLayerForChecksum(network); err != nil {
		b.t.Fatalf("tcp checksum: %v", err)
	}
	return tcp
}

func (b *corpusBuilder) udp(network gopacket.NetworkLayer, sport, dport uint16) *layers.UDP {
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(network); err != nil {
		b.t.Fatalf("udp checksum: %v", err)
	}
	return udp
}

func (b *corpusBuilder) payload() gopacket.Payload {
	p := make([]byte, pick(b, payloadLens))
	for i := range p {
		p[i] = byte(b.rng.IntN(256))
	}
	return p
}

func (b *corpusBuilder) dns() *layers.DNS {
	return &layers.DNS{ID: uint16(b.rng.Uint32()), RD: true, QDCount: 1,
		Questions: []layers.DNSQuestion{{Name: []byte("example.com"), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}}
}

// ipv4Packets returns IPv4 datagrams (TCP, UDP DNS, ICMP, options and
// fragments) without a link header.
func (b *corpusBuilder) ipv4Packets() []testPacket {
	var out []testPacket
	add := func(name string, ls ...gopacket.SerializableLayer) {
		out = append(out, testPacket{name: name, data: serialize(b.t, ls...)})
	}
	for range 90 {
		ip := b.ip4(layers.IPProtocolTCP)
		if b.rng.IntN(6) == 0 { // router alert: IHL 6, so ports move
			ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
		}
		add("ipv4 tcp", ip, b.tcp(ip), b.payload())
	}
	for range 5 {
		ip := b.ip4(layers.IPProtocolTCP)
		add("ipv4 http get", ip, b.tcp(ip), gopacket.Payload("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	}
	for range 20 {
		ip := b.ip4(layers.IPProtocolUDP)
		sport, dport := uint16(40000+b.rng.IntN(20000)), uint16(53)
		if b.rng.IntN(2) == 0 {
			sport, dport = dport, sport
		}
		add("ipv4 udp dns", ip, b.udp(ip, sport, dport), b.dns())
	}
	for range 10 {
		ip := b.ip4(layers.IPProtocolUDP)
		add("ipv4 udp", ip, b.udp(ip, pick(b, ports), pick(b, ports)), b.payload())
	}
	icmpTypes := []layers.ICMPv4TypeCode{
		layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0),
		layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0),
		layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodePort),
		layers.CreateICMPv4TypeCode(layers.ICMPv4TypeTimeExceeded, 0),
	}
	for range 16 {
		ip := b.ip4(layers.IPProtocolICMPv4)
		add("ipv4 icmp", ip, &layers.ICMPv4{TypeCode: pick(b, icmpTypes), Id: 7, Seq: uint16(b.rng.IntN(100))}, b.payload())
	}
	for i := range 8 { // fragments: only offset 0 has the TCP header
		ip := b.ip4(layers.IPProtocolTCP)
		ip.Flags = layers.IPv4MoreFragments
		if i%2 == 1 {
			ip.FragOffset = 185
			add("ipv4 tcp later fragment", ip, gopacket.Payload(append([]byte{0x01, 0xbb, 0x01, 0xbb}, make([]byte, 60)...)))
			continue
		}
		add("ipv4 tcp first fragment", ip, b.tcp(ip), b.payload())
	}
	for _, proto := range []layers.IPProtocol{47, 50, 89, 132} { // bare protocols
		ip := b.ip4(proto)
		add("ipv4 proto", ip, gopacket.Payload(make([]byte, 24)))
	}
	return out
}

// ipv6Packets returns IPv6 datagrams (TCP, UDP, ICMPv6, extension headers)
// without a link header.
func (b *corpusBuilder) ipv6Packets() []testPacket {
	var out []testPacket
	add := func(name string, ls ...gopacket.SerializableLayer) {
		out = append(out, testPacket{name: name, data: serialize(b.t, ls...)})
	}
	for range 35 {
		ip := b.ip6(layers.IPProtocolTCP)
		add("ipv6 tcp", ip, b.tcp(ip), b.payload())
	}
	for range 10 {
		ip := b.ip6(layers.IPProtocolUDP)
		add("ipv6 udp dns", ip, b.udp(ip, uint16(40000+b.rng.IntN(20000)), 53), b.dns())
	}
	for i := range 12 {
		ip := b.ip6(layers.IPProtocolICMPv6)
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
		if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
			b.t.Fatal(err)
		}
		switch i % 3 {
		case 0:
			add("ipv6 icmp6 echo", ip, icmp, &layers.ICMPv6Echo{Identifier: 9, SeqNumber: uint16(i)}, b.payload())
		case 1:
			icmp.TypeCode = layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoReply, 0)
			add("ipv6 icmp6 echo reply", ip, icmp, &layers.ICMPv6Echo{Identifier: 9, SeqNumber: uint16(i)})
		default:
			icmp.TypeCode = layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)
			add("ipv6 icmp6 neighbor solicitation", ip, icmp, &layers.ICMPv6NeighborSolicitation{TargetAddress: net.ParseIP(pick(b, hosts6))})
		}
	}
	for i := range 6 { // extension headers in front of TCP, built by hand
		ip := b.ip6(layers.IPProtocolIPv6HopByHop)
		ext := []byte{byte(layers.IPProtocolTCP), 0, 1, 4, 0, 0, 0, 0} // hop-by-hop, PadN
		name := "ipv6 hop-by-hop tcp"
		if i%2 == 1 {
			ip.NextHeader = layers.IPProtocolIPv6Fragment
			ext = []byte{byte(layers.IPProtocolTCP), 0, 0, 1, 0, 0, 0, 42} // offset 0, more fragments
			name = "ipv6 fragment tcp"
		}
		seg := serialize(b.t, b.tcp(ip), b.payload())
		add(name, ip, gopacket.Payload(append(ext, seg...)))
	}
	return out
}

// ipPackets returns the IPv4 and IPv6 datagrams, shuffled.
func (b *corpusBuilder) ipPackets() []testPacket {
	pkts := append(b.ipv4Packets(), b.ipv6Packets()...)
	b.rng.Shuffle(len(pkts), func(i, j int) { pkts[i], pkts[j] = pkts[j], pkts[i] })
	return pkts
}

// ethernetCorpus returns a few hundred Ethernet frames: every IP datagram
// above plain, then ARP, 802.1Q and QinQ, MPLS, GRE, VXLAN, broadcast, LLC,
// runts, jumbo frames and truncated captures.
func ethernetCorpus(t testing.TB) []testPacket {
	b := newCorpusBuilder(t)
	var out []testPacket
	frame := func(name string, ls ...gopacket.SerializableLayer) {
		out = append(out, testPacket{name: name, data: serialize(t, ls...)})
	}
	etherTypeOf := func(p testPacket) layers.EthernetType {
		if p.data[0]>>4 == 6 {
			return layers.EthernetTypeIPv6
		}
		return layers.EthernetTypeIPv4
	}
	ips := b.ipPackets()
	var ips4 []testPacket
	for _, p := range ips {
		if p.data[0]>>4 == 4 {
			ips4 = append(ips4, p)
		}
	}
	for _, p := range ips {
		frame(p.name, b.eth(etherTypeOf(p)), gopacket.Payload(p.data))
	}
	for i := range 10 {
		arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
			SourceHwAddress: macs[0], SourceProtAddress: net.ParseIP(pick(b, hosts4)).To4(),
			DstHwAddress: make(net.HardwareAddr, 6), DstProtAddress: net.ParseIP(pick(b, hosts4)).To4()}
		eth := b.eth(layers.EthernetTypeARP)
		if i%2 == 0 {
			eth.DstMAC = macBroadcast
		} else {
			arp.Operation = layers.ARPReply
		}
		frame("arp", eth, arp)
	}
	vlans := []uint16{100, 200, 300}
	for i := range 24 { // 802.1Q around an IP datagram
		p := ips[i*5%len(ips)]
		q := &layers.Dot1Q{VLANIdentifier: pick(b, vlans), Type: etherTypeOf(p)}
		frame("802.1q "+p.name, b.eth(layers.EthernetTypeDot1Q), q, gopacket.Payload(p.data))
	}
	for i := range 10 { // QinQ: 802.1ad or two 802.1Q tags
		p := ips[i*7%len(ips)]
		outerType := layers.EthernetTypeQinQ
		if i%2 == 1 {
			outerType = layers.EthernetTypeDot1Q
		}
		outer := &layers.Dot1Q{VLANIdentifier: 10 + uint16(i%2), Type: layers.EthernetTypeDot1Q}
		inner := &layers.Dot1Q{VLANIdentifier: pick(b, vlans), Type: etherTypeOf(p)}
		frame("qinq "+p.name, b.eth(outerType), outer, inner, gopacket.Payload(p.data))
	}
	for i := range 12 { // MPLS with one or two labels over IPv4
		p := ips4[i*3]
		labels := []gopacket.SerializableLayer{b.eth(layers.EthernetTypeMPLSUnicast)}
		if i%3 == 0 {
			labels = append(labels, &layers.MPLS{Label: 100, TTL: 64})
		}
		labels = append(labels, &layers.MPLS{Label: 16 + uint32(i), StackBottom: true, TTL: 64}, gopacket.Payload(p.data))
		frame("mpls "+p.name, labels...)
	}
	for i := range 10 { // GRE carrying IPv4 or Ethernet
		ip := b.ip4(layers.IPProtocolGRE)
		inner := ips4[i*5]
		if i%2 == 0 {
			frame("gre "+inner.name, b.eth(layers.EthernetTypeIPv4), ip, &layers.GRE{Protocol: layers.EthernetTypeIPv4}, gopacket.Payload(inner.data))
			continue
		}
		frame("gre teb "+inner.name, b.eth(layers.EthernetTypeIPv4), ip, &layers.GRE{Protocol: layers.EthernetTypeTransparentEthernetBridging},
			b.eth(layers.EthernetTypeIPv4), gopacket.Payload(inner.data))
	}
	for i := range 10 { // VXLAN
		ip := b.ip4(layers.IPProtocolUDP)
		inner := ips[i*11%len(ips)]
		frame("vxlan "+inner.name, b.eth(layers.EthernetTypeIPv4), ip, b.udp(ip, uint16(50000+i), 4789),
			&layers.VXLAN{ValidIDFlag: true, VNI: 42}, b.eth(etherTypeOf(inner)), gopacket.Payload(inner.data))
	}
	for range 6 { // broadcast DHCP-like
		ip := b.ip4(layers.IPProtocolUDP)
		ip.DstIP = net.IPv4bcast.To4()
		eth := b.eth(layers.EthernetTypeIPv4)
		eth.DstMAC = macBroadcast
		frame("broadcast udp", eth, ip, b.udp(ip, 68, 67), gopacket.Payload(make([]byte, 300)))
	}
	for range 4 { // IPv4 multicast (mDNS)
		ip := b.ip4(layers.IPProtocolUDP)
		ip.DstIP = net.IPv4(224, 0, 0, 251).To4()
		eth := b.eth(layers.EthernetTypeIPv4)
		eth.DstMAC = net.HardwareAddr{0x01, 0, 0x5e, 0, 0, 0xfb}
		frame("multicast mdns", eth, ip, b.udp(ip, 5353, 5353), b.dns())
	}
	for range 4 { // 802.3 + LLC (spanning tree) and an odd EtherType (LLDP)
		eth := b.eth(layers.EthernetTypeLLC)
		eth.DstMAC = net.HardwareAddr{0x01, 0x80, 0xc2, 0, 0, 0}
		frame("llc stp", eth, &layers.LLC{DSAP: 0x42, SSAP: 0x42, Control: 3}, gopacket.Payload(make([]byte, 35)))
		frame("lldp", b.eth(layers.EthernetTypeLinkLayerDiscovery), gopacket.Payload(make([]byte, 40)))
	}
	for i := range 4 { // jumbo frames
		p := ips[i]
		big := append(append([]byte(nil), p.data...), make([]byte, 8000)...)
		frame("jumbo "+p.name, b.eth(etherTypeOf(p)), gopacket.Payload(big))
	}
	// Truncated captures: the filter sees fewer bytes than went on the wire.
	for i, cut := range []int{14, 20, 34, 38, 42, 54, 60, 100} {
		p := out[i*13%len(ips)]
		if cut >= len(p.data) {
			cut = len(p.data) - 1
		}
		out = append(out, testPacket{name: "truncated " + p.name, data: p.data[:cut:cut], wireLen: len(p.data)})
	}
	for _, n := range []int{1, 6, 13} { // runts
		out = append(out, testPacket{name: "runt", data: append([]byte(nil), out[n].data[:n]...)})
	}
	return fillWireLen(out)
}

// rawIPCorpus returns IPv4 and IPv6 datagrams for LINKTYPE_RAW, a few of them
// truncated.
func rawIPCorpus(t testing.TB) []testPacket {
	out := newCorpusBuilder(t).ipPackets()
	for i := range 6 {
		p := out[i*9]
		out = append(out, testPacket{name: "truncated " + p.name, data: p.data[:20+i*4], wireLen: len(p.data)})
	}
	return fillWireLen(out)
}

// sll2Corpus returns IPv4, IPv6 and ARP packets behind a Linux cooked v2
// header, from three interfaces and in every direction.
func sll2Corpus(t testing.TB) []testPacket {
	b := newCorpusBuilder(t)
	var out []testPacket
	add := func(name string, proto layers.EthernetType, payload []byte) {
		h := make([]byte, 20, 20+len(payload))
		binary.BigEndian.PutUint16(h[0:], uint16(proto))
		binary.BigEndian.PutUint32(h[4:], uint32(1+b.rng.IntN(3))) // ifindex
		binary.BigEndian.PutUint16(h[8:], 1)                       // ARPHRD_ETHER
		h[10] = byte(pick(b, []int{0, 1, 2, 3, 4}))                // host, broadcast, multicast, other host, outgoing
		h[11] = 6
		copy(h[12:], pick(b, macs))
		out = append(out, testPacket{name: "sll2 " + name, data: append(h, payload...)})
	}
	for _, p := range b.ipPackets() {
		proto := layers.EthernetTypeIPv4
		if p.data[0]>>4 == 6 {
			proto = layers.EthernetTypeIPv6
		}
		add(p.name, proto, p.data)
	}
	for range 6 {
		arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
			SourceHwAddress: macs[1], SourceProtAddress: net.ParseIP(pick(b, hosts4)).To4(),
			DstHwAddress: make(net.HardwareAddr, 6), DstProtAddress: net.ParseIP(pick(b, hosts4)).To4()}
		add("arp", layers.EthernetTypeARP, serialize(t, arp))
	}
	return fillWireLen(out)
}

// fillWireLen sets the wire length of every untruncated packet.
func fillWireLen(pkts []testPacket) []testPacket {
	for i := range pkts {
		if pkts[i].wireLen == 0 {
			pkts[i].wireLen = len(pkts[i].data)
		}
	}
	return pkts
}
