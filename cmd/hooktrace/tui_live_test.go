package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
	"github.com/hooktrace/hooktrace/fixtures/scenario"
	"github.com/hooktrace/hooktrace/nflog"
	"github.com/hooktrace/hooktrace/ui/tui"
)

// ruleCounters matches the values of counters, which the test's own
// packets move.
var ruleCounters = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// netfilterState is what hooktrace may change in a namespace while it
// traces: the ruleset (counter values aside) and the nf_log backends.
func netfilterState(t *testing.T, ns string) string {
	t.Helper()
	rules := ruleCounters.ReplaceAllString(nstest.Run(t, "ip", "netns", "exec", ns, "nft", "list", "ruleset"), "counter")
	logs := nstest.Run(t, "ip", "netns", "exec", ns, "cat", "/proc/net/netfilter/nf_log")
	return rules + "\n" + logs
}

// buildRuleDrop builds the rule-drop scenario: the server's rule `tcp
// dport 2222 counter drop` drops the client's SYN.
func buildRuleDrop(t *testing.T) *scenario.Topology {
	t.Helper()
	nstest.RequireRoot(t)
	sc, ok := scenario.Get("rule-drop")
	if !ok {
		t.Fatal("no rule-drop scenario")
	}
	return sc.Build(t)
}

// packetsTitle reads the number of packets from the list's title.
var packetsTitle = regexp.MustCompile(`Packets (\d+)`)

