package nflog

import (
	"strings"
	"testing"

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
	rules, err := InstallTraceRules(refs, TraceScript(m, DefaultTraceRate))
	if err != nil {
		t.Fatal(err)
	}
	during := listRuleset(t, refs[1])
	if !strings.Contains(during, "table inet hooktrace") || !strings.Contains(during, "meta nftrace set 1") || !strings.Contains(during, "table inet userfw") {
		t.Errorf("ruleset while tracing:\n%s", during)
	}
	// A second run finds the leftover and refuses, touching nothing.
	if _, err := InstallTraceRules(refs[:1], TraceScript(m, 0)); err == nil || !strings.Contains(err.Error(), "hooktrace cleanup") {
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
	if _, err := nftCommand(ns.Path, TraceScript([]string{""}, 0), "-f", "-"); err != nil {
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
	_, err := InstallTraceRules([]NetnsRef{{Name: "hxt-gone", Path: "/run/netns/hxt-gone"}}, TraceScript([]string{""}, 0))
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("want a one-line error, got %v", err)
	}
}
