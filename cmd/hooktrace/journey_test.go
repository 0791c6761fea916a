package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
	"github.com/hooktrace/hooktrace/fixtures/scenario"
)

// journeyRecord is the part of a {"type":"journey"} record the tests read.
type journeyRecord struct {
	Type    string `json:"type"`
	ID      uint64 `json:"id"`
	Outcome string `json:"outcome"`
	Steps   []struct {
		Netns   string `json:"netns"`
		Kind    string `json:"kind"`
		Hook    string `json:"hook"`
		Family  string `json:"family"`
		Table   string `json:"table"`
		Chain   string `json:"chain"`
		Handle  uint64 `json:"handle"`
		Rule    string `json:"rule"`
		Verdict string `json:"verdict"`
		Tunnel  string `json:"tunnel"`
		VNI     uint32 `json:"vni"`
		Reason  string `json:"reason"`
		Before  *struct{ Src, Dst string }
		After   *struct{ Src, Dst string }
	} `json:"steps"`
	Drop *struct {
		By, Netns, Hook, Family, Table, Chain, Rule, Reason, Explanation, Hint string
		Handle                                                                 uint64
	} `json:"drop"`
}

// runExplain runs `hooktrace explain --json` on a built scenario: it
// waits for explain's ready line, sends the packet, and returns the exit
// code, the journey records and stderr.
func runExplain(t *testing.T, top *scenario.Topology) (int, []journeyRecord, string) {
	t.Helper()
	var stdout lockedBuffer
	code, stderr := explainScenario(t, top, &stdout)
	var recs []journeyRecord
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if line == "" {
			continue
		}
		var r journeyRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bad NDJSON line %q: %v", line, err)
		}
		if r.Type == "journey" {
			recs = append(recs, r)
		}
	}
	return code, recs, stderr
}

