package tui

import (
	"context"
	"encoding/binary"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/nflog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var fixedNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// newTestModel returns a model of w x h cells, colour off, in UTC.
func newTestModel(w, h int, ch <-chan Batch) *Model {
	m := New(Options{Source: "test", Batches: ch, Location: time.UTC, Now: func() time.Time { return fixedNow }, SaveDir: os.TempDir()})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

// loadFile feeds a capture file to a new model and drains it to the end.
func loadFile(t testing.TB, path string, w, h int) *Model {
	t.Helper()
	src, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ch := make(chan Batch, 4)
	go Feed(context.Background(), src, ch, FeedOptions{})
	m := newTestModel(w, h, ch)
	for deadline := time.Now().Add(10 * time.Second); m.loading; {
		if time.Now().After(deadline) {
			t.Fatal("loading did not end")
		}
		m.Update(tickMsg(time.Now()))
	}
	return m
}

func keys(m *Model, ks ...string) {
	for _, k := range ks {
		m.Update(keyMsg(k))
	}
}

// keyMsg makes a key press from its name.
func keyMsg(k string) tea.KeyPressMsg {
	special := map[string]rune{"tab": tea.KeyTab, "enter": tea.KeyEnter, "esc": tea.KeyEscape, "down": tea.KeyDown,
		"up": tea.KeyUp, "end": tea.KeyEnd, "home": tea.KeyHome, "pgdown": tea.KeyPgDown, "pgup": tea.KeyPgUp,
		"right": tea.KeyRight, "left": tea.KeyLeft, "backspace": tea.KeyBackspace}
	if r, ok := special[k]; ok {
		return tea.KeyPressMsg{Code: r}
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

func typeText(m *Model, s string) {
	for _, r := range s {
		m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

// screen is the view without styles, lines trimmed on the right.
func screen(m *Model) string {
	lines := strings.Split(ansi.Strip(m.View().Content), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.Join(lines, "\n") + "\n"
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n%s", name, path, got)
	}
}

func checkSize(t *testing.T, s string, w, h int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != h {
		t.Errorf("%d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := len([]rune(l)); n > w {
			t.Errorf("line %d is %d cells wide, more than %d: %q", i, n, w, l)
		}
	}
}

func TestListAndLayers80x24(t *testing.T) {
	m := loadFile(t, "../../fixtures/vxlan.pcap", 80, 24)
	if m.viewLen() != 14 {
		t.Fatalf("%d packets, want 14", m.viewLen())
	}
	keys(m, "j", "j")
	s := screen(m)
	checkSize(t, s, 80, 24)
	checkGolden(t, "vxlan-list-80x24", s)

	// The layers pane: the cursor on the VXLAN layer highlights its bytes.
	keys(m, "tab")
	for i := 0; i < 40 && !strings.HasPrefix(m.detail.tree[0].label, "x"); i++ {
		if l := m.detail.selectedLayer(); l >= 0 && m.detail.pkt.Layers[l].Proto == decode.ProtoVXLAN {
			break
		}
		keys(m, "down")
	}
	off, n := m.detail.span()
	if off != 42 || n != 8 {
		t.Errorf("VXLAN header span %d+%d, want 42+8", off, n)
	}
	checkGolden(t, "vxlan-layers-80x24", screen(m))
	keys(m, "tab")
	checkGolden(t, "vxlan-hex-80x24", screen(m))
}

func TestTimeModesAndFollow(t *testing.T) {
	m := loadFile(t, "../../fixtures/vxlan.pcap", 100, 30)
	keys(m, "t")
	if !strings.Contains(screen(m), "0.001250") {
		t.Errorf("relative time missing:\n%s", screen(m))
	}
	keys(m, "t", "end")
	if !m.follow || m.sel != 13 {
		t.Errorf("end: follow %v sel %d", m.follow, m.sel)
	}
	keys(m, "up")
	if m.follow {
		t.Error("moving up kept follow mode")
	}
	keys(m, "f")
	if !m.follow || m.sel != 13 {
		t.Errorf("f: follow %v sel %d", m.follow, m.sel)
	}
}

func TestFilter(t *testing.T) {
	m := loadFile(t, "../../fixtures/vxlan.pcap", 100, 30)
	keys(m, "/")
	typeText(m, "tcp[")
	if m.inputErr == "" {
		t.Error("an unfinished expression shows no error")
	}
	keys(m, "enter")
	if m.mode != inputFilter || m.filt != nil {
		t.Fatalf("an invalid filter was applied")
	}
	s := screen(m)
	if !strings.Contains(s, "filter: tcp[") {
		t.Errorf("prompt not shown:\n%s", s)
	}
	for range 4 {
		keys(m, "backspace")
	}
	typeText(m, "vni == 42 and greater 120")
	keys(m, "enter")
	if m.filt == nil || m.viewLen() == 0 || m.viewLen() >= 14 {
		t.Fatalf("filter shows %d", m.viewLen())
	}
	for i := 0; i < m.viewLen(); i++ {
		if r := m.st.rows[m.rowAt(i)]; r.wirelen < 120 || r.vni != 42 {
			t.Errorf("row %d passed: %+v", m.rowAt(i), r)
		}
	}
	// A second, invalid, filter keeps the first.
	keys(m, "/")
	typeText(m, " and outcome == lost")
	keys(m, "enter", "esc")
	if m.filt == nil || m.filt.text != "vni == 42 and greater 120" {
		t.Errorf("old filter lost: %+v", m.filt)
	}
	checkGolden(t, "vxlan-filter-100x30", screen(m))
}

func TestFilterExpressions(t *testing.T) {
	m := loadFile(t, "../../decode/testdata/journeys/vxlan-live.pcapng", 100, 30)
	count := func(expr string) int {
		f, err := compileFilter(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		n := 0
		for i := range m.st.rows {
			if f.match(m.st, i) {
				n++
			}
		}
		return n
	}
	all := len(m.st.rows)
	dropped := count("outcome == dropped")
	if dropped == 0 || dropped == all {
		t.Errorf("outcome == dropped: %d of %d", dropped, all)
	}
	if n := count("not outcome == dropped"); n != all-dropped {
		t.Errorf("not: %d, want %d", n, all-dropped)
	}
	if n := count("outcome != dropped"); n != all-dropped {
		t.Errorf("!=: %d, want %d", n, all-dropped)
	}
	if a, b := count("udp port 4789 or udp port 8472"), count("udp port 4789 or 8472"); a != b {
		t.Errorf("tcpdump's qualifier inheritance lost: %d vs %d", a, b)
	}
	if n, m := count("(outcome == dropped and udp) or arp"), count("outcome == dropped and udp")+count("arp")-count("outcome == dropped and udp and arp"); n != m {
		t.Errorf("mixed: %d, want %d", n, m)
	}
	ns := count("netns == hxtvx-host1-1df4")
	if ns == 0 || ns == all {
		t.Errorf("netns: %d of %d", ns, all)
	}
	if n := count("hook == input"); n == 0 {
		t.Error("hook == input matched nothing")
	}
	for _, bad := range []string{"outcome == lost", "vni == x", "tcp port", "(outcome == dropped", "outcome == dropped and"} {
		if _, err := compileFilter(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestSearchGotoHelpStats(t *testing.T) {
	m := loadFile(t, "../../fixtures/vxlan.pcap", 100, 30)
	keys(m, "s")
	typeText(m, "who-has")
	keys(m, "enter")
	first := m.selectedRow()
	if !strings.Contains(m.rowText(first).summary, "who-has") {
		t.Fatalf("search selected %q", m.rowText(first).summary)
	}
	keys(m, "n")
	if m.selectedRow() == first && !strings.Contains(m.message, "not found") {
		// one match only is fine: n wraps to it
	}
	keys(m, "N")
	keys(m, ":")
	typeText(m, "5")
	keys(m, "enter")
	if m.selectedRow() != 4 {
		t.Errorf("go to 5 selected row %d", m.selectedRow())
	}
	keys(m, "?")
	s := screen(m)
	for _, k := range keyHelp {
		if !strings.Contains(s, k[0]) {
			t.Errorf("help lacks %q", k[0])
		}
	}
	checkGolden(t, "help-100x30", s)
	keys(m, "x", "S")
	s = screen(m)
	if !strings.Contains(s, "packets 14") || !strings.Contains(s, "Top conversations") {
		t.Errorf("statistics:\n%s", s)
	}
	checkGolden(t, "stats-100x30", s)
}

func TestSave(t *testing.T) {
	m := loadFile(t, "../../fixtures/vxlan.pcap", 100, 30)
	keys(m, "/")
	typeText(m, "greater 120")
	keys(m, "enter")
	path := filepath.Join(t.TempDir(), "out.pcapng")
	keys(m, "w")
	m.input.SetValue(path)
	keys(m, "enter")
	src, err := capture.Open(path)
	if err != nil {
		t.Fatalf("%v (%s)", err, m.message)
	}
	defer src.Close()
	n := 0
	for {
		if _, err := src.Next(); err != nil {
			break
		}
		n++
	}
	if n != m.viewLen() || n == 0 {
		t.Errorf("saved %d packets, the list shows %d", n, m.viewLen())
	}
}

func TestPauseAndBatches(t *testing.T) {
	ch := make(chan Batch, 4)
	m := newTestModel(100, 30, ch)
	fr := capture.Frame{Time: fixedNow, LinkType: capture.LinkTypeEthernet, Data: make([]byte, 60), Len: 60}
	ch <- Batch{Frames: []capture.Frame{fr, fr}, VNIs: []uint32{0, 0}}
	m.Update(tickMsg(time.Now()))
	if m.viewLen() != 2 {
		t.Fatalf("%d rows", m.viewLen())
	}
	keys(m, "p")
	ch <- Batch{Frames: []capture.Frame{fr}, VNIs: []uint32{0}, Shed: 7, Done: true}
	m.Update(tickMsg(time.Now()))
	if m.viewLen() != 2 || len(m.st.rows) != 3 {
		t.Errorf("paused: %d shown of %d", m.viewLen(), len(m.st.rows))
	}
	if s := screen(m); !strings.Contains(s, "7 shed by the UI") || !strings.Contains(s, "PAUSED") {
		t.Errorf("status bar:\n%s", s)
	}
	keys(m, "p")
	if m.viewLen() != 3 {
		t.Errorf("resumed: %d shown", m.viewLen())
	}
}

func TestResizeAndQuit(t *testing.T) {
	m := loadFile(t, "../../fixtures/vxlan.pcap", 80, 24)
	for _, sz := range [][2]int{{80, 24}, {120, 40}, {160, 50}, {30, 8}} {
		m.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		for _, p := range []string{"", "tab", "tab", "tab", "z", "z", "tab"} {
			if p != "" {
				keys(m, p)
			}
			checkSize(t, screen(m), sz[0], sz[1])
		}
	}
	if _, cmd := m.Update(keyMsg("q")); cmd == nil {
		t.Fatal("q returned no command")
	} else if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("q does not quit")
	}
}

func TestMouse(t *testing.T) {
	m := loadFile(t, "../../fixtures/vxlan.pcap", 100, 30)
	m.Update(tea.MouseWheelMsg{X: 5, Y: 5, Button: tea.MouseWheelDown})
	if m.sel != 3 {
		t.Errorf("wheel: sel %d", m.sel)
	}
	m.Update(tea.MouseClickMsg{X: 5, Y: 4, Button: tea.MouseLeft})
	if m.sel != 2 {
		t.Errorf("click: sel %d", m.sel)
	}
}

// TestJourneyVXLANDropped shows the recorded VXLAN journey dropped on the
// far host (frames and NFLOG only, as a -w file of --trace keeps them).
func TestJourneyVXLANDropped(t *testing.T) {
	m := loadFile(t, "../../decode/testdata/journeys/vxlan-live.pcapng", 100, 30)
	keys(m, ":")
	typeText(m, "45")
	keys(m, "enter", "tab", "tab", "tab")
	if m.ensureDetail(); m.detail.jour == nil || m.detail.jour.Outcome != decode.OutcomeDropped {
		t.Fatalf("journey %+v", m.detail.jour)
	}
	s := screen(m)
	for _, w := range []string{"encap VXLAN 42", "decap VXLAN 42", "DROPPED"} {
		if !strings.Contains(s, w) {
			t.Errorf("journey pane lacks %q", w)
		}
	}
	checkGolden(t, "journey-vxlan-dropped-100x30", s)
	keys(m, "z")
	checkGolden(t, "journey-vxlan-dropped-max-100x30", screen(m))
}

// Packet builders for journeys with trace events.

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

func tcpSYN(sport, dport uint16, seq uint32) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	b[12], b[13] = 5<<4, 0x02
	binary.BigEndian.PutUint16(b[14:], 64240)
	return b
}

func ether(ip []byte) []byte {
	b := make([]byte, 14, 14+len(ip))
	b[0], b[6], b[12] = 0x02, 0x02, 0x08
	return append(b, ip...)
}

// journeyFeed builds frames and, with trace events, the journey a live
// source would deliver.
type journeyFeed struct {
	b      *decode.JourneyBuilder
	dec    *decode.Decoder
	frames []capture.Frame
}

func at(us int) time.Time { return fixedNow.Add(time.Duration(us) * time.Microsecond) }

func (f *journeyFeed) capture(us int, ns, iface string, dir capture.Direction, frame []byte) {
	fr := capture.Frame{Time: at(us), Netns: ns, Iface: iface, Dir: dir, LinkType: capture.LinkTypeEthernet, Len: len(frame), Data: frame}
	f.frames = append(f.frames, fr)
	f.b.AddPacket(f.dec.Decode(fr))
}

func (f *journeyFeed) rule(us int, ns string, table, chain string, handle uint64, rule string, v nflog.Verdict, ip []byte) {
	ev := decode.TraceEvent{Trace: nflog.Trace{Netns: ns, Time: at(us), ID: 0xaa, Family: 1, Table: table, Chain: chain,
		Handle: handle, Type: nflog.TraceRule, Verdict: v, HasVerdict: true}, Hook: chain, HasPriority: true, Rule: rule}
	ev.Network, ev.Transport = ip[:20], ip[20:40]
	f.b.AddTrace(&ev)
}

// batch is the frames and the journey, as a live source hands them over.
func (f *journeyFeed) batch() Batch {
	b := Batch{Frames: f.frames, VNIs: make([]uint32, len(f.frames)), Done: true}
	for _, j := range f.b.Flush() {
		ji := JourneyInfo{ID: j.ID, Outcome: j.Outcome, Attrs: journeyAttrs(j, attrNames{}), Journey: j}
		for i := range f.frames {
			ji.Rows = append(ji.Rows, uint32(i))
		}
		b.Journeys = append(b.Journeys, ji)
	}
	return b
}

func newJourneyFeed() *journeyFeed {
	return &journeyFeed{b: decode.NewJourneyBuilder(decode.JourneyOptions{}), dec: decode.NewDecoder()}
}

func showJourney(t *testing.T, b Batch) *Model {
	ch := make(chan Batch, 1)
	ch <- b
	m := newTestModel(100, 30, ch)
	m.Update(tickMsg(time.Now()))
	keys(m, "home", "tab", "tab", "tab")
	return m
}

// TestJourneyRuleDrop: a rule drops the packet: the path marks the
// verdict and a box gives the explanation and the hint.
func TestJourneyRuleDrop(t *testing.T) {
	syn := ipv4("10.77.0.1", "10.77.0.2", 100, 6, tcpSYN(51234, 2222, 1000))
	f := newJourneyFeed()
	f.capture(1, "srv", "s0", capture.DirIn, ether(syn))
	f.rule(40, "srv", "hxfilter", "input", 2, "tcp dport 2222 drop", nflog.VerdictDrop, syn)
	m := showJourney(t, f.batch())
	s := screen(m)
	for _, w := range []string{"✗ DROP", "hint:", "nft insert rule", "DROPPED"} {
		if !strings.Contains(s, w) {
			t.Errorf("lacks %q", w)
		}
	}
	checkGolden(t, "journey-rule-drop-100x30", s)
	keys(m, "esc", "/")
	typeText(m, "chain == input and outcome == dropped")
	keys(m, "enter")
	if m.viewLen() != 1 {
		t.Errorf("chain filter shows %d", m.viewLen())
	}
}

// TestJourneyNATForwarded: a router rewrites the destination and the
// source, and the packet leaves towards a host not captured.
func TestJourneyNATForwarded(t *testing.T) {
	orig := ipv4("10.91.1.1", "10.91.1.254", 300, 6, tcpSYN(45000, 8080, 777))
	masq := ipv4("10.91.2.254", "10.91.2.2", 300, 6, tcpSYN(61000, 80, 777))
	f := newJourneyFeed()
	f.capture(1, "cli", "c0", capture.DirOut, ether(orig))
	f.capture(3, "rtr", "r0", capture.DirIn, ether(orig))
	f.rule(30, "rtr", "fw", "forward", 7, "ct state new accept", nflog.VerdictAccept, ipv4("10.91.1.1", "10.91.2.2", 300, 6, tcpSYN(45000, 80, 777)))
	f.capture(11, "rtr", "r1", capture.DirOut, ether(masq))
	m := showJourney(t, f.batch())
	m.ensureDetail()
	j := m.detail.jour
	if j == nil || j.Outcome != decode.OutcomeForwarded {
		t.Fatalf("journey %+v", j)
	}
	s := screen(m)
	if !strings.Contains(s, "NAT ") || !strings.Contains(s, "══▶") {
		t.Errorf("no NAT step or namespace change:\n%s", s)
	}
	checkGolden(t, "journey-nat-forwarded-100x30", s)
}
