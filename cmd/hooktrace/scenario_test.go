package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// Scenario tests: hooktrace --trace beside `nft -a monitor trace` (and
// `xtables-monitor --trace` for iptables-nft rules) in namespaces the test
// builds, on traffic the test sends. Each checks that both report the
// same (table, chain, handle, verdict) steps, that the verdicts the
// scenario is about are among them, and what only hooktrace adds (hook,
// rule text, iptables text).

// traceStep is one rule or policy step of a traced packet.
type traceStep struct {
	ID, Family, Table, Chain string
	Handle                   uint64 // 0 for a policy step
	Policy                   bool
	Verdict                  string
	Rule                     string // the rule's text, "" when unknown
	Hook                     string // hooktrace's only
	Iptables                 string // hooktrace's only
}

// key is what both tools must agree on.
func (s traceStep) key() string {
	if s.Policy {
		return fmt.Sprintf("%s %s %s %s policy %s", s.ID, s.Family, s.Table, s.Chain, s.Verdict)
	}
	return fmt.Sprintf("%s %s %s %s #%d %s", s.ID, s.Family, s.Table, s.Chain, s.Handle, s.Verdict)
}

func stepKeys(steps []traceStep) []string {
	keys := make([]string, len(steps))
	for i, s := range steps {
		keys[i] = s.key()
	}
	return keys
}

// nftTraceLine matches the rule and policy lines of `nft -a monitor
// trace`; a rule added after nft started shows as "unknown rule handle".
var nftTraceLine = regexp.MustCompile(`^trace id ([0-9a-f]+) (\S+) (\S+) (\S+) (?:rule (.*) # handle (\d+) \(verdict (\w+)|unknown rule handle (\d+) \(verdict (\w+)|policy (\w+))`)

// parseNftTrace reads the steps `nft -a monitor trace` printed, leaving
// out those of hooktrace's own table.
func parseNftTrace(out string) []traceStep {
	var steps []traceStep
	for _, l := range strings.Split(out, "\n") {
		m := nftTraceLine.FindStringSubmatch(l)
		if m == nil || (m[2] == "inet" && m[3] == "hooktrace") {
			continue
		}
		s := traceStep{ID: m[1], Family: m[2], Table: m[3], Chain: m[4]}
		switch {
		case m[6] != "":
			s.Rule, s.Verdict = m[5], m[7]
			s.Handle, _ = strconv.ParseUint(m[6], 10, 64)
		case m[8] != "":
			s.Verdict = m[9]
			s.Handle, _ = strconv.ParseUint(m[8], 10, 64)
		default:
			s.Policy, s.Verdict = true, m[10]
		}
		steps = append(steps, s)
	}
	return steps
}

// parseHooktraceTrace reads the trace records of one namespace from
// hooktrace's NDJSON output, keeping the steps nft monitor trace prints:
// rules (with a handle) and policies. A chain's implicit end (no handle,
// verdict continue) is one nft does not print.
func parseHooktraceTrace(out, netns string) []traceStep {
	var steps []traceStep
	for _, line := range strings.Split(out, "\n") {
		var rec struct {
			Type, Netns, ID, Family, Table, Chain, Hook, Rule, Verdict string
			TraceType                                                  string `json:"trace_type"`
			Handle                                                     uint64
			IptablesRule                                               string `json:"iptables_rule"`
		}
		if line == "" || json.Unmarshal([]byte(line), &rec) != nil || rec.Type != "trace" || rec.Netns != netns {
			continue
		}
		if rec.TraceType != "policy" && rec.Handle == 0 {
			continue
		}
		steps = append(steps, traceStep{
			ID: rec.ID, Family: rec.Family, Table: rec.Table, Chain: rec.Chain,
			Handle: rec.Handle, Policy: rec.TraceType == "policy", Verdict: rec.Verdict,
			Rule: rec.Rule, Hook: rec.Hook, Iptables: rec.IptablesRule,
		})
	}
	return steps
}

