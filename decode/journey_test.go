package decode

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

var updateJourneys = flag.Bool("update", false, "rewrite the golden files in testdata/journeys")

// Packet builders: just enough of each header for the decoder and the
// journey fingerprints (checksums are left zero).

func ipv4(src, dst string, id uint16, proto uint8, l4 []byte) []byte {
	b := make([]byte, 20, 20+len(l4))
	b[0], b[8], b[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(l4)))
	binary.BigEndian.PutUint16(b[4:], id)
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	return append(b, l4...)
}

func tcpSeg(sport, dport uint16, seq, ack uint32, flags uint8) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], ack)
	b[12], b[13] = 5<<4, flags
	binary.BigEndian.PutUint16(b[14:], 64240)
	return b
}

func udpDgram(sport, dport uint16, payload string) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

func icmpError(typ, code uint8, quoted []byte) []byte {
	return append([]byte{typ, code, 0, 0, 0, 0, 0, 0}, quoted...)
}

func ether(ip []byte) []byte {
	b := make([]byte, 14, 14+len(ip))
	b[0], b[6] = 0x02, 0x02
	b[12], b[13] = 0x08, 0x00
	return append(b, ip...)
}

// vxlanFrame wraps an inner IP packet in Ethernet, VXLAN (port 4789),
// UDP, IPv4 and Ethernet.
func vxlanFrame(outerSrc, outerDst string, id uint16, vni uint32, inner []byte) []byte {
	vx := make([]byte, 8)
	vx[0] = 0x08
	binary.BigEndian.PutUint32(vx[4:], vni<<8)
	payload := append(vx, ether(inner)...)
	return ether(ipv4(outerSrc, outerDst, id, 17, udpDgram(40000, 4789, string(payload))))
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func at(us int) time.Time { return t0.Add(time.Duration(us) * time.Microsecond) }

// feed is a recorded event stream for a JourneyBuilder.
type feed struct {
	b   *JourneyBuilder
	dec *Decoder
}

func newFeed(opt JourneyOptions) *feed {
	return &feed{b: NewJourneyBuilder(opt), dec: NewDecoder()}
}

func (f *feed) capture(us int, ns, iface string, dir capture.Direction, frame []byte) {
	f.b.AddPacket(f.dec.Decode(capture.Frame{Time: at(us), Netns: ns, Iface: iface, Dir: dir, LinkType: capture.LinkTypeEthernet, Len: len(frame), Data: frame}))
}

var hookNums = map[string]uint8{"prerouting": 0, "input": 1, "forward": 2, "output": 3, "postrouting": 4}

// hook is hooktrace's own NFLOG message: the packet entering (first) or
// leaving a hook.
func (f *feed) hook(us int, ns, hook string, first bool, ip []byte) {
	prefix := nflog.LogPrefixLast
	if first {
		prefix = nflog.LogPrefixFirst
	}
	rec := nflogRecord(2, hookNums[hook], prefix, 0, 0, 0, ip)
	f.b.AddPacket(f.dec.Decode(capture.Frame{Time: at(us), Netns: ns, Iface: "nflog:18516", LinkType: capture.LinkTypeNFLOG, Len: len(rec), Data: rec}))
}

// rule is a trace event of a rule; ip is the header snapshot, nil for
// the events after a base chain's first.
func (f *feed) rule(us int, ns string, id uint32, table, chain, hook string, handle uint64, rule string, verdict nflog.Verdict, ip []byte) {
	ev := TraceEvent{Trace: nflog.Trace{Netns: ns, Time: at(us), ID: id, Family: 1, Table: table, Chain: chain,
		Handle: handle, Type: nflog.TraceRule, Verdict: verdict, HasVerdict: true}, Hook: hook, HasPriority: true, Rule: rule}
	setSnapshot(&ev, ip)
	f.b.AddTrace(&ev)
}

func (f *feed) policy(us int, ns string, id uint32, table, chain, hook string, policy nflog.Verdict, ip []byte) {
	ev := TraceEvent{Trace: nflog.Trace{Netns: ns, Time: at(us), ID: id, Family: 1, Table: table, Chain: chain,
		Type: nflog.TracePolicy, Policy: policy, HasPolicy: true}, Hook: hook, HasPriority: true}
	setSnapshot(&ev, ip)
	f.b.AddTrace(&ev)
}

func setSnapshot(ev *TraceEvent, ip []byte) {
	if ip == nil {
		return
	}
	ihl := int(ip[0]&0x0f) * 4
	ev.Network = ip[:ihl]
	ev.Transport = ip[ihl:min(len(ip), ihl+20)]
}

func (f *feed) drop(us int, ns, reason string, ip []byte) {
	f.b.AddDrop(&KernelDrop{Time: at(us), Netns: ns, Reason: reason, Location: "some_function+0x10", Network: ip})
}

// render writes a journey compactly, for golden files.
func render(j *Journey) string {
	var b strings.Builder
	fmt.Fprintf(&b, "journey %d %s > %s %s: %s", j.ID, j.Flow.Src, j.Flow.Dst, j.Proto, j.Outcome)
	if j.Incomplete {
		b.WriteString(" (incomplete)")
	}
	if j.LastSeen != "" {
		fmt.Fprintf(&b, " last seen: %s", j.LastSeen)
	}
	b.WriteString("\n")
	for _, s := range j.Steps {
		fmt.Fprintf(&b, "  %s %-4s %-10s", s.Time.Format("05.000000"), s.Netns, s.Kind)
		for _, kv := range [][2]string{
			{"iface", s.Iface}, {"dir", s.Dir}, {"hook", s.Hook}, {"table", s.Table}, {"chain", s.Chain},
			{"rule", s.Rule}, {"verdict", s.Verdict}, {"tunnel", s.Tunnel}, {"reason", s.Reason}, {"detail", s.Detail},
		} {
			if kv[1] != "" {
				fmt.Fprintf(&b, " %s=%q", kv[0], kv[1])
			}
		}
		if s.Kind == StepHook {
			fmt.Fprintf(&b, " first=%v", s.First)
		}
		if s.Before != nil && s.Before.Src.IsValid() {
			fmt.Fprintf(&b, " %s>%s => %s>%s", s.Before.Src, s.Before.Dst, s.After.Src, s.After.Dst)
		}
		if s.VNI != 0 {
			fmt.Fprintf(&b, " vni=%d", s.VNI)
		}
		if s.Route != nil {
			fmt.Fprintf(&b, " route=%+v", *s.Route)
		}
		b.WriteString("\n")
	}
	if d := j.Drop; d != nil {
		fmt.Fprintf(&b, "  drop by=%s netns=%s hook=%s table=%s chain=%s handle=%d reason=%s probable=%v\n  explanation: %s\n  hint: %s\n",
			d.By, d.Netns, d.Hook, d.Table, d.Chain, d.Handle, d.Reason, d.Probable, d.Explanation, d.Hint)
	}
	return b.String()
}

// checkGolden compares the journeys with testdata/journeys/NAME.golden.
func checkGolden(t *testing.T, name string, journeys []*Journey) {
	t.Helper()
	var b strings.Builder
	for _, j := range journeys {
		b.WriteString(render(j))
	}
	path := filepath.Join("testdata", "journeys", name+".golden")
	if *updateJourneys {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./decode -run Journey -update)", err)
	}
	if b.String() != string(want) {
		t.Errorf("journeys differ from %s:\n got:\n%s\nwant:\n%s", path, b.String(), want)
	}
}

