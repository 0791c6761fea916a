package filter

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// benchPacket is an Ethernet IPv4 TCP segment 192.168.1.10:51000 to
// 10.0.0.2:443 with 100 bytes of payload.
func benchPacket(t testing.TB) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
		SrcIP: net.IPv4(192, 168, 1, 10).To4(), DstIP: net.IPv4(10, 0, 0, 2).To4()}
	tcp := &layers.TCP{SrcPort: 51000, DstPort: 443, ACK: true, PSH: true, Window: 502}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	eth := &layers.Ethernet{SrcMAC: macs[0], DstMAC: macs[1], EthernetType: layers.EthernetTypeIPv4}
	return serialize(t, eth, ip, tcp, gopacket.Payload(make([]byte, 100)))
}

const benchExpr = "tcp port 443 and not host 10.0.0.1"

func BenchmarkMatch(b *testing.B) {
	p, err := Compile(benchExpr, 1, 0)
	if err != nil {
		b.Fatal(err)
	}
	pkt := benchPacket(b)
	if !p.Match(pkt, len(pkt)) {
		b.Fatal("benchmark packet rejected")
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Match(pkt, len(pkt))
	}
}

func BenchmarkSetMatch(b *testing.B) {
	s, err := NewSet(benchExpr, 0)
	if err != nil {
		b.Fatal(err)
	}
	pkt := benchPacket(b)
	b.ReportAllocs()
	for b.Loop() {
		s.Match(1, pkt, len(pkt))
	}
}

// BenchmarkXNetBPFVM runs the same program in golang.org/x/net/bpf's VM, for
// comparison.
func BenchmarkXNetBPFVM(b *testing.B) {
	p, err := Compile(benchExpr, 1, 0)
	if err != nil {
		b.Fatal(err)
	}
	var ins []bpf.Instruction
	for _, ri := range p.Instructions() {
		ins = append(ins, ri.Disassemble())
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		b.Fatal(err)
	}
	pkt := benchPacket(b)
	b.ReportAllocs()
	for b.Loop() {
		vm.Run(pkt)
	}
}

func BenchmarkCompile(b *testing.B) {
	for b.Loop() {
		if _, err := Compile(benchExpr, 1, 0); err != nil {
			b.Fatal(err)
		}
	}
}