// nftPacketLine matches the line `nft monitor trace` prints for the first
// event of a base chain, with the packet's interfaces: `packet: iif "eb"
// oif "rs" ...`, or the index when nft cannot name it.
var nftPacketLine = regexp.MustCompile(`^trace id ([0-9a-f]+) (\S+) (\S+) (\S+) packet: (?:iif "?([^" ]*)"? )?(?:oif "?([^" ]*)"? )?`)

// parseNftPackets lists "id family table chain iif oif" for each base
// chain a packet entered, as nft monitor trace printed them, leaving out
// hooktrace's own table.
func parseNftPackets(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		m := nftPacketLine.FindStringSubmatch(l)
		if m == nil || (m[2] == "inet" && m[3] == "hooktrace") {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %s iif=%s oif=%s", m[1], m[2], m[3], m[4], m[5], m[6]))
	}
	return lines
}

// parseHooktracePackets lists the same from hooktrace's records of one
// namespace: those that carry the packet's headers.
func parseHooktracePackets(out, netns string) []string {
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		var rec struct {
			Type, Netns, ID, Family, Table, Chain, Iif, Oif string
			Layers                                          []json.RawMessage
		}
		if line == "" || json.Unmarshal([]byte(line), &rec) != nil || rec.Type != "trace" || rec.Netns != netns || len(rec.Layers) == 0 {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %s iif=%s oif=%s", rec.ID, rec.Family, rec.Table, rec.Chain, rec.Iif, rec.Oif))
	}
	return lines
}

// monitor is a command printing events, run in a namespace until the test
// ends.
type monitor struct {
	cmd    *exec.Cmd
	stdout lockedBuffer
	stderr lockedBuffer
}

// startMonitor starts a command in a namespace; it is killed when the
// test ends.
func startMonitor(t *testing.T, ns string, args ...string) *monitor {
	t.Helper()
	m := &monitor{cmd: exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)}
	m.cmd.Stdout, m.cmd.Stderr = &m.stdout, &m.stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start %s in %s: %v", strings.Join(args, " "), ns, err)
	}
	t.Cleanup(func() {
		m.cmd.Process.Kill()
		m.cmd.Wait()
	})
	return m
}

// traceSession is hooktrace --trace and one `nft -a monitor trace` per
// namespace, both subscribed before the test sends anything.
type traceSession struct {
	nss []string
	ht  *hooktraceRun
	nft map[string]*monitor
}

// startTraceSession starts hooktrace on the namespaces with a filter, and
// nft monitor trace in each, and waits until all are subscribed.
func startTraceSession(t *testing.T, filter string, nss ...string) *traceSession {
	t.Helper()
	s := &traceSession{nss: nss, nft: map[string]*monitor{}}
	s.ht = startHooktrace(t, "--netns", strings.Join(nss, ","), "--trace", "--json", filter)
	for _, ns := range nss {
		s.nft[ns] = startMonitor(t, ns, "nft", "-a", "monitor", "trace")
	}
	for _, ns := range nss {
		waitForSubscribers(t, ns, 2)
	}
	return s
}

