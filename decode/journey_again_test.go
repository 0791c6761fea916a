package decode

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// withTTL returns a copy of IPv4 packet ip with TTL ttl.
func withTTL(ip []byte, ttl uint8) []byte {
	c := append([]byte(nil), ip...)
	c[8] = ttl
	return c
}

// TestJourneySameFingerprintAgain: packets alike in every field the
// fingerprint covers (datagrams with IPv4 id 0 and the same payload) are
// told apart when one is seen where the other was already: the same
// device and direction, or the same hook's NFLOG copy, with the same TTL.
// The same packet seen elsewhere, or there again with a lower TTL (after
// a router), stays one journey.
func TestJourneySameFingerprintAgain(t *testing.T) {
	a := ipv4("10.71.0.1", "10.71.9.9", 0, 17, udpDgram(40001, 443, "same payload"))
	b := ipv4("10.71.0.2", "10.71.9.9", 0, 17, udpDgram(40002, 443, "same payload"))
	for _, tc := range []struct {
		name string
		feed func(f *feed)
		want []string // each journey's flow and step kinds
	}{
		{"two datagrams on one device", func(f *feed) {
			f.capture(1, "h", "eth0", capture.DirIn, ether(a))
			f.capture(500_000, "h", "eth0", capture.DirIn, ether(b))
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: capture", "10.71.0.2:40002 > 10.71.9.9:443: capture"}},
		{"the trace events after the second join it", func(f *feed) {
			f.capture(1, "h", "eth0", capture.DirIn, ether(a))
			f.rule(2, "h", 0x11, "fw", "input", "input", 3, "accept", nflog.VerdictAccept, a)
			f.capture(500_000, "h", "eth0", capture.DirIn, ether(b))
			f.rule(500_002, "h", 0x12, "fw", "input", "input", 4, "drop", nflog.VerdictDrop, b)
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: capture rule", "10.71.0.2:40002 > 10.71.9.9:443: capture rule"}},
		{"live order: the second's trace events and drop before its frame", func(f *feed) {
			// Live, frames come after the capture's reordering window.
			f.rule(2, "h", 0x11, "fw", "input", "input", 4, "drop", nflog.VerdictDrop, a)
			f.drop(3, "h", "NETFILTER_DROP", a)
			f.capture(1, "h", "eth0", capture.DirIn, ether(a))
			f.drop(1_000_003, "h", "NETFILTER_DROP", b) // before its trace event, even
			f.rule(1_000_002, "h", 0x12, "fw", "input", "input", 4, "drop", nflog.VerdictDrop, b)
			f.capture(1_000_001, "h", "eth0", capture.DirIn, ether(b))
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: capture rule drop", "10.71.0.2:40002 > 10.71.9.9:443: capture rule drop"}},
		{"time order (a plain recording), three packets, the first two 100 µs apart", func(f *feed) {
			c := ipv4("10.71.0.3", "10.71.9.9", 0, 17, udpDgram(40003, 443, "same payload"))
			for i, p := range []struct {
				us int
				ip []byte
			}{{1, a}, {101, b}, {1_500_001, c}} {
				f.capture(p.us, "h", "eth0", capture.DirIn, ether(p.ip))
				f.rule(p.us+30, "h", uint32(0x11+i), "fw", "input", "input", 4, "accept", nflog.VerdictAccept, p.ip)
			}
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: capture rule", "10.71.0.2:40002 > 10.71.9.9:443: capture rule", "10.71.0.3:40003 > 10.71.9.9:443: capture rule"}},
		{"time order, sent again after a drop and forwarded", func(f *feed) {
			f.capture(1, "h", "eth0", capture.DirIn, ether(a))
			f.rule(2, "h", 0x11, "fw", "fwd", "forward", 4, "drop", nflog.VerdictDrop, a)
			f.drop(3, "h", "NETFILTER_DROP", a)
			f.capture(1_000_001, "h", "eth0", capture.DirIn, ether(b))
			f.rule(1_000_002, "h", 0x12, "fw", "fwd", "forward", 5, "accept", nflog.VerdictAccept, b)
			f.capture(1_000_005, "h", "eth1", capture.DirOut, ether(b))
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: capture rule drop", "10.71.0.2:40002 > 10.71.9.9:443: capture rule capture"}},
		{"live order, sent again after a drop and forwarded", func(f *feed) {
			f.rule(2, "h", 0x11, "fw", "fwd", "forward", 4, "drop", nflog.VerdictDrop, a)
			f.drop(3, "h", "NETFILTER_DROP", a)
			f.rule(1_000_002, "h", 0x12, "fw", "fwd", "forward", 5, "accept", nflog.VerdictAccept, b)
			f.capture(1, "h", "eth0", capture.DirIn, ether(a))
			f.capture(1_000_001, "h", "eth0", capture.DirIn, ether(b))
			f.capture(1_000_005, "h", "eth1", capture.DirOut, ether(b))
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: capture rule drop", "10.71.0.2:40002 > 10.71.9.9:443: capture rule capture"}},
		{"live order, drops alone before the frames", func(f *feed) {
			f.drop(3, "h", "NETFILTER_DROP", a)
			f.drop(1_000_003, "h", "NETFILTER_DROP", b)
			f.capture(1, "h", "eth0", capture.DirIn, ether(a))
			f.capture(1_000_001, "h", "eth0", capture.DirIn, ether(b))
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: capture drop", "10.71.0.2:40002 > 10.71.9.9:443: capture drop"}},
		{"live order, the two packets closer than the capture's reordering", func(f *feed) {
			f.rule(2, "h", 0x11, "fw", "input", "input", 4, "drop", nflog.VerdictDrop, a)
			f.drop(3, "h", "NETFILTER_DROP", a)
			f.rule(50_002, "h", 0x12, "fw", "input", "input", 4, "drop", nflog.VerdictDrop, b)
			f.drop(50_003, "h", "NETFILTER_DROP", b)
			f.capture(1, "h", "eth0", capture.DirIn, ether(a))
			f.capture(50_001, "h", "eth0", capture.DirIn, ether(b))
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: capture rule drop", "10.71.0.2:40002 > 10.71.9.9:443: capture rule drop"}},
		{"one multicast datagram sent and looped back", func(f *feed) {
			// ip_mc_output sends the looped-back copy (its own trace id)
			// through postrouting before the packet itself.
			m := ipv4("10.71.0.1", "224.0.0.251", 0, 17, udpDgram(5353, 5353, "same payload"))
			f.rule(1, "h", 0x11, "fw", "output", "output", 3, "accept", nflog.VerdictAccept, m)
			f.rule(2, "h", 0x12, "fw", "post", "postrouting", 4, "accept", nflog.VerdictAccept, m)
			f.rule(3, "h", 0x11, "fw", "post", "postrouting", 4, "accept", nflog.VerdictAccept, m)
			f.rule(4, "h", 0x12, "fw", "pre", "prerouting", 5, "accept", nflog.VerdictAccept, m)
		}, []string{"10.71.0.1:5353 > 224.0.0.251:5353: rule rule rule rule"}},
		{"one datagram flooded by a bridge to two ports", func(f *feed) {
			for i, port := range []string{"veth1", "veth2"} {
				ev := TraceEvent{Trace: nflog.Trace{Netns: "h", Time: at(1 + i), ID: uint32(0x11 + i), Family: 7, Table: "br", Chain: "fwd",
					Handle: 3, Type: nflog.TraceRule, Verdict: nflog.VerdictAccept, HasVerdict: true}, Hook: "forward", HasPriority: true,
					Rule: "accept", IIFName: "veth0", OIFName: port}
				setSnapshot(&ev, a)
				f.b.AddTrace(&ev)
			}
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: rule rule"}},
		{"one datagram through a chain again after NFQUEUE's repeat", func(f *feed) {
			// The queue's reader took 20 ms; the trace id stays.
			f.rule(1, "h", 0x11, "fw", "input", "input", 3, "queue", nflog.VerdictQueue, a)
			f.rule(20_001, "h", 0x11, "fw", "input", "input", 4, "accept", nflog.VerdictAccept, a)
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: rule rule"}},
		{"one multicast datagram sent twice", func(f *feed) {
			m := ipv4("10.71.0.1", "224.0.0.251", 0, 17, udpDgram(5353, 5353, "same payload"))
			f.rule(1, "h", 0x11, "fw", "output", "output", 3, "accept", nflog.VerdictAccept, m)
			f.rule(1_000_001, "h", 0x12, "fw", "output", "output", 3, "accept", nflog.VerdictAccept, m)
		}, []string{"10.71.0.1:5353 > 224.0.0.251:5353: rule", "10.71.0.1:5353 > 224.0.0.251:5353: rule"}},
		{"one datagram traced in two chains and in another namespace", func(f *feed) {
			f.rule(1, "h", 0x11, "fw", "pre", "prerouting", 3, "accept", nflog.VerdictAccept, a)
			f.rule(2, "h", 0x11, "fw", "input", "input", 4, "accept", nflog.VerdictAccept, a)
			f.rule(3, "g", 0x21, "fw", "input", "input", 4, "accept", nflog.VerdictAccept, a)
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: rule rule rule"}},
		{"one datagram on two iptables-legacy TRACE lines of a chain", func(f *feed) {
			// Every legacy line shows the headers.
			for n := 1; n <= 2; n++ {
				ev := TraceEvent{Trace: nflog.Trace{Netns: "h", Time: at(n), ID: 0x31, Family: 2, Table: "filter", Chain: "INPUT",
					Type: nflog.TraceRule, Verdict: nflog.VerdictContinue, HasVerdict: true}, Hook: "input", RuleNumber: n, Legacy: true}
				setSnapshot(&ev, a)
				f.b.AddTrace(&ev)
			}
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: rule rule"}},
		{"two datagrams in one hook", func(f *feed) {
			f.hook(1, "h", "input", true, a)
			f.hook(500_000, "h", "input", true, b)
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: hook", "10.71.0.2:40002 > 10.71.9.9:443: hook"}},
		{"one datagram logged twice by a user's rules", func(f *feed) {
			for _, us := range []int{1, 2} {
				rec := nflogRecord(2, hookNums["input"], "fw drop", 0, 0, 0, a)
				f.b.AddPacket(f.dec.Decode(capture.Frame{Time: at(us), Netns: "h", Iface: "nflog:5", LinkType: capture.LinkTypeNFLOG, Len: len(rec), Data: rec}))
			}
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: nflog nflog"}},
		{"one datagram on a cooked capture's bridge port and bridge", func(f *feed) {
			// tcpdump -i any names no device: both frames are "in".
			for _, us := range []int{1, 2} {
				frame := append([]byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00}, a...)
				f.b.AddPacket(f.dec.Decode(capture.Frame{Time: at(us), Dir: capture.DirIn, LinkType: capture.LinkTypeLinuxSLL, Len: len(frame), Data: frame}))
			}
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: capture capture"}},
		{"a reset answers the segment sent again", func(f *feed) {
			syn := ipv4("10.71.0.1", "10.71.9.9", 0, 6, tcpSeg(40001, 443, 100, 0, tcpSYN))
			f.capture(1, "h", "eth0", capture.DirOut, ether(syn))
			f.capture(1_000_000, "h", "eth0", capture.DirOut, ether(syn))
			f.capture(1_000_300, "h", "eth0", capture.DirIn, ether(ipv4("10.71.9.9", "10.71.0.1", 0, 6, tcpSeg(443, 40001, 0, 101, tcpRST|tcpACK))))
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: capture", "10.71.0.1:40001 > 10.71.9.9:443: capture reset"}},
		{"one datagram on two devices", func(f *feed) {
			f.capture(1, "h", "eth0", capture.DirIn, ether(a))
			f.capture(5, "h", "veth1", capture.DirOut, ether(a))
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: capture capture"}},
		{"one datagram both ways on one device", func(f *feed) {
			f.capture(1, "h", "lo", capture.DirOut, ether(a))
			f.capture(2, "h", "lo", capture.DirIn, ether(a))
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: capture capture"}},
		{"one datagram back on a device after a router", func(f *feed) {
			f.capture(1, "h", "eth0", capture.DirIn, ether(a))
			f.capture(900, "h", "eth0", capture.DirIn, ether(withTTL(a, 62)))
		}, []string{"10.71.0.1:40001 > 10.71.9.9:443: capture capture"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeed(JourneyOptions{})
			tc.feed(f)
			js := f.b.Flush()
			var got []string
			for _, j := range js {
				var kinds []string
				for _, s := range j.Steps {
					kinds = append(kinds, string(s.Kind))
				}
				got = append(got, j.Flow.Src.String()+" > "+j.Flow.Dst.String()+": "+strings.Join(kinds, " "))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("journeys:\n%s\nwant:\n%s\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"), renderAll(js))
			}
		})
	}
}

// TestFingerprintUDPPayload: datagrams alike in their first 8 payload
// bytes (a QUIC short header's flags and connection id) but not in the
// next 4 (its packet number) have different fingerprints; bytes past
// the 12th, which a trace event's header snapshot does not show, are
// left out.
func TestFingerprintUDPPayload(t *testing.T) {
	fp := func(payload string) uint64 {
		v, ok := readIP(ipv4("10.71.0.1", "10.71.9.9", 0, 17, udpDgram(40001, 443, payload)))
		if !ok {
			t.Fatalf("readIP(%q) failed", payload)
		}
		return v.fp
	}
	if fp("Acid1234PN01rest") == fp("Acid1234PN02rest") {
		t.Error("payload bytes 9-12 left out of the fingerprint")
	}
	if fp("Acid1234PN01rest") != fp("Acid1234PN01REST") {
		t.Error("payload bytes past the 12th in the fingerprint")
	}
}

// TestJourneySameFingerprintAgainSteps: hooktrace's NFLOG copies of two
// packets alike at one hook, read (as on replay with two cores) by
// workers with step tables of their own, are two journeys, as when one
// table read both.
func TestJourneySameFingerprintAgainSteps(t *testing.T) {
	a := ipv4("10.71.0.1", "10.71.9.9", 0, 17, udpDgram(40001, 443, "same payload"))
	b := NewJourneyBuilder(JourneyOptions{})
	dec := NewDecoder()
	for _, us := range []int{1, 500_000} {
		rec := nflogRecord(2, hookNums["input"], nflog.LogPrefixFirst, 0, 0, 0, a)
		var steps StepTable // a worker's
		var s Sighting
		s.ReadPacket(dec.Decode(capture.Frame{Time: at(us), Netns: "h", Iface: "nflog:18516", LinkType: capture.LinkTypeNFLOG, Len: len(rec), Data: rec}), &steps)
		b.AddSighting(&s)
	}
	if js := b.Flush(); len(js) != 2 {
		t.Errorf("%d journeys, want 2:\n%s", len(js), renderAll(js))
	}
}

// TestJourneyFirstSightingLength: a journey whose first sighting holds
// only the packet's first bytes (a trace event's header snapshot, an
// NFLOG copy cut by log snaplen) gives its packet the length its IP
// header says, as a capture cut by its snap length keeps the length on
// the wire, and the bytes it has as caplen.
func TestJourneyFirstSightingLength(t *testing.T) {
	full := ipv4("10.0.0.1", "10.0.0.2", 7, 17, udpDgram(5000, 53, strings.Repeat("q", 1000)))
	for _, tc := range []struct {
		name string
		feed func(f *feed)
		cap  int
	}{
		{"trace snapshot", func(f *feed) {
			f.rule(0, "a", 1, "filter", "input", "input", 4, "counter", nflog.VerdictContinue, full)
		}, 20 + 20},
		{"NFLOG copy of 64 bytes", func(f *feed) { f.hook(0, "a", "input", true, full[:64]) }, 64},
		{"whole NFLOG copy", func(f *feed) { f.hook(0, "a", "input", true, full) }, len(full)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeed(JourneyOptions{})
			tc.feed(f)
			js := f.b.Flush()
			if len(js) != 1 {
				t.Fatalf("%d journeys, want 1", len(js))
			}
			if fr := js[0].Frame; fr.Len != len(full) || len(fr.Data) != tc.cap {
				t.Errorf("packet len %d caplen %d, want %d and %d", fr.Len, len(fr.Data), len(full), tc.cap)
			}
		})
	}
}

// TestJourneyAmbiguousTunnelFingerprint: two tunnel packets alike in
// their outer headers (same hosts, id and size) make the outer
// fingerprint ambiguous: sightings of the outer packet alone within the
// window join neither, nor each other; once the window has passed, the
// fingerprint names the next journey that shows it again.
func TestJourneyAmbiguousTunnelFingerprint(t *testing.T) {
	inner1 := ipv4("10.42.0.1", "10.42.0.2", 55, 17, udpDgram(5000, 7777, "hello"))
	inner2 := ipv4("10.42.0.3", "10.42.0.4", 56, 17, udpDgram(5001, 7778, "hello"))
	outer1 := vxlanFrame("192.0.2.1", "192.0.2.2", 900, 42, inner1)
	outer2 := vxlanFrame("192.0.2.1", "192.0.2.2", 900, 42, inner2)
	f := newFeed(JourneyOptions{})
	f.capture(1, "hosta", "vx0", capture.DirOut, ether(inner1))
	f.capture(2, "hosta", "ua", capture.DirOut, outer1)
	f.capture(3, "hosta", "vx0", capture.DirOut, ether(inner2))
	f.capture(4, "hosta", "ua", capture.DirOut, outer2) // the outer fingerprint is ambiguous from now on
	f.rule(5, "hostb", 0xd0, "underlayfw", "input", "input", 9, "udp dport 4789 accept", nflog.VerdictAccept, outer1[14:])
	f.rule(7, "hostb", 0xd1, "underlayfw", "input", "input", 9, "udp dport 4789 accept", nflog.VerdictAccept, outer2[14:])
	const later = 2_500_000 // the window has passed
	f.rule(later, "hostb", 0xd2, "underlayfw", "input", "input", 9, "udp dport 4789 accept", nflog.VerdictAccept, outer1[14:])
	f.rule(later+10, "hostb", 0xd3, "underlayfw", "input", "input", 9, "udp dport 4789 accept", nflog.VerdictAccept, outer2[14:])
	js := f.b.Flush()
	var got []string
	for _, j := range js {
		got = append(got, fmt.Sprintf("%d steps from %s", len(j.Steps), j.Steps[0].Netns))
	}
	want := []string{"3 steps from hosta", "3 steps from hosta", "1 steps from hostb", "1 steps from hostb", "2 steps from hostb"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("journeys: %q, want %q:\n%s", got, want, renderAll(js))
	}
}

// TestJourneySameFingerprintBackToOlder: when the journey that took a
// fingerprint over from an older one (a packet alike seen again) closes
// first, the fingerprint finds the older one again.
func TestJourneySameFingerprintBackToOlder(t *testing.T) {
	pkt := ether(ipv4("10.9.0.1", "10.9.0.2", 77, 17, udpDgram(4000, 53, "query")))
	f := newFeed(JourneyOptions{})
	f.capture(0, "h", "x0", capture.DirIn, pkt)          // journey 1
	f.capture(10, "h", "x0", capture.DirIn, pkt)         // alike, where 1 saw it: journey 2 takes the fingerprint over
	f.capture(1_000_000, "h", "y0", capture.DirOut, pkt) // 1 did not see it on y0: 1's, which stays open longer
	f.capture(2_200_000, "h", "z0", capture.DirOut, pkt) // 2 closed (idle): the fingerprint is 1's again
	js := f.b.Flush()
	var got []string
	for _, j := range js {
		var ifaces []string
		for _, s := range j.Steps {
			ifaces = append(ifaces, s.Iface)
		}
		got = append(got, strings.Join(ifaces, ","))
	}
	if want := "x0; x0,y0,z0"; strings.Join(got, "; ") != want {
		t.Fatalf("journeys saw %q, want %q:\n%s", strings.Join(got, "; "), want, renderAll(js))
	}
}