func TestJourneyRuleDrop(t *testing.T) {
	syn := ipv4("10.77.0.1", "10.77.0.2", 100, 6, tcpSeg(51234, 2222, 1000, 0, tcpSYN))
	f := newFeed(JourneyOptions{})
	f.capture(1, "srv", "s0", capture.DirIn, ether(syn))
	f.hook(5, "srv", "prerouting", true, syn)
	f.hook(6, "srv", "prerouting", false, syn)
	f.hook(7, "srv", "input", true, syn)
	// Trace events come later than the kernel's records, in receive time.
	f.rule(40, "srv", 0xaa, "hxfilter", "input", "input", 2, "tcp dport 2222 counter packets 3 bytes 180 drop", nflog.VerdictDrop, syn)
	js := f.b.Flush()
	if len(js) != 1 || js[0].Outcome != OutcomeDropped || js[0].Drop == nil || js[0].Drop.By != "rule" || js[0].Drop.Handle != 2 {
		t.Fatalf("want one journey dropped by rule handle 2, got %s", renderAll(js))
	}
	if !strings.Contains(js[0].Drop.Hint, "nft insert rule inet hxfilter input handle 2 ip saddr 10.77.0.1 th dport 2222 accept") {
		t.Errorf("hint: %q", js[0].Drop.Hint)
	}
	checkGolden(t, "rule-drop", js)
}