// settle waits until nft monitor trace has printed steps that satisfy
// done, and hooktrace has printed the same steps, then stops hooktrace
// and returns the steps of each, by namespace. It fails when the two
// differ.
func (s *traceSession) settle(t *testing.T, done func(nft map[string][]traceStep) bool) (got, want map[string][]traceStep) {
	t.Helper()
	snapshot := func() (got, want map[string][]traceStep) {
		got, want = map[string][]traceStep{}, map[string][]traceStep{}
		out := s.ht.stdout.String()
		for _, ns := range s.nss {
			got[ns] = parseHooktraceTrace(out, ns)
			want[ns] = parseNftTrace(s.nft[ns].stdout.String())
		}
		return got, want
	}
	same := func(got, want map[string][]traceStep) bool {
		for _, ns := range s.nss {
			if fmt.Sprint(stepKeys(got[ns])) != fmt.Sprint(stepKeys(want[ns])) {
				return false
			}
		}
		return true
	}
	// nft's output, then hooktrace's (flushed every 200 ms), with a deadline.
	deadline := time.Now().Add(5 * time.Second)
	for _, want := snapshot(); !done(want); _, want = snapshot() {
		if time.Now().After(deadline) {
			t.Fatalf("nft monitor trace did not show the expected steps in 5 s:\n%s", s.nftText())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for got, want := snapshot(); !same(got, want) && time.Now().Before(deadline.Add(2*time.Second)); got, want = snapshot() {
		time.Sleep(10 * time.Millisecond)
	}
	s.ht.stop(t)
	got, want = snapshot()
	out := s.ht.stdout.String()
	for _, ns := range s.nss {
		g, w := stepKeys(got[ns]), stepKeys(want[ns])
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("netns %s: hooktrace's steps differ from nft monitor trace's:\n%s", ns, diffLines(g, w))
		}
		g, w = parseHooktracePackets(out, ns), parseNftPackets(s.nft[ns].stdout.String())
		if len(w) == 0 && len(want[ns]) > 0 {
			t.Errorf("netns %s: no packet lines read from nft monitor trace", ns)
		}
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("netns %s: hooktrace's interfaces differ from nft monitor trace's:\n%s", ns, diffLines(g, w))
		}
	}
	if t.Failed() {
		t.Fatalf("nft monitor trace printed:\n%s\nhooktrace printed:\n%s", s.nftText(), s.ht.stdout.String())
	}
	return got, want
}

func (s *traceSession) nftText() string {
	var b strings.Builder
	for _, ns := range s.nss {
		fmt.Fprintf(&b, "--- %s\n%s", ns, s.nft[ns].stdout.String())
	}
	return b.String()
}

// diffLines shows two sequences side by side, marking where they differ.
func diffLines(got, want []string) string {
	var b strings.Builder
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		mark := "  "
		if g != w {
			mark = "!="
		}
		fmt.Fprintf(&b, "%s hooktrace %-50q nft %q\n", mark, g, w)
	}
	return b.String()
}

// expectStep names a step a scenario must show: a rule of a chain whose
// text contains rule, or the chain's policy when rule is "policy", with
// this verdict.
type expectStep struct{ chain, rule, verdict string }

func (e expectStep) matches(s traceStep) bool {
	if s.Chain != e.chain || s.Verdict != e.verdict {
		return false
	}
	if e.rule == "policy" {
		return s.Policy
	}
	return !s.Policy && strings.Contains(s.Rule, e.rule)
}

// hasSteps says whether every expected step is among steps.
func hasSteps(steps []traceStep, want ...expectStep) bool {
	for _, e := range want {
		found := false
		for _, s := range steps {
			if e.matches(s) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// checkHooktraceDetails checks what hooktrace adds to each step: the hook
// of the base chain (hooks maps every chain of the scenario to it), and
// the rule text nft monitor trace printed for the same step.
func checkHooktraceDetails(t *testing.T, got, want []traceStep, hooks map[string]string) {
	t.Helper()
	for i, g := range got {
		if hook, ok := hooks[g.Chain]; !ok || g.Hook != hook {
			t.Errorf("%s: hook %q, want %q", g.key(), g.Hook, hooks[g.Chain])
		}
		if i < len(want) && !g.Policy && want[i].Rule != "" && withoutCounters(g.Rule) != withoutCounters(want[i].Rule) {
			t.Errorf("%s: rule text %q, nft monitor trace says %q", g.key(), g.Rule, want[i].Rule)
		}
	}
}

var nftCounters = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// withoutCounters drops the counters from a rule's text: the two tools
// list the ruleset at different times.
func withoutCounters(rule string) string { return nftCounters.ReplaceAllString(rule, "counter") }

// loadNft loads an nft script in a namespace.
func loadNft(t *testing.T, ns, script string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("load rules in %s: %v\n%s", ns, err, out)
	}
}

// sendEcho sends one ICMP echo request with payload bytes of data from
// inside ns to dst, and says whether a reply came within wait (0: do not
// wait).
func sendEcho(t *testing.T, ns, dst string, seq, payload int, wait time.Duration) (replied bool) {
	t.Helper()
	nstest.In(t, ns, func() error {
		c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return err
		}
		defer c.Close()
		const id = 0x4854
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: make([]byte, payload)}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return err
		}
		if _, err := c.WriteTo(b, &net.IPAddr{IP: net.ParseIP(dst)}); err != nil {
			return err
		}
		if wait == 0 {
			return nil
		}
		c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 1500)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return nil // the deadline: no reply
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if err != nil {
				continue
			}
			if e, ok := m.Body.(*icmp.Echo); ok && m.Type == ipv4.ICMPTypeEchoReply && e.ID == id && e.Seq == seq {
				replied = true
				return nil
			}
		}
	})
	return replied
}