func listed(scr string) int {
	m := packetsTitle.FindStringSubmatch(scr)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// rowShown says whether the list shows packet number n.
func rowShown(scr string, n int) bool {
	return regexp.MustCompile(`(?m)^ *` + strconv.Itoa(n) + ` \d\d:\d\d:\d\d\.`).MatchString(scr)
}

// TestTUILiveTrace runs the binary on a terminal (tmux) with --trace in
// the rule-drop scenario: the UI opens on the live capture, the packets
// the test sends fill the list, which follows the newest; the dropped
// packet's journey shows the rule and the drop box; q quits and leaves
// every namespace's ruleset and nf_log backends as they were, and the
// terminal as it was.
func TestTUILiveTrace(t *testing.T) {
	top := buildRuleDrop(t)
	before := map[string]string{}
	for _, ns := range top.Namespaces {
		before[ns] = netfilterState(t, ns)
	}
	cmd := fmt.Sprintf("%s --netns %s --trace '%s'; echo hooktrace-exit=$?; exec sleep 60", hooktraceBin, strings.Join(top.Trace, ","), top.Filter)
	s := startTmux(t, t.TempDir(), 150, 45, cmd)
	// The UI opens once tracing is in place.
	s.waitUpTo(30*time.Second, "the live UI", func(scr string) bool { return strings.Contains(scr, "live │ capturing │ 0 packets") })

	if err := top.Send(); err != nil {
		t.Errorf("send: %v", err)
	}
	// The journey closes 2 s after its last record; its rows then say
	// how it ended.
	scr := s.waitFor("the dropped packet's rows", func(scr string) bool {
		return strings.Contains(scr, "10.201.0.2:2222") && strings.Contains(scr, "dropped") && strings.Contains(scr, "[follow]")
	})
	first := listed(scr)
	if first == 0 {
		t.Fatalf("no packet count in the list's title:\n%s", scr)
	}

	// Follow mode: more packets than the list holds; the newest is shown,
	// the first scrolled away.
	for i := 0; i < 2; i++ {
		if err := top.Send(); err != nil {
			t.Errorf("send again: %v", err)
		}
	}
	scr = s.waitFor("the list to follow the newest packets", func(scr string) bool {
		n := listed(scr)
		return n >= 3*first && rowShown(scr, n)
	})
	if rowShown(scr, 1) {
		t.Errorf("following, the list still shows packet 1:\n%s", scr)
	}

	// The first packet (the client's SYN): its journey pane shows the rule
	// that dropped it, its verdict, and the drop box.
	s.keys("g")
	scr = s.waitFor("the journey of packet 1", func(scr string) bool {
		return rowShown(scr, 1) && strings.Contains(scr, "Dropped in namespace "+top.Trace[1])
	})
	for _, want := range []string{"outcome: DROPPED", "inet hxfilter input", "tcp dport 2222 counter drop", "✗ DROP", "┌", "hint:"} {
		if !strings.Contains(scr, want) {
			t.Errorf("the journey pane lacks %q:\n%s", want, scr)
		}
	}
	if strings.Contains(scr, "[follow]") {
		t.Errorf("moving up did not stop following:\n%s", scr)
	}

	// q: hooktrace removes what it added, gives the terminal back and
	// then says what it captured.
	s.keys("q")
	scr = s.waitUpTo(30*time.Second, "hooktrace to exit", func(scr string) bool { return strings.Contains(scr, "hooktrace-exit=") })
	if !strings.Contains(scr, "hooktrace-exit=0") {
		t.Errorf("exit status:\n%s", scr)
	}
	if strings.Contains(scr, "Packets") || strings.Contains(scr, "Journey") || strings.Contains(scr, "capturing") {
		t.Errorf("the UI is left on the terminal:\n%s", scr)
	}
	if !strings.Contains(scr, "packets captured") || !strings.Contains(scr, "trace events received") {
		t.Errorf("the counters are not printed after the UI:\n%s", scr)
	}
	for _, ns := range top.Namespaces {
		if after := netfilterState(t, ns); after != before[ns] {
			t.Errorf("namespace %s changed:\nbefore:\n%s\nafter:\n%s", ns, before[ns], after)
		}
	}
}

// TestTUIReplayIncident records the rule-drop scenario with --trace -w
// and opens the file in the UI: the journey pane of the dropped packet
// shows the recorded rule, its verdict and the drop box, as live.
func TestTUIReplayIncident(t *testing.T) {
	top := buildRuleDrop(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "incident.pcapng")
	recordScenario(t, top, file, syscall.SIGINT)
	s := startTmux(t, dir, 150, 45, fmt.Sprintf("%s -r %s; echo hooktrace-exit=$?; exec sleep 60", hooktraceBin, file))
	scr := s.waitFor("the recorded journey", func(scr string) bool {
		return strings.Contains(scr, "Dropped in namespace "+top.Trace[1])
	})
	for _, want := range []string{"dropped", "outcome: DROPPED", "inet hxfilter input", "tcp dport 2222 counter drop", "✗ DROP", "hint:"} {
		if !strings.Contains(scr, want) {
			t.Errorf("lacks %q:\n%s", want, scr)
		}
	}
	s.keys("q")
	scr = s.waitText("hooktrace-exit=")
	if !strings.Contains(scr, "hooktrace-exit=0") || strings.Contains(scr, "Journey") {
		t.Errorf("after q:\n%s", scr)
	}
	// The file holds no trace record hooktrace could not read.
	if out, err := exec.Command(hooktraceBin, "-r", file, "--print").CombinedOutput(); err != nil || strings.Contains(string(out), "warning") {
		t.Errorf("replay: %v\n%s", err, out)
	}
}

// TestRouteCache: a question asked again within the TTL is answered from
// memory; past the budget, questions are left unasked and counted, until
// the next second.
func TestRouteCache(t *testing.T) {
	now := time.Unix(1000, 0)
	asked := 0
	c := newRouteCache(func(ns string, q nflog.RouteQuery) (nflog.RouteDecision, bool) {
		asked++
		return nflog.RouteDecision{Kind: "local", Table: ns}, true
	}, func() time.Time { return now })
	q := nflog.RouteQuery{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), IIF: "eth0", Proto: 17, SPort: 1, DPort: 2}
	for i := 0; i < 3; i++ {
		if d, ok := c.route("a", q); !ok || d.Table != "a" {
			t.Fatalf("answer %+v %v", d, ok)
		}
	}
	if asked != 1 {
		t.Errorf("asked %d times for one question", asked)
	}
	now = now.Add(routeCacheTTL)
	c.route("a", q)
	if asked != 2 {
		t.Errorf("an answer older than the TTL was reused (%d asked)", asked)
	}
	// This second has used one question of its budget.
	for i := 0; i < 2*routeBudget; i++ {
		q.SPort = uint16(100 + i)
		c.route("a", q)
	}
	if asked != 1+routeBudget || c.skipped() != routeBudget+1 {
		t.Errorf("asked %d, skipped %d; the budget is %d a second", asked, c.skipped(), routeBudget)
	}
	now = now.Add(time.Second)
	q.SPort = 7
	if _, ok := c.route("a", q); !ok || asked != routeBudget+2 {
		t.Errorf("the next second's budget: asked %d", asked)
	}
}