func renderAll(js []*Journey) string {
	var b strings.Builder
	for _, j := range js {
		b.WriteString(render(j))
	}
	return b.String()
}

func TestJourneyPolicyDropAndReject(t *testing.T) {
	udp := ipv4("10.78.0.1", "10.78.0.2", 7, 17, udpDgram(40000, 53, "query"))
	syn := ipv4("10.78.0.1", "10.78.0.2", 8, 6, tcpSeg(41000, 443, 5000, 0, tcpSYN))
	rst := ipv4("10.78.0.2", "10.78.0.1", 0, 6, tcpSeg(443, 41000, 0, 5001, tcpRST|tcpACK))
	f := newFeed(JourneyOptions{})
	f.capture(1, "srv", "s0", capture.DirIn, ether(udp))
	f.capture(2, "srv", "s0", capture.DirIn, ether(syn))
	f.policy(30, "srv", 0xb1, "hxfilter", "input", "input", nflog.VerdictDrop, udp)
	f.rule(31, "srv", 0xb2, "hxfilter", "input", "input", 4, "tcp dport 443 reject with tcp reset", nflog.VerdictDrop, syn)
	f.capture(40, "srv", "s0", capture.DirOut, ether(rst))
	js := f.b.Flush()
	if len(js) != 2 || js[0].Outcome != OutcomeDropped || js[0].Drop.By != "policy" || js[1].Outcome != OutcomeRejected {
		t.Fatalf("want a policy drop and a reject, got %s", renderAll(js))
	}
	checkGolden(t, "policy-drop-and-reject", js)
}

// TestJourneyRouterNAT follows a packet DNATed and masqueraded by a
// router namespace and delivered in the server's.
func TestJourneyRouterNAT(t *testing.T) {
	orig := ipv4("10.91.1.1", "10.91.1.254", 300, 6, tcpSeg(45000, 8080, 777, 0, tcpSYN))
	dnat := ipv4("10.91.1.1", "10.91.2.2", 300, 6, tcpSeg(45000, 80, 777, 0, tcpSYN))
	masq := ipv4("10.91.2.254", "10.91.2.2", 300, 6, tcpSeg(61000, 80, 777, 0, tcpSYN))
	f := newFeed(JourneyOptions{})
	f.capture(1, "cli", "c0", capture.DirOut, ether(orig))
	f.capture(3, "rtr", "r0", capture.DirIn, ether(orig))
	f.hook(4, "rtr", "prerouting", true, orig)
	f.hook(5, "rtr", "prerouting", false, dnat)
	f.hook(6, "rtr", "forward", true, dnat)
	f.hook(8, "rtr", "forward", false, dnat)
	f.hook(9, "rtr", "postrouting", true, dnat)
	f.hook(10, "rtr", "postrouting", false, masq)
	f.capture(11, "rtr", "r1", capture.DirOut, ether(masq))
	f.capture(12, "srv", "s0", capture.DirIn, ether(masq))
	f.hook(13, "srv", "prerouting", true, masq)
	f.hook(14, "srv", "prerouting", false, masq)
	f.hook(15, "srv", "input", true, masq)
	f.hook(16, "srv", "input", false, masq)
	// The router's forward rule, traced, arrives late.
	f.rule(60, "rtr", 0xc1, "fw", "forward", "forward", 7, "ct state new accept", nflog.VerdictAccept, dnat)
	js := f.b.Flush()
	if len(js) != 1 || js[0].Outcome != OutcomeDelivered {
		t.Fatalf("want one delivered journey, got %s", renderAll(js))
	}
	var nat []string
	for _, s := range js[0].Steps {
		if s.Kind == StepNAT {
			nat = append(nat, fmt.Sprintf("%s %s>%s=>%s>%s", s.Netns, s.Before.Src, s.Before.Dst, s.After.Src, s.After.Dst))
		}
	}
	want := []string{"rtr 10.91.1.1:45000>10.91.1.254:8080=>10.91.1.1:45000>10.91.2.2:80", "rtr 10.91.1.1:45000>10.91.2.2:80=>10.91.2.254:61000>10.91.2.2:80"}
	if strings.Join(nat, ";") != strings.Join(want, ";") {
		t.Errorf("NAT steps %q, want %q", nat, want)
	}
	checkGolden(t, "router-nat", js)
}

