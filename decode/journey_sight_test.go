package decode

import (
	"encoding/binary"
	"net"
	"reflect"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// sightFrames are frames ReadFrame reads without decoding (fast) and
// frames it leaves to the decoder.
func sightFrames(t testing.TB) []struct {
	name string
	f    capture.Frame
	fast bool
} {
	eth4 := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	eth6 := &layers.Ethernet{SrcMAC: eth4.SrcMAC, DstMAC: eth4.DstMAC, EthernetType: layers.EthernetTypeIPv6}
	ip4 := func(proto layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Id: 7, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	}
	ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")}
	tcp := func(nl gopacket.NetworkLayer, flags string) *layers.TCP {
		l := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 1000, Ack: 5, Window: 64240, SYN: flags == "S", RST: flags == "R", ACK: flags == "A",
			Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}
		l.SetNetworkLayerForChecksum(nl)
		return l
	}
	ser := func(ls ...gopacket.SerializableLayer) []byte {
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	v4 := ip4(layers.IPProtocolTCP)
	tcp4 := ser(eth4, v4, tcp(v4, "S"), gopacket.Payload("hello"))
	tcp6 := ser(eth6, ip6, tcp(ip6, "A"))
	v4r := ip4(layers.IPProtocolTCP)
	rst4 := ser(eth4, v4r, tcp(v4r, "R"))
	u4 := ip4(layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: 5353, DstPort: 53}
	udp.SetNetworkLayerForChecksum(u4)
	udp4 := ser(eth4, u4, udp, gopacket.Payload("q"))
	x4 := ip4(layers.IPProtocolUDP)
	vx := &layers.UDP{SrcPort: 40000, DstPort: 4789}
	vx.SetNetworkLayerForChecksum(x4)
	vxlan4 := ser(eth4, x4, vx, &layers.VXLAN{ValidIDFlag: true, VNI: 42}, eth4, v4, tcp(v4, "S"))
	g4 := ip4(layers.IPProtocolGRE)
	gre4 := ser(eth4, g4, &layers.GRE{Protocol: layers.EthernetTypeIPv4}, v4, tcp(v4, "S"))
	i4 := ip4(layers.IPProtocolICMPv4)
	echo4 := ser(eth4, i4, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 3, Seq: 1}, gopacket.Payload("ping"))
	unreach4 := ser(eth4, i4, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, 3)}, gopacket.Payload(udp4[14:14+28]))
	frag := append([]byte(nil), tcp4...)
	binary.BigEndian.PutUint16(frag[14+6:], 0x2000) // more fragments
	padded := append(append([]byte(nil), tcp4...), 0, 0, 0, 0)
	vlan := ser(&layers.Ethernet{SrcMAC: eth4.SrcMAC, DstMAC: eth4.DstMAC, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 5, Type: layers.EthernetTypeIPv4}, v4, tcp(v4, "S"))
	ethFrame := func(b []byte) capture.Frame {
		return capture.Frame{Netns: "n", Iface: "eth0", Dir: capture.DirIn, LinkType: capture.LinkTypeEthernet, Len: len(b), Data: b}
	}
	nflogFrame := func(family uint8, hook uint8, prefix string, payload []byte) capture.Frame {
		b := []byte{family, 0, 0, 5}
		tlv := func(typ uint16, v []byte) {
			h := make([]byte, 4)
			binary.LittleEndian.PutUint16(h, uint16(4+len(v)))
			binary.LittleEndian.PutUint16(h[2:], typ)
			b = append(append(b, h...), v...)
			for len(b)%4 != 0 {
				b = append(b, 0)
			}
		}
		tlv(nfulaPacketHdr, []byte{0x08, 0x00, hook, 0})
		tlv(nfulaIfindexIn, []byte{0, 0, 0, 2})
		tlv(nfulaPrefix, append([]byte(prefix), 0))
		tlv(nfulaPayload, payload)
		return capture.Frame{Netns: "n", Iface: "nflog:5", LinkType: capture.LinkTypeNFLOG, Len: len(b), Data: b}
	}
	return []struct {
		name string
		f    capture.Frame
		fast bool
	}{
		{"ethernet ipv4 tcp", ethFrame(tcp4), true},
		{"ethernet ipv6 tcp", ethFrame(tcp6), true},
		{"ethernet ipv4 tcp reset", ethFrame(rst4), true},
		{"nflog ipv4 tcp, hooktrace's prefix", nflogFrame(2, 1, nflog.LogPrefixFirst, tcp4[14:]), true},
		{"nflog ipv6 tcp, a user's prefix", nflogFrame(10, 4, "mine", tcp6[14:]), true},
		{"ethernet ipv4 udp", ethFrame(udp4), true},
		{"ethernet ipv4 vxlan", ethFrame(vxlan4), false},
		{"ethernet icmp echo", ethFrame(echo4), true},
		{"ethernet icmp port unreachable, quoting udp", ethFrame(unreach4), true},
		{"ethernet ipv4 fragment", ethFrame(frag), false},
		{"ethernet padding after the packet", ethFrame(padded), true},
		{"ethernet vlan", ethFrame(vlan), false},
		{"nflog ipv6 family, ipv4 packet", nflogFrame(10, 1, "", tcp4[14:]), false},
		{"ethernet type ipv4, ipv6 packet", ethFrame(append([]byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0}, tcp6[14:]...)), false},
		{"nflog bridge family", nflogFrame(7, 1, "", tcp4[14:]), false},
		{"nflog udp", nflogFrame(2, 1, "", udp4[14:]), true},
		{"truncated packet", ethFrame(tcp4[:14+20+10]), false},
		{"ethernet ipv4 gre", ethFrame(gre4), false},
	}
}

// TestReadFrame: the frames ReadFrame reads without decoding give the
// sighting ReadPacket gives of them decoded; the others it leaves.
func TestReadFrame(t *testing.T) {
	dec := NewDecoder()
	var steps StepTable
	for _, c := range sightFrames(t) {
		var fast, full Sighting
		got := fast.ReadFrame(c.f, &steps)
		if got != c.fast {
			t.Errorf("%s: ReadFrame read it: %v, want %v", c.name, got, c.fast)
			continue
		}
		full.ReadPacket(dec.Decode(c.f), &steps)
		if got && !reflect.DeepEqual(fast, full) {
			t.Errorf("%s: ReadFrame gives\n%+v\nReadPacket\n%+v", c.name, fast, full)
		}
		if got && !full.hasIP {
			t.Errorf("%s: no IP packet read", c.name)
		}
	}
}

// FuzzReadFrame: whatever frame ReadFrame reads without decoding, it
// reads as ReadPacket reads the frame decoded. The input is a link type
// choice byte and the frame.
func FuzzReadFrame(f *testing.F) {
	for _, c := range sightFrames(f) {
		lt := byte(0)
		if c.f.LinkType == capture.LinkTypeNFLOG {
			lt = 1
		}
		f.Add(append([]byte{lt}, c.f.Data...))
	}
	dec := NewDecoder()
	var steps StepTable
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		fr := capture.Frame{Netns: "n", Iface: "i", LinkType: capture.LinkTypeEthernet, Data: data[1:], Len: len(data) - 1}
		if data[0]&1 == 1 {
			fr.LinkType = capture.LinkTypeNFLOG
		}
		var fast, full Sighting
		if !fast.ReadFrame(fr, &steps) {
			return
		}
		full.ReadPacket(dec.Decode(fr), &steps)
		if !reflect.DeepEqual(fast, full) {
			t.Fatalf("ReadFrame gives\n%+v\nReadPacket\n%+v", fast, full)
		}
	})
}