// TestTUILiveDurationEndsTracing: a capture that ends by itself
// (--duration) removes its tracing at once, while the UI stays open on
// what it captured until q; W then saves the dropped packet's journey
// with the names of the interfaces its records give by index.
func TestTUILiveDurationEndsTracing(t *testing.T) {
	top := buildRuleDrop(t)
	before := map[string]string{}
	for _, ns := range top.Namespaces {
		before[ns] = netfilterState(t, ns)
	}
	dir := t.TempDir()
	// The test's packets must be captured before the duration is over:
	// it is long, and their rows are seen while the UI still captures.
	const duration = 10 * time.Second
	cmd := fmt.Sprintf("%s --netns %s --trace --duration %v '%s'; echo hooktrace-exit=$?; exec sleep 60", hooktraceBin, strings.Join(top.Trace, ","), duration, top.Filter)
	s := startTmux(t, dir, 150, 45, cmd)
	s.waitUpTo(30*time.Second, "the live UI", func(scr string) bool { return strings.Contains(scr, "live │ capturing") })
	if err := top.Send(); err != nil {
		t.Errorf("send: %v", err)
	}
	scr := s.waitFor("the test's packets", func(scr string) bool {
		return strings.Contains(scr, "10.201.0.2:2222") || strings.Contains(scr, "capture ended")
	})
	if !strings.Contains(scr, "live │ capturing") {
		t.Fatalf("the capture ended (--duration %v) before the test's packets were shown:\n%s", duration, scr)
	}
	s.waitUpTo(duration+30*time.Second, "the capture to end", func(scr string) bool { return strings.Contains(scr, "live │ capture ended") })
	// Tracing goes with the capture (the rules are removed before the
	// feed ends and the status bar changes); polled all the same.
	deadline := time.Now().Add(10 * time.Second)
	for _, ns := range top.Namespaces {
		for netfilterState(t, ns) != before[ns] {
			if time.Now().After(deadline) {
				t.Fatalf("namespace %s still traced after the capture ended:\n%s", ns, netfilterState(t, ns))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	scr = s.screen()
	if !strings.Contains(scr, "10.201.0.2:2222") {
		t.Errorf("the UI does not show what was captured:\n%s", scr)
	}
	// W once the capture ended: the capture still names the interfaces.
	saveFromUI(s, "W", "kernel drop")
	s.keys("q")
	if scr := s.waitText("hooktrace-exit="); !strings.Contains(scr, "hooktrace-exit=0") {
		t.Errorf("after q:\n%s", scr)
	}
	journey := savedFile(t, dir, "hooktrace-journey-*.pcapng")
	got := replayJourneysOf(t, "-r", journey)
	if len(got) != 1 || got[0]["outcome"] != "dropped" {
		t.Fatalf("the saved journey replays to %v", got)
	}
	// The kernel drop gives its device by index, named by the file's
	// interface records; the other steps carry names themselves.
	drops := 0
	for _, st := range got[0]["steps"].([]any) {
		m := st.(map[string]any)
		if m["kind"] == "drop" {
			drops++
		}
		if m["iface"] == nil || m["iface"] == "" {
			b, _ := json.MarshalIndent(m, "", " ")
			t.Errorf("a %v step of the saved journey names no interface:\n%s", m["kind"], b)
		}
	}
	if drops == 0 {
		b, _ := json.MarshalIndent(got[0], "", " ")
		t.Errorf("the saved journey has no kernel drop step:\n%s", b)
	}
}

// TestQueuedRecordsAfterFramesEnd: the UI's feed takes the trace events
// and kernel drops pushed after the capture's frames ended (the drop
// probe lags), until every source is closed.
func TestQueuedRecordsAfterFramesEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &screenOutput{queue: make(chan tui.Record, 4), ended: make(chan struct{}), sourcesEnded: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		q := &queuedRecords{s: s, ctx: ctx}
		got := make(chan tui.Record, 4)
		go func() {
			defer close(got)
			for {
				r, err := q.NextRecord()
				if err != nil {
					return
				}
				got <- r
			}
		}()
		close(s.ended) // the frames end, nothing is queued
		synctest.Wait()
		s.drop(nflog.KernelDrop{Netns: "a", Reason: "NETFILTER_DROP"})
		close(s.sourcesEnded) // as finish does, once the drop probe is closed
		var drops int
		for r := range got {
			if r.Drop != nil {
				drops++
			}
		}
		if drops != 1 {
			t.Errorf("the feed took %d of the 1 drop pushed after the frames ended", drops)
		}
	})
}