// TestJourneyVXLAN: the inner packet leaves host a by its vxlan device,
// crosses the underlay inside VXLAN, comes out of host b's vxlan device
// and is dropped there: one journey, with encap and decap steps.
func TestJourneyVXLAN(t *testing.T) {
	inner := ipv4("10.42.0.1", "10.42.0.2", 55, 17, udpDgram(5000, 7777, "hello"))
	outer := vxlanFrame("192.0.2.1", "192.0.2.2", 900, 42, inner)
	f := newFeed(JourneyOptions{})
	// A trace event of the tunnel packet in b's underlay comes first: it
	// shows only the outer headers, and starts a journey of its own
	// until a capture shows both.
	f.rule(4, "hostb", 0xd0, "underlayfw", "input", "input", 9, "udp dport 4789 accept", nflog.VerdictAccept, outer[14:])
	f.capture(1, "hosta", "vx0", capture.DirOut, ether(inner))
	f.capture(3, "hosta", "ua", capture.DirOut, outer)
	f.capture(5, "hostb", "ub", capture.DirIn, outer)
	f.capture(8, "hostb", "vx0", capture.DirIn, ether(inner))
	f.hook(9, "hostb", "prerouting", true, inner)
	f.hook(10, "hostb", "prerouting", false, inner)
	f.hook(11, "hostb", "input", true, inner)
	f.rule(50, "hostb", 0xd1, "hxfilter", "input", "input", 3, `iifname "vx0" udp dport 7777 drop`, nflog.VerdictDrop, inner)
	js := f.b.Flush()
	if len(js) != 1 || js[0].Outcome != OutcomeDropped {
		t.Fatalf("want one dropped journey, got %s", renderAll(js))
	}
	var kinds []string
	for _, s := range js[0].Steps {
		if s.Kind == StepEncap || s.Kind == StepDecap {
			kinds = append(kinds, fmt.Sprintf("%s %s %s vni %d", s.Netns, s.Kind, s.Tunnel, s.VNI))
		}
	}
	if want := "hosta encap vxlan vni 42;hostb decap vxlan vni 42"; strings.Join(kinds, ";") != want {
		t.Errorf("tunnel steps %q, want %q", kinds, want)
	}
	checkGolden(t, "vxlan", js)
}

