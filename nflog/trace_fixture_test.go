package nflog

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/fixtures/netns"
)

// traceTestRuleset is the ruleset of the listener tests, loaded in the
// receiving namespace: trace what 10.84.0.1 sends, jump for pings, drop
// TCP to port 9.
const traceTestRuleset = `table inet hxtest {
	chain pre {
		type filter hook prerouting priority -300;
		ip saddr 10.84.0.1 meta nftrace set 1
	}
	chain in {
		type filter hook input priority 0; policy accept;
		icmp type echo-request jump icmpchk
		tcp dport 9 drop
	}
	chain icmpchk {
		ip saddr 10.84.0.1 counter accept
	}
}
`

// traceTopo is two throw-away namespaces joined by a veth pair: send
// (10.84.0.1) and recv (10.84.0.2), where a ruleset traces what send sends.
type traceTopo struct {
	send, recv string
}

// newTraceTopo builds the namespaces and loads ruleset into recv; both
// are deleted when the test ends.
func newTraceTopo(t *testing.T, ruleset string) traceTopo {
	t.Helper()
	netns.RequireRoot(t)
	topo := traceTopo{send: netns.New(t, "hxtts"), recv: netns.New(t, "hxttr")}
	netns.Veth(t, topo.send, "hxa", "10.84.0.1/24", topo.recv, "hxb", "10.84.0.2/24")
	cmd := exec.Command("ip", "netns", "exec", topo.recv, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("load ruleset in %s: %v\n%s", topo.recv, err, out)
	}
	return topo
}

func (topo traceTopo) nsPath() string { return "/run/netns/" + topo.recv }

// ping sends count echo requests from send to recv.
func (topo traceTopo) ping(t *testing.T, args ...string) string {
	t.Helper()
	cmd := append([]string{"ip", "netns", "exec", topo.send, "ping", "-q", "-W", "1"}, args...)
	return netns.Run(t, append(cmd, "10.84.0.2")...)
}

// dialTCP sends one SYN from send to recv's port 9, where it is dropped:
// the dial times out before the first retransmission.
func (topo traceTopo) dialTCP(t *testing.T) {
	t.Helper()
	netns.In(t, topo.send, func() error {
		c, err := (&net.Dialer{Timeout: 300 * time.Millisecond}).Dial("tcp4", "10.84.0.2:9")
		if err == nil {
			c.Close()
			return fmt.Errorf("TCP to port 9 was not dropped")
		}
		return nil
	})
}

// sendUDP sends one datagram from send to recv's port 9.
func (topo traceTopo) sendUDP(t *testing.T) {
	t.Helper()
	netns.In(t, topo.send, func() error {
		c, err := net.Dial("udp4", "10.84.0.2:9")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hooktrace"))
		return err
	})
}

// waitTraceSubscribers waits until n sockets in ns have joined
// NFNLGRP_NFTRACE, as /proc/net/netlink of that namespace shows: then
// `nft monitor trace` is listening and no event can slip past it.
func waitTraceSubscribers(t *testing.T, ns string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := netns.Run(t, "ip", "netns", "exec", ns, "cat", "/proc/net/netlink")
		if countTraceSubscribers(out) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d nf_tables trace subscribers in %s:\n%s", n, ns, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countTraceSubscribers counts NETLINK_NETFILTER (12) sockets whose group
// bitmask has NFNLGRP_NFTRACE (bit 9-1).
func countTraceSubscribers(procNetlink string) int {
	n := 0
	for _, line := range strings.Split(procNetlink, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[1] != "12" {
			continue
		}
		groups, err := strconv.ParseUint(f[3], 16, 32)
		if err == nil && groups&(1<<(traceGroup-1)) != 0 {
			n++
		}
	}
	return n
}

// traceNftMonitor runs `nft -a monitor trace` in a namespace and keeps what it
// prints.
type traceNftMonitor struct {
	mu    sync.Mutex
	lines []string
}

// startTraceNftMonitor starts nft in ns and waits until it listens (with
// others trace subscribers already there); it is killed when the test ends.
func startTraceNftMonitor(t *testing.T, ns string, others int) *traceNftMonitor {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-a", "monitor", "trace")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nft monitor trace in %s: %v", ns, err)
	}
	m := &traceNftMonitor{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			m.mu.Lock()
			m.lines = append(m.lines, sc.Text())
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	})
	waitTraceSubscribers(t, ns, others+1)
	return m
}

// Lines returns what nft printed so far.
func (m *traceNftMonitor) Lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.lines...)
}

// traceStep is one line of `nft -a monitor trace`, or what hooktrace
// received that nft would print as that line.
type traceStep struct {
	ID                   uint32
	Family, Table, Chain string
	Kind                 string // "packet", "rule", "policy" or "verdict" (a return)
	Handle               uint64
	Verdict              string // as nft prints it: "accept", "jump icmpchk"
}