// dialOutcome is what a TCP connection attempt or a UDP datagram met.
type dialOutcome string

const (
	outcomeConnected dialOutcome = "connected"
	outcomeRefused   dialOutcome = "refused" // a TCP reset or an ICMP port unreachable
	outcomeTimeout   dialOutcome = "timeout" // dropped
)

func classify(err error) (dialOutcome, error) {
	var ne net.Error
	switch {
	case err == nil:
		return outcomeConnected, nil
	case errors.Is(err, syscall.ECONNREFUSED):
		return outcomeRefused, nil
	case errors.As(err, &ne) && ne.Timeout():
		return outcomeTimeout, nil
	}
	return "", err
}

// dialTCP connects from inside ns to addr; a connection is closed at
// once, after reading what the server sends when read is set.
func dialTCP(t *testing.T, ns, addr string, timeout time.Duration, read bool) (outcome dialOutcome, data string) {
	t.Helper()
	nstest.In(t, ns, func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if outcome, err = classify(err); err != nil || c == nil {
			return err
		}
		defer c.Close()
		if read {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			var b strings.Builder
			buf := make([]byte, 64)
			for {
				n, err := c.Read(buf)
				b.Write(buf[:n])
				if err != nil {
					break
				}
			}
			data = b.String()
		}
		return nil
	})
	return outcome, data
}

// sendUDP sends a datagram from inside ns to addr and waits up to wait for
// an answer or an ICMP error.
func sendUDP(t *testing.T, ns, addr string, wait time.Duration) (outcome dialOutcome) {
	t.Helper()
	nstest.In(t, ns, func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("hooktrace\n")); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(wait))
		_, err = c.Read(make([]byte, 64))
		outcome, err = classify(err)
		return err
	})
	return outcome
}

// listenTCP listens on addr inside ns and answers every connection with
// reply, then closes it; the listener is closed when the test ends.
func listenTCP(t *testing.T, ns, addr, reply string) {
	t.Helper()
	var ln net.Listener
	nstest.In(t, ns, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(reply))
			c.Close()
		}
	}()
}

const scenarioFilterRules = `table inet scn {
	chain input {
		type filter hook input priority 0; policy drop;
		icmp type echo-request jump icmpchk
		tcp dport 7 goto synchk
		tcp dport 8 reject with tcp reset
		udp dport 9 reject
		tcp dport 10 accept
	}
	chain icmpchk {
		icmp sequence 1 return
		ip saddr 10.91.0.1 accept
	}
	chain synchk {
		tcp flags syn drop
	}
}
`