// TestJourneyKernelDropAndICMP: UDP to a closed port: the kernel drops
// it (NO_SOCKET) and answers port unreachable; both join the journey.
func TestJourneyKernelDropAndICMP(t *testing.T) {
	udp := ipv4("10.79.0.1", "10.79.0.2", 21, 17, udpDgram(39000, 4444, "ping"))
	unreach := ipv4("10.79.0.2", "10.79.0.1", 0, 1, icmpError(3, 3, udp))
	f := newFeed(JourneyOptions{})
	// The drop probe reports before the capture does.
	f.drop(4, "srv", "NO_SOCKET", udp)
	f.capture(1, "srv", "s0", capture.DirIn, ether(udp))
	f.hook(2, "srv", "input", true, udp)
	f.hook(3, "srv", "input", false, udp)
	f.capture(6, "srv", "s0", capture.DirOut, ether(unreach))
	js := f.b.Flush()
	if len(js) != 1 || js[0].Outcome != OutcomeRejected || js[0].Drop.By != "kernel" || js[0].Drop.Reason != "NO_SOCKET" {
		t.Fatalf("want one journey rejected by the kernel, got %s", renderAll(js))
	}
	if !strings.Contains(js[0].Drop.Explanation, "nothing listens on 10.79.0.2:4444/udp") || !strings.Contains(js[0].Drop.Explanation, "port unreachable") {
		t.Errorf("explanation: %q", js[0].Drop.Explanation)
	}
	checkGolden(t, "kernel-drop-icmp", js)
}

// TestJourneyOrderAndBounds: records of interleaved packets, out of
// order across sources; a bounded builder evicts the oldest; a loss
// marks the journeys open then incomplete; idle journeys close by
// event time.
func TestJourneyOrderAndBounds(t *testing.T) {
	a := ipv4("10.80.0.1", "10.80.0.2", 1, 17, udpDgram(1000, 9, "a"))
	b := ipv4("10.80.0.1", "10.80.0.2", 2, 17, udpDgram(1000, 9, "b"))
	f := newFeed(JourneyOptions{})
	f.rule(20, "srv", 1, "t", "input", "input", 5, "udp dport 9 accept", nflog.VerdictAccept, b)
	f.capture(1, "srv", "s0", capture.DirIn, ether(a))
	f.capture(2, "srv", "s0", capture.DirIn, ether(b))
	f.rule(21, "srv", 2, "t", "input", "input", 5, "udp dport 9 accept", nflog.VerdictAccept, a)
	f.b.MarkLoss("srv", at(22))
	// A trace event without headers whose packet is unknown joins nothing.
	f.rule(23, "srv", 99, "t", "input", "input", 6, "drop", nflog.VerdictDrop, nil)
	// Three seconds later (event time), both are idle and close.
	c := ipv4("10.80.0.1", "10.80.0.2", 3, 17, udpDgram(1000, 9, "c"))
	f.capture(3_000_000, "srv", "s0", capture.DirIn, ether(c))
	closed := f.b.Closed()
	if len(closed) != 2 || !closed[0].Incomplete || !closed[1].Incomplete {
		t.Fatalf("want the two first journeys closed and incomplete, got %s", renderAll(closed))
	}
	if st := f.b.Stats(); st.Open != 1 || st.Unmatched != 1 {
		t.Errorf("stats %+v: want 1 open, 1 unmatched", st)
	}
	// Bounded: with room for one, a second packet evicts the first.
	g := newFeed(JourneyOptions{MaxOpen: 1})
	g.capture(1, "srv", "s0", capture.DirIn, ether(a))
	g.capture(2, "srv", "s0", capture.DirIn, ether(b))
	if st := g.b.Stats(); st.Evicted != 1 || st.Open != 1 || len(g.b.Closed()) != 1 {
		t.Errorf("bounded builder: %+v", st)
	}
	checkGolden(t, "order-and-bounds", append(closed, f.b.Flush()...))
}