func (s traceStep) String() string {
	return fmt.Sprintf("%08x %s %s %s %s handle=%d %s", s.ID, s.Family, s.Table, s.Chain, s.Kind, s.Handle, s.Verdict)
}

var (
	nftTraceLine     = regexp.MustCompile(`^trace id ([0-9a-f]{8}) (\S+) (\S+) (\S+) (.*)$`)
	nftTraceRuleTail = regexp.MustCompile(`(?:# handle |unknown rule handle )(\d+) \(verdict ([^)]*)\)\s*$`)
)

// parseNftTraceLine reads one line of `nft -a monitor trace` (nft 1.0.6):
//
//	trace id 2bf6fbd9 inet hxtest pre packet: iif "vb" ether saddr ...
//	trace id 2bf6fbd9 inet hxtest in rule icmp type echo-request jump icmpchk # handle 5 (verdict jump icmpchk)
//	trace id 2bf6fbd9 inet hxtest pre policy accept
//	trace id 2bf6fbd9 inet hxtest udpchk verdict continue
func parseNftTraceLine(line string) (traceStep, error) {
	m := nftTraceLine.FindStringSubmatch(line)
	if m == nil {
		return traceStep{}, fmt.Errorf("not a trace line: %q", line)
	}
	id, _ := strconv.ParseUint(m[1], 16, 32)
	s := traceStep{ID: uint32(id), Family: m[2], Table: m[3], Chain: m[4]}
	rest := strings.TrimSpace(m[5])
	switch {
	case strings.HasPrefix(rest, "packet:"):
		s.Kind = "packet"
	case strings.HasPrefix(rest, "policy "):
		s.Kind, s.Verdict = "policy", traceFirstField(strings.TrimPrefix(rest, "policy "))
	case strings.HasPrefix(rest, "verdict "):
		s.Kind, s.Verdict = "verdict", strings.TrimPrefix(rest, "verdict ")
	case strings.HasPrefix(rest, "rule ") || strings.HasPrefix(rest, "unknown rule handle "):
		r := nftTraceRuleTail.FindStringSubmatch(rest)
		if r == nil {
			return traceStep{}, fmt.Errorf("rule line without handle and verdict (run nft with -a): %q", line)
		}
		s.Kind, s.Verdict = "rule", r[2]
		s.Handle, _ = strconv.ParseUint(r[1], 10, 64)
	default:
		return traceStep{}, fmt.Errorf("unknown trace line: %q", line)
	}
	return s, nil
}

func traceFirstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// traceNftSteps parses nft's lines into steps, grouped by trace id.
func traceNftSteps(t *testing.T, lines []string) map[uint32][]traceStep {
	t.Helper()
	steps := map[uint32][]traceStep{}
	for _, line := range lines {
		s, err := parseNftTraceLine(line)
		if err != nil {
			t.Fatal(err)
		}
		steps[s.ID] = append(steps[s.ID], s)
	}
	return steps
}

// traceNftView returns the lines nft 1.0.6 prints for one event: a packet line
// when headers came with it, then one line unless it is the end of a
// chain (a rule event without handle), which nft does not print.
func traceNftView(tr Trace) []traceStep {
	base := traceStep{ID: tr.ID, Family: FamilyName(tr.Family), Table: tr.Table, Chain: tr.Chain}
	var steps []traceStep
	if tr.LL != nil || tr.Network != nil {
		p := base
		p.Kind = "packet"
		steps = append(steps, p)
	}
	s := base
	switch tr.Type {
	case TraceRule:
		if tr.Handle == 0 {
			return steps
		}
		s.Kind, s.Handle, s.Verdict = "rule", tr.Handle, traceVerdictText(tr)
	case TracePolicy:
		s.Kind, s.Verdict = "policy", tr.Policy.String()
	case TraceReturn:
		s.Kind, s.Verdict = "verdict", traceVerdictText(tr)
	}
	return append(steps, s)
}

func traceVerdictText(tr Trace) string {
	if tr.JumpTarget != "" {
		return tr.Verdict.String() + " " + tr.JumpTarget
	}
	return tr.Verdict.String()
}

// traceSteps groups what nft would print for traces by trace id.
func traceSteps(traces []Trace) map[uint32][]traceStep {
	steps := map[uint32][]traceStep{}
	for _, tr := range traces {
		steps[tr.ID] = append(steps[tr.ID], traceNftView(tr)...)
	}
	return steps
}

// compareTraceSteps fails the test where got and nft differ.
func compareTraceSteps(t *testing.T, got, nft map[uint32][]traceStep) {
	t.Helper()
	for id, want := range nft {
		if !slices.Equal(got[id], want) {
			t.Errorf("trace id %08x:\nhooktrace: %v\nnft:       %v", id, got[id], want)
		}
	}
	for id, g := range got {
		if _, ok := nft[id]; !ok {
			t.Errorf("trace id %08x: hooktrace got %v, nft printed nothing", id, g)
		}
	}
}
