package nflog

import (
	"net"
	"strings"
	"testing"
	"time"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
)

const userRuleset = `table inet userfw {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 22 accept
		ip saddr 10.9.9.9 drop
	}
}
`

func listRuleset(t *testing.T, ns NetnsRef) string {
	t.Helper()
	out, err := nftCommand(ns.Path, "", "list", "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestTraceRulesInstallAndRemove(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t, "hxtra"), nstest.New(t, "hxtrb")
	refs := []NetnsRef{{Name: a, Path: "/run/netns/" + a}, {Name: b, Path: "/run/netns/" + b}}
	for _, ns := range refs {
		if _, err := nftCommand(ns.Path, userRuleset, "-f", "-"); err != nil {
			t.Fatal(err)
		}
	}
	before := listRuleset(t, refs[0])
	m, err := TranslateFilter("host 10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := InstallTraceRules(refs, TraceScript(m, DefaultTraceRate, DefaultLogGroup))
	if err != nil {
		t.Fatal(err)
	}
	during := listRuleset(t, refs[1])
	if !strings.Contains(during, "table inet hooktrace") || !strings.Contains(during, "meta nftrace set 1") || !strings.Contains(during, "table inet userfw") {
		t.Errorf("ruleset while tracing:\n%s", during)
	}
	// A second run finds the leftover and refuses, touching nothing.
	if _, err := InstallTraceRules(refs[:1], TraceScript(m, 0, -1)); err == nil || !strings.Contains(err.Error(), "hooktrace cleanup") {
		t.Errorf("second install: %v", err)
	}
	if err := rules.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range refs {
		if after := listRuleset(t, ns); after != before {
			t.Errorf("%s after removal:\n%s\nbefore:\n%s", ns.Name, after, before)
		}
	}
}

func TestCleanupRemovesLeftovers(t *testing.T) {
	nstest.RequireRoot(t)
	a := nstest.New(t, "hxtcl")
	ns := NetnsRef{Name: a, Path: "/run/netns/" + a}
	if _, err := nftCommand(ns.Path, userRuleset, "-f", "-"); err != nil {
		t.Fatal(err)
	}
	before := listRuleset(t, ns)
	if _, err := nftCommand(ns.Path, TraceScript([]string{""}, 0, DefaultLogGroup), "-f", "-"); err != nil {
		t.Fatal(err)
	}
	removed, err := Cleanup([]NetnsRef{ns})
	if err != nil || len(removed) != 1 {
		t.Fatalf("cleanup: %v %v", removed, err)
	}
	if after := listRuleset(t, ns); after != before {
		t.Errorf("after cleanup:\n%s\nbefore:\n%s", after, before)
	}
	if removed, err := Cleanup([]NetnsRef{ns}); err != nil || len(removed) != 0 {
		t.Errorf("second cleanup: %v %v", removed, err)
	}
}

func TestMissingNamespaceIsOneLine(t *testing.T) {
	nstest.RequireRoot(t)
	_, err := InstallTraceRules([]NetnsRef{{Name: "hxt-gone", Path: "/run/netns/hxt-gone"}}, TraceScript([]string{""}, 0, DefaultLogGroup))
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("want a one-line error, got %v", err)
	}
}

// hookNames are the IPv4 hook numbers NFLOG's packet header carries.
var hookNames = []string{"prerouting", "input", "forward", "output", "postrouting"}

// logSteps reads "prefix@hook" for each message until n arrived.
func logSteps(t *testing.T, l *LogListener, n int) []string {
	t.Helper()
	var steps []string
	for _, m := range readLogs(t, l, n, 5*time.Second) {
		hook := "?"
		forEachAttr(m.Data[4:], func(typ uint16, v []byte) {
			if typ == 1 && len(v) >= 3 && int(v[2]) < len(hookNames) {
				hook = hookNames[v[2]]
			}
		})
		steps = append(steps, logPrefix(m.Data)+"@"+hook)
	}
	return steps
}

// TestTraceScriptLogsEachHook checks hooktrace's NFLOG rules: a packet
// that passes is logged entering and leaving every hook it crosses; one
// the user's rule drops is logged entering the hook and never leaving it;
// and the user's verdict stands.
func TestTraceScriptLogsEachHook(t *testing.T) {
	nstest.RequireRoot(t)
	name := nstest.New(t, "hxtlh")
	ns := NetnsRef{Name: name, Path: "/run/netns/" + name}
	if _, err := nftCommand(ns.Path, `table inet userfw {
	chain input {
		type filter hook input priority 0; policy accept;
		udp dport 9998 counter drop
	}
}
`, "-f", "-"); err != nil {
		t.Fatal(err)
	}
	l, err := ListenLog(name, ns.Path, 41, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m, err := TranslateFilter("udp")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := InstallTraceRules([]NetnsRef{ns}, TraceScript(m, DefaultTraceRate, 41))
	if err != nil {
		t.Fatal(err)
	}
	defer rules.Remove()

	sendUDPTo(t, name, 9999, 1)
	want := []string{"hooktrace first@output", "hooktrace last@output", "hooktrace first@postrouting", "hooktrace last@postrouting",
		"hooktrace first@prerouting", "hooktrace last@prerouting", "hooktrace first@input", "hooktrace last@input"}
	if got := logSteps(t, l, len(want)); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("passed packet logged as\n%q, want\n%q", got, want)
	}
	sendUDPTo(t, name, 9998, 1)
	want = want[:7] // dropped in input, between the two
	if got := logSteps(t, l, len(want)); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("dropped packet logged as\n%q, want\n%q", got, want)
	}
	if out, err := nftCommand(ns.Path, "", "list", "chain", "inet", "userfw", "input"); err != nil || !strings.Contains(string(out), "packets 1 ") {
		t.Errorf("the user's drop rule did not count the one dropped packet: %v\n%s", err, out)
	}
	// Nothing else was logged.
	if extra := readLogs(t, l, 1, 200*time.Millisecond); len(extra) != 0 {
		t.Errorf("unexpected message: %q", logPrefix(extra[0].Data))
	}
}

// sendUDPTo sends n datagrams to 127.0.0.1:port from inside ns, from an
// unconnected socket, so that the port unreachable errors coming back do
// not fail the writes that follow.
func sendUDPTo(t *testing.T, ns string, port, n int) {
	t.Helper()
	nstest.In(t, ns, func() error {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer c.Close()
		to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
		for i := 0; i < n; i++ {
			if _, err := c.WriteTo([]byte("hooktrace"), to); err != nil {
				return err
			}
		}
		return nil
	})
}