// TestJourneyRoute: with a route function (the kernel, live), each
// namespace's routing decision is a step after prerouting.
func TestJourneyRoute(t *testing.T) {
	syn := ipv4("10.81.0.1", "10.81.0.2", 400, 6, tcpSeg(42000, 22, 1, 0, tcpSYN))
	var asked []nflog.RouteQuery
	f := newFeed(JourneyOptions{Route: func(netns string, q nflog.RouteQuery) (nflog.RouteDecision, bool) {
		asked = append(asked, q)
		return nflog.RouteDecision{Kind: "local", Table: "local", Rule: "0: from all lookup local", Route: "local 10.81.0.2 dev s0", Dev: "lo"}, true
	}})
	f.capture(1, "srv", "s0", capture.DirIn, ether(syn))
	f.hook(2, "srv", "prerouting", true, syn)
	f.hook(3, "srv", "prerouting", false, syn)
	f.hook(4, "srv", "input", true, syn)
	f.hook(5, "srv", "input", false, syn)
	js := f.b.Flush()
	want := nflog.RouteQuery{Src: netip.MustParseAddr("10.81.0.1"), Dst: netip.MustParseAddr("10.81.0.2"), IIF: "s0", Proto: 6, SPort: 42000, DPort: 22}
	if len(asked) != 1 || asked[0] != want {
		t.Fatalf("route asked %+v, want %+v", asked, want)
	}
	if len(js) != 1 || js[0].Outcome != OutcomeDelivered {
		t.Fatalf("want one delivered journey, got %s", renderAll(js))
	}
	checkGolden(t, "route", js)
}

