package tui

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/nflog"
)

// recordList is a RecordSource over a slice.
type recordList struct {
	recs []Record
	i    int
}

func (l *recordList) NextRecord() (Record, error) {
	if l.i == len(l.recs) {
		return Record{}, io.EOF
	}
	l.i++
	return l.recs[l.i-1], nil
}

func frameRec(us int, ns, iface string, dir capture.Direction, data []byte) Record {
	return Record{Frame: &capture.Frame{Time: at(us), Netns: ns, Iface: iface, Dir: dir, LinkType: capture.LinkTypeEthernet, Len: len(data), Data: data}}
}

func ruleRec(us int, ns, chain string, handle uint64, rule string, v nflog.Verdict, ip []byte) Record {
	ev := decode.TraceEvent{Trace: nflog.Trace{Netns: ns, Time: at(us), ID: 0xbb, Family: 1, Table: "hxfilter", Chain: chain,
		Handle: handle, Type: nflog.TraceRule, Verdict: v, HasVerdict: true}, Hook: chain, HasPriority: true, Rule: rule}
	ev.Network, ev.Transport = ip[:20], ip[20:40]
	return Record{Trace: &ev}
}

// feedAll runs FeedRecords over recs and returns its batches.
func feedAll(t *testing.T, src RecordSource, opt FeedOptions) []Batch {
	t.Helper()
	ch := make(chan Batch, 64)
	FeedRecords(context.Background(), src, ch, opt)
	close(ch)
	var out []Batch
	for b := range ch {
		out = append(out, b)
	}
	if len(out) == 0 || !out[len(out)-1].Done {
		t.Fatal("no last batch")
	}
	return out
}

// TestFeedRecordsJourneyWithTrace: a packet captured on two devices and
// dropped by a rule between them (a trace event), beside an ARP frame and
// an untraced packet. The traced journey is kept whole and names both
// rows; the untraced one is left to be rebuilt from its frame.
func TestFeedRecordsJourneyWithTrace(t *testing.T) {
	syn := ipv4("10.77.0.1", "10.77.0.2", 100, 6, tcpSYN(51234, 2222, 1000))
	other := ipv4("10.77.0.1", "10.77.0.2", 101, 6, tcpSYN(51235, 80, 2000))
	arp := make([]byte, 42)
	arp[12], arp[13] = 0x08, 0x06
	var stats FeedStats
	src := &recordList{recs: []Record{
		frameRec(1, "cli", "c0", capture.DirOut, ether(syn)),
		frameRec(2, "cli", "c0", capture.DirOut, arp),
		frameRec(3, "srv", "s0", capture.DirIn, ether(syn)),
		ruleRec(40, "srv", "input", 2, "tcp dport 2222 counter packets 0 bytes 0 drop", nflog.VerdictDrop, syn),
		frameRec(50, "cli", "c0", capture.DirOut, ether(other)),
		{Clock: at(10_000_000)}, // 10 s later: both journeys close
	}}
	batches := feedAll(t, src, FeedOptions{Stats: &stats})
	var js []JourneyInfo
	frames := 0
	for _, b := range batches {
		js = append(js, b.Journeys...)
		frames += len(b.Frames) + len(b.Offsets)
	}
	if frames != 4 {
		t.Errorf("%d frames in the batches, want 4", frames)
	}
	if len(js) != 2 {
		t.Fatalf("%d journeys: %+v", len(js), js)
	}
	traced, plain := js[0], js[1]
	if traced.Journey == nil || traced.Outcome != decode.OutcomeDropped || len(traced.Rows) != 2 || traced.Rows[0] != 0 || traced.Rows[1] != 2 {
		t.Errorf("traced journey: %+v", traced)
	}
	if plain.Journey != nil || len(plain.Rows) != 1 || plain.Rows[0] != 3 {
		t.Errorf("untraced journey: %+v", plain)
	}
	// The clock record closed them before the end of the input.
	if batches[len(batches)-1].Journeys != nil && len(batches) > 1 {
		t.Errorf("the journeys waited for the end: %d batches", len(batches))
	}

	// The model shows the rule and the drop box of the kept journey.
	ch := make(chan Batch, len(batches))
	for _, b := range batches {
		ch <- b
	}
	m := newTestModel(100, 30, ch)
	m.Update(tickMsg(time.Now()))
	keys(m, "home", "tab", "tab", "tab")
	s := screen(m)
	for _, w := range []string{"tcp dport 2222", "✗ DROP", "hint:", "DROPPED"} {
		if !strings.Contains(s, w) {
			t.Errorf("journey pane lacks %q:\n%s", w, s)
		}
	}
}

// TestFeedRecordsShed: records a live source shed show in the batches and
// mark the journeys open then incomplete.
func TestFeedRecordsShed(t *testing.T) {
	syn := ipv4("10.77.0.1", "10.77.0.2", 100, 6, tcpSYN(51234, 2222, 1000))
	var shed atomic.Uint64
	now := time.Now()
	src := &recordList{recs: []Record{
		{Frame: &capture.Frame{Time: now, Netns: "srv", Iface: "s0", Dir: capture.DirIn, LinkType: capture.LinkTypeEthernet, Len: 54, Data: ether(syn)}},
		{Clock: now.Add(-time.Second)}, // a tick: the batch goes, the journey stays open
		{Loss: &decode.LossNotice{Time: now, Netns: "srv", Cause: "enobufs", Count: 1}},
	}}
	shed.Store(5)
	batches := feedAll(t, src, FeedOptions{Shed: shed.Load})
	var total uint64
	var js []JourneyInfo
	for _, b := range batches {
		total += b.Shed
		js = append(js, b.Journeys...)
	}
	if total != 5 {
		t.Errorf("shed %d, want 5", total)
	}
	if len(batches) < 2 {
		t.Errorf("the clock record sent nothing: %d batches", len(batches))
	}
	if len(js) != 1 || js[0].Journey == nil || !js[0].Journey.Incomplete {
		t.Errorf("journeys: %+v", js)
	}
}

// TestLiveStatusBar: a live source follows the newest packet, says it is
// capturing, shows the loss counters above zero, and says when the
// capture ended.
func TestLiveStatusBar(t *testing.T) {
	ch := make(chan Batch, 4)
	m := New(Options{Source: "live", Batches: ch, Location: time.UTC, Live: true, Counters: func() []Counter {
		return []Counter{{Name: "dropped by the kernel ring", Value: 12}, {Name: "trace ENOBUFS", Value: 0}}
	}})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
	fr := capture.Frame{Time: fixedNow, LinkType: capture.LinkTypeEthernet, Data: make([]byte, 60), Len: 60}
	ch <- Batch{Frames: []capture.Frame{fr, fr, fr}, VNIs: make([]uint32, 3), Shed: 4}
	m.Update(tickMsg(time.Now()))
	s := screen(m)
	for _, w := range []string{"live │ capturing │ 3 packets", "4 shed by the UI", "12 dropped by the kernel ring", "[follow]"} {
		if !strings.Contains(s, w) {
			t.Errorf("lacks %q:\n%s", w, s)
		}
	}
	if strings.Contains(s, "ENOBUFS") {
		t.Error("a zero counter is shown")
	}
	if m.sel != 2 {
		t.Errorf("follow: selected %d", m.sel)
	}
	ch <- Batch{Frames: []capture.Frame{fr}, VNIs: make([]uint32, 1), Done: true}
	m.Update(tickMsg(time.Now()))
	if s := screen(m); !strings.Contains(s, "live │ capture ended │ 4 packets") || m.sel != 3 {
		t.Errorf("after the end, selected %d:\n%s", m.sel, s)
	}
}