// TestScenarioVerdicts: accept, drop, ICMP reject and TCP reset, jump and
// goto into user chains, return from one, and a policy drop.
func TestScenarioVerdicts(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t, "hxtva"), nstest.New(t, "hxtvb")
	nstest.Veth(t, a, "va", "10.91.0.1/24", b, "vb", "10.91.0.2/24")
	loadNft(t, b, scenarioFilterRules)
	s := startTraceSession(t, "host 10.91.0.1", b)
	// A rule added while tracing: nft monitor trace, which listed the
	// ruleset when it started, prints it as an unknown handle; hooktrace
	// must find its text.
	nstest.Run(t, "ip", "netns", "exec", b, "nft", "add rule inet scn input tcp dport 12 accept")

	// Each packet's fate, checked from the sender's side.
	if sendEcho(t, a, "10.91.0.2", 1, 8, 0) {
		t.Error("echo 1 was answered; icmpchk should return it to the policy drop")
	}
	if !sendEcho(t, a, "10.91.0.2", 2, 8, 2*time.Second) {
		t.Error("echo 2 was not answered; icmpchk should accept it")
	}
	for _, c := range []struct {
		port string
		want dialOutcome
	}{
		{"7", outcomeTimeout},  // goto synchk: drop
		{"8", outcomeRefused},  // reject with tcp reset
		{"10", outcomeRefused}, // accept; nothing listens
		{"11", outcomeTimeout}, // policy drop
		{"12", outcomeRefused}, // the rule added while tracing: accept
	} {
		if got, _ := dialTCP(t, a, "10.91.0.2:"+c.port, 200*time.Millisecond, false); got != c.want {
			t.Errorf("TCP port %s: %s, want %s", c.port, got, c.want)
		}
	}
	if got := sendUDP(t, a, "10.91.0.2:9", 2*time.Second); got != outcomeRefused {
		t.Errorf("UDP port 9: %s, want refused (ICMP port unreachable)", got)
	}

	want := []expectStep{
		{"input", "jump icmpchk", "jump"},
		{"icmpchk", "icmp sequence 1 return", "return"},
		{"icmpchk", "ip saddr 10.91.0.1 accept", "accept"},
		{"input", "goto synchk", "goto"},
		{"synchk", "tcp flags syn drop", "drop"},
		{"input", "tcp dport 8 reject with tcp reset", "drop"},
		{"input", "udp dport 9 reject", "drop"},
		{"input", "tcp dport 10 accept", "accept"},
		{"input", "policy", "drop"},
	}
	got, nft := s.settle(t, func(nft map[string][]traceStep) bool {
		// Two policy drops: echo 1 after its return, and port 11.
		n := 0
		for _, st := range nft[b] {
			if st.Policy {
				n++
			}
		}
		return n == 2 && hasSteps(nft[b], want...)
	})
	if !hasSteps(got[b], want...) {
		t.Errorf("hooktrace lacks a verdict the scenario is about; want %v", want)
	}
	checkHooktraceDetails(t, got[b], nft[b], map[string]string{"input": "input", "icmpchk": "input", "synchk": "input"})
	if !hasSteps(got[b], expectStep{"input", "tcp dport 12 accept", "accept"}) {
		t.Errorf("hooktrace does not show the text of the rule added while tracing")
	}
}

const scenarioRouterRules = `table ip natfw {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 8080 dnat to 10.92.2.2:80
		tcp dport 8081 dnat to 10.92.2.2:81
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "rc" jump from_client
	}
	chain from_client {
		ip daddr 10.92.2.2 tcp dport 80 accept
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "rs" masquerade
	}
}
`

// The server only lets in what the router masqueraded.
const scenarioServerRules = `table inet srv {
	chain input {
		type filter hook input priority 0; policy drop;
		ip saddr 10.92.2.1 tcp dport 80 accept
	}
}
`