// explainScenario runs `hooktrace explain --json --timeout 10s [args...]`
// on a built scenario's namespaces and filter, with its standard output
// going to out: it waits for explain's ready line, sends the packet, and
// returns explain's exit code and standard error.
func explainScenario(t *testing.T, top *scenario.Topology, out io.Writer, args ...string) (int, string) {
	t.Helper()
	var stderr lockedBuffer
	args = append(append([]string{"explain", "--json", "--timeout", "10s"}, args...), "--netns", strings.Join(top.Trace, ","), top.Filter)
	cmd := exec.Command(hooktraceBin, args...)
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "waiting for the first packet") {
		select {
		case err := <-done:
			t.Fatalf("explain ended before it was ready: %v: %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("explain not ready after 20 s: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := top.Send(); err != nil {
		t.Errorf("send: %v", err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("explain did not end: %s", stderr.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stderr.String()
}

// TestJourneyScenarios explains the packet of every scenario of the
// library and holds the journey against the scenario's verified one:
// outcome and exit code, namespaces crossed, the drop (who, where, which
// rule or kernel reason), NAT rewrites and the tunnel; and each rule
// verdict of the journey against `nft monitor trace` run beside it.
func TestJourneyScenarios(t *testing.T) {
	nstest.RequireRoot(t)
	for _, sc := range scenario.All() {
		t.Run(sc.Name, func(t *testing.T) {
			top := sc.Build(t)
			want := top.Expected
			monitors := map[string]*monitor{}
			for _, ns := range top.Trace {
				monitors[ns] = startMonitor(t, ns, "nft", "-a", "monitor", "trace")
			}
			for _, ns := range top.Trace {
				waitForSubscribers(t, ns, 1)
			}
			code, recs, stderr := runExplain(t, top)
			if len(recs) != 1 {
				t.Fatalf("exit %d, %d journeys, want 1: %s", code, len(recs), stderr)
			}
			j := recs[0]
			defer func() {
				if t.Failed() {
					b, _ := json.MarshalIndent(j, "", " ")
					t.Logf("journey:\n%s\nexpected:\n%s\nstderr: %s", b, want, stderr)
				}
			}()
			if j.Outcome != want.Outcome {
				t.Errorf("outcome %q, want %q", j.Outcome, want.Outcome)
			}
			wantCode := exitOK
			if want.Outcome == scenario.OutcomeDropped || want.Outcome == scenario.OutcomeRejected {
				wantCode = exitError
			}
			if code != wantCode {
				t.Errorf("exit %d, want %d", code, wantCode)
			}
			checkNamespaces(t, j, want, top.Trace)
			checkDrop(t, j, want)
			checkNAT(t, j, want)
			checkEncap(t, j, want)
			checkAgainstMonitors(t, j, monitors)
		})
	}
}

// checkNamespaces: the traced namespaces the packet crosses, in order.
func checkNamespaces(t *testing.T, j journeyRecord, want scenario.Journey, traced []string) {
	t.Helper()
	var got, exp []string
	for _, s := range j.Steps {
		if len(got) == 0 || got[len(got)-1] != s.Netns {
			got = append(got, s.Netns)
		}
	}
	for _, ns := range want.Namespaces {
		if slices.Contains(traced, ns) && (len(exp) == 0 || exp[len(exp)-1] != ns) {
			exp = append(exp, ns)
		}
	}
	// A tunnel's far side shows the host twice (underlay, then overlay):
	// compare without repeats.
	if strings.Join(slices.Compact(got), ">") != strings.Join(slices.Compact(exp), ">") && !sameSet(got, exp) {
		t.Errorf("namespaces %v, want %v", got, exp)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// checkDrop: who dropped it, where, by which rule or reason.
func checkDrop(t *testing.T, j journeyRecord, want scenario.Journey) {
	t.Helper()
	if want.Drop == nil {
		if j.Drop != nil && j.Outcome != "unknown" {
			t.Errorf("a drop %+v for a journey that was not dropped", *j.Drop)
		}
		return
	}
	d := j.Drop
	if d == nil {
		t.Errorf("no drop; want %+v", *want.Drop)
		return
	}
	w := want.Drop
	if d.By != w.By || d.Netns != w.Netns {
		t.Errorf("drop by %s in %s, want by %s in %s", d.By, d.Netns, w.By, w.Netns)
	}
	switch w.By {
	case "kernel":
		if d.Reason != w.Reason {
			t.Errorf("kernel reason %q, want %q", d.Reason, w.Reason)
		}
	default:
		if d.Hook != w.Hook || d.Family != w.Family || d.Table != w.Table || d.Chain != w.Chain {
			t.Errorf("dropped at %s %s %s %s, want %s %s %s %s", d.Hook, d.Family, d.Table, d.Chain, w.Hook, w.Family, w.Table, w.Chain)
		}
		if w.By == "rule" && scenario.StripCounters(d.Rule) != w.Rule {
			t.Errorf("rule %q, want %q", d.Rule, w.Rule)
		}
	}
	if d.Explanation == "" || (w.By != "kernel" && d.Hint == "") {
		t.Errorf("drop without explanation or hint: %+v", *d)
	}
}

// checkNAT: the rewrites, in order (a masquerade's source port is the
// kernel's choice: only its address is compared).
func checkNAT(t *testing.T, j journeyRecord, want scenario.Journey) {
	t.Helper()
	var got []string
	for _, s := range j.Steps {
		if s.Kind == "nat" && s.Before != nil && s.After != nil {
			got = append(got, fmt.Sprintf("%s %s>%s=>%s>%s", s.Netns, s.Before.Src, s.Before.Dst, portless(s.After.Src), s.After.Dst))
		}
	}
	var exp []string
	for _, n := range want.NAT {
		after := n.After.Src.String()
		if n.Kind == "masquerade" {
			after = n.After.Src.Addr().String()
		}
		exp = append(exp, fmt.Sprintf("%s %s>%s=>%s>%s", n.Netns, n.Before.Src, n.Before.Dst, portless(after), n.After.Dst))
	}
	if strings.Join(got, ";") != strings.Join(exp, ";") {
		t.Errorf("NAT steps %q, want %q", got, exp)
	}
}

// portless drops the port of an address:port.
func portless(s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().String()
	}
	return s
}

// checkEncap: the tunnel's encap and decap steps.
func checkEncap(t *testing.T, j journeyRecord, want scenario.Journey) {
	t.Helper()
	var got []string
	for _, s := range j.Steps {
		if s.Kind == "encap" || s.Kind == "decap" {
			got = append(got, fmt.Sprintf("%s %s %s %d", s.Netns, s.Kind, s.Tunnel, s.VNI))
		}
	}
	var exp []string
	if e := want.Encap; e != nil {
		exp = []string{fmt.Sprintf("%s encap %s %d", e.Encap, e.Tunnel, e.VNI), fmt.Sprintf("%s decap %s %d", e.Decap, e.Tunnel, e.VNI)}
	}
	if strings.Join(got, ";") != strings.Join(exp, ";") {
		t.Errorf("tunnel steps %q, want %q", got, exp)
	}
}

// checkAgainstMonitors: every rule and policy step of the journey is one
// nft monitor trace printed in that namespace (same table, chain, handle
// and verdict).
func checkAgainstMonitors(t *testing.T, j journeyRecord, monitors map[string]*monitor) {
	t.Helper()
	type key struct {
		netns, family, table, chain string
		handle                      uint64
		verdict                     string
	}
	var want []key
	for _, s := range j.Steps {
		if (s.Kind == "rule" || s.Kind == "policy") && s.Family != "" {
			want = append(want, key{s.Netns, s.Family, s.Table, s.Chain, s.Handle, s.Verdict})
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		have := map[key]bool{}
		for ns, m := range monitors {
			for _, st := range parseNftTrace(m.stdout.String()) {
				have[key{ns, st.Family, st.Table, st.Chain, st.Handle, st.Verdict}] = true
			}
		}
		var missing []key
		for _, k := range want {
			if !have[k] {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("journey steps nft monitor trace did not print: %+v", missing)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestExplainEndings: nothing matching before the timeout is exit 3 with
// a line saying so; usage mistakes are exit 2; and nothing is left.
func TestExplainEndings(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t, "hxtex")
	before := tracedState(t, ns)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"timeout", []string{"--netns", ns, "--timeout", "1s", "udp port 9"}, exitNothing, `no packet matching "udp port 9" was seen in 1s`},
		{"no expression", []string{"--netns", ns}, exitUsage, "needs a filter expression"},
		{"bad expression", []string{"--netns", ns, "udp port"}, exitUsage, "filter expression"},
		{"bad count", []string{"--count", "0", "udp"}, exitUsage, "--count 0"},
		{"no namespace", []string{"--netns", "hxt-gone", "udp"}, exitUsage, "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(hooktraceBin, append([]string{"explain"}, tc.args...)...).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			if code != tc.code || !strings.Contains(string(out), tc.want) {
				t.Errorf("exit %d, want %d, saying %q: %s", code, tc.code, tc.want, out)
			}
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if !strings.HasPrefix(l, "hooktrace: ") {
					t.Errorf("stray output line %q", l)
				}
			}
			if after := tracedState(t, ns); after != before {
				t.Errorf("state changed:\n%s", after)
			}
		})
	}
}