func TestStripCounters(t *testing.T) {
	for in, want := range map[string]string{
		"tcp dport 2222 counter packets 3 bytes 180 drop":                             "tcp dport 2222 counter drop",
		"counter packets 0 bytes 0":                                                   "counter",
		"ip saddr 1.2.3.4 counter packets 1 bytes 2 counter packets 5 bytes 6 accept": "ip saddr 1.2.3.4 counter counter accept",
		"accept": "accept",
	} {
		if got := stripCounters(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
	// Odd spacing and short counters: as the list of all words splits.
	for _, in := range []string{
		"counter packets 3 bytes", "counter packets 3 bytes 9", "counter packets  3\tbytes\t9 drop", "counter packets \t3 bytes 9",
		"counter packets 3 octets 9 accept", "counter packets ", "x counter packets 1 bytes 2counter packets 3 bytes 4 y",
		"counter packets 1\u00a0bytes 2 z", "counter packets 1 bytes 2\u2003accept",
	} {
		if got, want := stripCounters(in), stripCountersByFields(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// stripCountersByFields is stripCounters as it was written first, with
// strings.Fields: the reference for odd input.
func stripCountersByFields(rule string) string {
	i := strings.Index(rule, "counter packets ")
	if i < 0 {
		return rule
	}
	rest := rule[i+len("counter packets "):]
	f := strings.Fields(rest)
	if len(f) < 3 || f[1] != "bytes" {
		return rule
	}
	after := strings.TrimPrefix(rest, f[0])
	after = strings.TrimPrefix(strings.TrimLeft(after, " "), "bytes")
	after = strings.TrimPrefix(strings.TrimLeft(after, " "), f[2])
	return rule[:i] + "counter" + stripCountersByFields(after)
}

// TestJourneyRecordedVXLAN replays frames and NFLOG messages recorded by
// `hooktrace --trace -w` on the vxlan scenario (fixtures/scenario): IPv6
// neighbour discovery and ARP inside VXLAN, and the scenario's datagram,
// which one journey follows from host1's vx0 through the underlay into
// host2, where its input hook is entered and never left.
func TestJourneyRecordedVXLAN(t *testing.T) {
	src, err := capture.Open(filepath.Join("testdata", "journeys", "vxlan-live.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f := newFeed(JourneyOptions{})
	for {
		fr, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		f.b.AddPacket(f.dec.Decode(fr))
	}
	js := f.b.Flush()
	var udp *Journey
	for _, j := range js {
		if j.Proto == "udp" && j.Flow.Dst.Port() == 4450 {
			udp = j
		}
	}
	if udp == nil || udp.Outcome != OutcomeDropped || udp.Drop == nil || udp.Drop.Hook != "input" {
		t.Fatalf("the datagram's journey: %s", renderAll(js))
	}
	checkGolden(t, "vxlan-live", js)
}

// TestJourneyProbableDrop: a drop the tracefs fallback reported (no
// headers) joins the journey last seen in its namespace, as probable.
func TestJourneyProbableDrop(t *testing.T) {
	udp := ipv4("10.82.0.1", "10.82.0.2", 31, 17, udpDgram(39001, 4444, "x"))
	f := newFeed(JourneyOptions{})
	f.capture(1, "srv", "s0", capture.DirIn, ether(udp))
	f.hook(2, "srv", "input", true, udp)
	f.hook(3, "srv", "input", false, udp)
	f.drop(50, "srv", "NO_SOCKET", nil)
	f.drop(500_000, "srv", "NO_SOCKET", nil) // too late for any journey
	js := f.b.Flush()
	if len(js) != 1 || js[0].Drop == nil || !js[0].Drop.Probable || js[0].Drop.Reason != "NO_SOCKET" ||
		!strings.Contains(js[0].Drop.Explanation, "Probable") {
		t.Fatalf("want one journey with a probable kernel drop, got %s", renderAll(js))
	}
	if st := f.b.Stats(); st.Unmatched != 1 {
		t.Errorf("stats %+v: want the late drop unmatched", st)
	}
}

// mixedStream makes the records of n packets as a traced run sees them:
// each arrives on a device, passes prerouting and input (hooktrace's
// NFLOG messages entering and leaving each), is judged by two traced
// rules (the first carrying its headers), and is answered.
func mixedStream(n int) (frames []capture.Frame, traces []TraceEvent) {
	for i := 0; i < n; i++ {
		us := i * 10
		syn := ipv4("10.83.0.1", "10.83.0.2", uint16(i), 6, tcpSeg(uint16(40000+i%1000), 443, uint32(i)*7919, 0, tcpSYN))
		frames = append(frames, capture.Frame{Time: at(us), Netns: "srv", Iface: "s0", Dir: capture.DirIn, LinkType: capture.LinkTypeEthernet, Len: 14 + len(syn), Data: ether(syn)})
		for k, h := range []string{"prerouting", "prerouting", "input", "input"} {
			prefix := nflog.LogPrefixFirst
			if k%2 == 1 {
				prefix = nflog.LogPrefixLast
			}
			rec := nflogRecord(2, hookNums[h], prefix, 0, 0, 0, syn)
			frames = append(frames, capture.Frame{Time: at(us + 1 + k), Netns: "srv", Iface: "nflog:18516", LinkType: capture.LinkTypeNFLOG, Len: len(rec), Data: rec})
		}
		ev := TraceEvent{Trace: nflog.Trace{Netns: "srv", Time: at(us + 6), ID: uint32(i), Family: 1, Table: "fw", Chain: "input",
			Handle: 4, Type: nflog.TraceRule, Verdict: nflog.VerdictContinue, HasVerdict: true}, Hook: "input", Rule: "tcp dport 443 counter"}
		setSnapshot(&ev, syn)
		traces = append(traces, ev)
		ev2 := ev
		ev2.Network, ev2.Transport, ev2.Handle, ev2.Verdict, ev2.Rule = nil, nil, 5, nflog.VerdictAccept, "tcp dport 443 accept"
		traces = append(traces, ev2)
	}
	return frames, traces
}

// feedMixed gives a builder mixedStream's records in the order a traced
// run sees them: each packet's five frames, then its two trace events;
// after runs after every frame's records (nil: nothing).
func feedMixed(jb *JourneyBuilder, dec *Decoder, frames []capture.Frame, traces []TraceEvent, after func()) {
	ti := 0
	for i, f := range frames {
		jb.AddPacket(dec.Decode(f))
		if i%5 == 4 {
			jb.AddTrace(&traces[ti])
			jb.AddTrace(&traces[ti+1])
			ti += 2
		}
		if after != nil {
			after()
		}
	}
}

// BenchmarkJourneyAssembly feeds a recorded-like mixed stream (frames,
// NFLOG messages, trace events; 7 records per packet) to one builder on
// one goroutine, decoding the frames as a live run does, and reports
// records per second.
func BenchmarkJourneyAssembly(b *testing.B) {
	frames, traces := mixedStream(20000)
	dec := NewDecoder()
	b.ReportAllocs()
	records := 0
	for b.Loop() {
		jb := NewJourneyBuilder(JourneyOptions{})
		feedMixed(jb, dec, frames, traces, nil)
		jb.Flush()
		records += len(frames) + len(traces)
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkJourneyMemory reports the memory an open journey holds (its
// 7 observations, index entries and first frame).
func BenchmarkJourneyMemory(b *testing.B) {
	frames, traces := mixedStream(10000)
	dec := NewDecoder()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		jb := NewJourneyBuilder(JourneyOptions{Window: time.Hour})
		feedMixed(jb, dec, frames, traces, nil)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(jb.Stats().Open), "bytes/journey")
		runtime.KeepAlive(jb)
	}
}

// BenchmarkJourneyEviction opens far more journeys than the bound: each
// new packet evicts the oldest, which must not cost a scan of them all.
func BenchmarkJourneyEviction(b *testing.B) {
	frames, _ := mixedStream(50000)
	dec := NewDecoder()
	for b.Loop() {
		jb := NewJourneyBuilder(JourneyOptions{MaxOpen: 4096, Window: time.Hour})
		for i := 0; i < len(frames); i += 5 {
			jb.AddPacket(dec.Decode(frames[i]))
		}
		if st := jb.Stats(); st.Evicted != 50000-4096 {
			b.Fatalf("evicted %d, want %d", st.Evicted, 50000-4096)
		}
	}
	b.ReportMetric(float64(b.N*50000)/b.Elapsed().Seconds(), "packets/s")
}

// TestJourneySelected: a journey is Selected when a frame a filter
// selected joins it, whichever of its sightings that is (here after a
// trace event of the tunnel packet started it); frames added plainly
// select nothing.
func TestJourneySelected(t *testing.T) {
	inner := ipv4("10.42.0.1", "10.42.0.2", 55, 17, udpDgram(5000, 7777, "hello"))
	outer := vxlanFrame("192.0.2.1", "192.0.2.2", 900, 42, inner)
	other := ipv4("10.42.0.3", "10.42.0.4", 56, 6, tcpSeg(4000, 80, 1, 0, 0x02))
	frame := func(us int, iface string, data []byte) *Packet {
		return NewDecoder().Decode(capture.Frame{Time: at(us), Netns: "hostb", Iface: iface, Dir: capture.DirIn, LinkType: capture.LinkTypeEthernet, Len: len(data), Data: data})
	}
	for _, tc := range []struct {
		name     string
		selected []bool // of the tunnel packet's three sightings (two captures and the decapsulated one)
		want     bool
	}{
		{"none", []bool{false, false, false}, false},
		{"the first", []bool{true, false, false}, true},
		{"the decapsulated one", []bool{false, false, true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeed(JourneyOptions{})
			f.rule(1, "hostb", 0xd0, "underlayfw", "input", "input", 9, "udp dport 4789 accept", nflog.VerdictAccept, outer[14:])
			for i, p := range []*Packet{frame(2, "ub", outer), frame(3, "ub2", outer), frame(4, "vx0", ether(inner))} {
				if tc.selected[i] {
					f.b.AddSelectedPacket(p)
				} else {
					f.b.AddPacket(p)
				}
			}
			f.b.AddSelectedPacket(frame(5, "eth9", ether(other))) // another packet's journey
			js := f.b.Flush()
			if len(js) != 2 {
				t.Fatalf("want two journeys, got %s", renderAll(js))
			}
			if js[0].Selected != tc.want || !js[1].Selected {
				t.Errorf("selected: tunnel packet's journey %v (want %v), other %v (want true)", js[0].Selected, tc.want, js[1].Selected)
			}
		})
	}
}