// TestScenarioRouterNAT: a router namespace between a client and a server
// does DNAT in prerouting, filters in forward (a jump, an accept, a policy
// drop) and masquerades in postrouting; hooktrace traces the router and
// the server at once.
func TestScenarioRouterNAT(t *testing.T) {
	nstest.RequireRoot(t)
	c, r, srv := nstest.New(t, "hxtnc"), nstest.New(t, "hxtnr"), nstest.New(t, "hxtns")
	nstest.Veth(t, c, "cr", "10.92.1.2/24", r, "rc", "10.92.1.1/24")
	nstest.Veth(t, r, "rs", "10.92.2.1/24", srv, "sr", "10.92.2.2/24")
	nstest.Run(t, "ip", "-n", c, "route", "add", "default", "via", "10.92.1.1")
	// The server needs no route back: it answers the router's address.
	nstest.Run(t, "ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	loadNft(t, r, scenarioRouterRules)
	loadNft(t, srv, scenarioServerRules)
	listenTCP(t, srv, "10.92.2.2:80", "hello from the server\n")
	s := startTraceSession(t, "net 10.92.0.0/16", r, srv)

	if got, data := dialTCP(t, c, "10.92.1.1:8080", 2*time.Second, true); got != outcomeConnected || data != "hello from the server\n" {
		t.Errorf("port 8080: %s, read %q; want the server's greeting through DNAT and masquerade", got, data)
	}
	if got, _ := dialTCP(t, c, "10.92.1.1:8081", 200*time.Millisecond, false); got != outcomeTimeout {
		t.Errorf("port 8081: %s, want a timeout (forward policy drop)", got)
	}

	routerWant := []expectStep{
		{"pre", "dnat to 10.92.2.2:80", "accept"},
		{"pre", "dnat to 10.92.2.2:81", "accept"},
		{"forward", "jump from_client", "jump"},
		{"from_client", "tcp dport 80 accept", "accept"},
		{"forward", "ct state established,related accept", "accept"},
		{"forward", "policy", "drop"},
		{"post", "masquerade", "accept"},
	}
	serverWant := []expectStep{{"input", "ip saddr 10.92.2.1 tcp dport 80 accept", "accept"}}
	got, nft := s.settle(t, func(nft map[string][]traceStep) bool {
		return hasSteps(nft[r], routerWant...) && hasSteps(nft[srv], serverWant...)
	})
	if !hasSteps(got[r], routerWant...) || !hasSteps(got[srv], serverWant...) {
		t.Errorf("hooktrace lacks a step the scenario is about; want %v in the router, %v in the server", routerWant, serverWant)
	}
	checkHooktraceDetails(t, got[r], nft[r], map[string]string{"pre": "prerouting", "forward": "forward", "from_client": "forward", "post": "postrouting"})
	checkHooktraceDetails(t, got[srv], nft[srv], map[string]string{"input": "input"})
}

// The iptables-nft rules: a user chain with an ACCEPT and a RETURN, a
// DROP, a REJECT, an ACCEPT with a comment, and the policy DROP.
var scenarioIptablesRules = [][]string{
	{"-P", "INPUT", "DROP"},
	{"-N", "CHK"},
	{"-A", "INPUT", "-p", "icmp", "--icmp-type", "echo-request", "-j", "CHK"},
	{"-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "DROP"},
	{"-A", "INPUT", "-p", "tcp", "--dport", "8", "-j", "REJECT", "--reject-with", "tcp-reset"},
	{"-A", "INPUT", "-s", "10.93.0.1", "-p", "tcp", "--dport", "10", "-m", "comment", "--comment", "let it in", "-j", "ACCEPT"},
	{"-A", "CHK", "-s", "10.93.0.1", "-m", "length", "--length", "0:100", "-j", "ACCEPT"},
	{"-A", "CHK", "-j", "RETURN"},
}

// xtablesTraceLine matches a rule line of `xtables-monitor --trace`:
// " TRACE: 2 5bdccf83 filter:INPUT:rule:0x3:JUMP:CHK  -4 -t filter -A INPUT ...".
var xtablesTraceLine = regexp.MustCompile(`^\s*TRACE: \d+ ([0-9a-f]+) ([^: ]+):([^: ]+):rule:0x([0-9a-f]+):\S+\s+-([46]) -t (\S+) (-A .*?)\s*$`)

// parseXtablesTrace maps "id family table chain handle" to the rule text
// xtables-monitor printed for it, leaving out hooktrace's own table.
func parseXtablesTrace(out string) map[string]string {
	rules := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		m := xtablesTraceLine.FindStringSubmatch(l)
		if m == nil || m[2] == "hooktrace" {
			continue
		}
		handle, _ := strconv.ParseUint(m[4], 16, 64)
		family := map[string]string{"4": "ip", "6": "ip6"}[m[5]]
		rules[fmt.Sprintf("%s %s %s %s %d", m[1], family, m[2], m[3], handle)] = m[7]
	}
	return rules
}

// TestScenarioIptablesNft: rules made with iptables-nft are traced as nft
// monitor trace shows them, and hooktrace's iptables text for each rule is
// what xtables-monitor --trace prints for the same packet and rule.
func TestScenarioIptablesNft(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t, "hxtxta"), nstest.New(t, "hxtxtb")
	nstest.Veth(t, a, "xa", "10.93.0.1/24", b, "xb", "10.93.0.2/24")
	for _, rule := range scenarioIptablesRules {
		nstest.Run(t, append([]string{"ip", "netns", "exec", b, "iptables-nft"}, rule...)...)
	}
	s := startTraceSession(t, "host 10.93.0.1", b)
	xt := startMonitor(t, b, "xtables-monitor", "--trace")
	waitForSubscribers(t, b, 3)

	if !sendEcho(t, a, "10.93.0.2", 1, 8, 2*time.Second) {
		t.Error("a short echo was not answered; CHK should accept it")
	}
	if sendEcho(t, a, "10.93.0.2", 2, 200, 0) {
		t.Error("a long echo was answered; CHK should return it to the policy drop")
	}
	// A rule iptables-nft adds while tracing gets its iptables text too.
	nstest.Run(t, "ip", "netns", "exec", b, "iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "11", "-j", "ACCEPT")
	for _, c := range []struct {
		port string
		want dialOutcome
	}{
		{"9", outcomeTimeout},  // DROP
		{"8", outcomeRefused},  // REJECT --reject-with tcp-reset
		{"10", outcomeRefused}, // ACCEPT; nothing listens
		{"11", outcomeRefused}, // ACCEPT, added while tracing
	} {
		if got, _ := dialTCP(t, a, "10.93.0.2:"+c.port, 200*time.Millisecond, false); got != c.want {
			t.Errorf("TCP port %s: %s, want %s", c.port, got, c.want)
		}
	}

	want := []expectStep{
		{"INPUT", "jump CHK", "jump"},
		{"CHK", "accept", "accept"},
		{"CHK", "return", "return"},
		{"INPUT", "tcp dport 9", "drop"},
		{"INPUT", "reject with tcp reset", "drop"},
		{"INPUT", "tcp dport 10", "accept"},
		{"INPUT", "policy", "drop"},
	}
	got, nft := s.settle(t, func(nft map[string][]traceStep) bool { return hasSteps(nft[b], want...) })
	// nft monitor trace names the rule added while tracing by handle only.
	if want := append(want, expectStep{"INPUT", "tcp dport 11", "accept"}); !hasSteps(got[b], want...) {
		t.Errorf("hooktrace lacks a verdict the scenario is about; want %v", want)
	}
	checkHooktraceDetails(t, got[b], nft[b], map[string]string{"INPUT": "input", "CHK": "input"})

	// xtables-monitor prints each rule step; wait until it printed them all.
	var rules []traceStep
	for _, st := range got[b] {
		if !st.Policy {
			rules = append(rules, st)
		}
	}
	var xtRules map[string]string
	for deadline := time.Now().Add(5 * time.Second); ; {
		if xtRules = parseXtablesTrace(xt.stdout.String()); len(xtRules) >= len(rules) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	seen := map[string]bool{}
	for _, st := range rules {
		k := fmt.Sprintf("%s %s %s %s %d", st.ID, st.Family, st.Table, st.Chain, st.Handle)
		seen[k] = true
		xtext, ok := xtRules[k]
		switch {
		case !ok:
			t.Errorf("%s: xtables-monitor printed no rule for it", st.key())
		case st.Iptables == "":
			t.Errorf("%s: hooktrace has no iptables text; xtables-monitor says %q", st.key(), xtext)
		case st.Iptables != xtext:
			t.Errorf("%s: hooktrace's iptables text %q, xtables-monitor's %q", st.key(), st.Iptables, xtext)
		}
	}
	for k, xtext := range xtRules {
		if !seen[k] {
			t.Errorf("xtables-monitor traced %s (%q); hooktrace did not", k, xtext)
		}
	}
	if t.Failed() {
		t.Logf("xtables-monitor printed:\n%s", xt.stdout.String())
	}
}
