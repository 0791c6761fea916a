package nflog

import (
	"errors"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hooktrace/hooktrace/fixtures/netns"
)

// rsNetnsCommand prepares a command to run inside a named namespace.
func rsNetnsCommand(ns string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// rsNetnsOutput runs a command inside a named namespace and returns its
// standard output (nft writes warnings to standard error).
func rsNetnsOutput(t testing.TB, ns string, args ...string) string {
	t.Helper()
	cmd := rsNetnsCommand(ns, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s in %s: %v\n%s", strings.Join(args, " "), ns, err, stderr.String())
	}
	return string(out)
}

// rsNamespaceWithDevices creates a namespace with the devices the
// recorded netdev and ingress chains hook on.
func rsNamespaceWithDevices(t testing.TB) string {
	t.Helper()
	ns := netns.New(t, "hxtrs")
	netns.Run(t, "ip", "-n", ns, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
	netns.Run(t, "ip", "-n", ns, "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy0p")
	return ns
}

func TestLoadRulesetMatchesNft(t *testing.T) {
	netns.RequireRoot(t)
	for _, name := range rsRecordings(t) {
		t.Run(name, func(t *testing.T) {
			ns := rsNamespaceWithDevices(t)
			if name == "iptables-nft" {
				for _, f := range [][2]string{{"iptables-nft-restore", "iptables-nft.save"}, {"ip6tables-nft-restore", "ip6tables-nft.save"}} {
					cmd := rsNetnsCommand(ns, f[0])
					cmd.Stdin = strings.NewReader(rsReadFile(t, f[1]))
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("%s: %v %s", f[0], err, out)
					}
				}
			} else {
				path, err := filepath.Abs(filepath.Join("testdata/rulesets", name+".nft"))
				if err != nil {
					t.Fatal(err)
				}
				netns.Run(t, "ip", "netns", "exec", ns, "nft", "-f", path)
			}
			rs, err := LoadRuleset("/run/netns/" + ns)
			if err != nil {
				t.Fatal(err)
			}
			listing := rsNetnsOutput(t, ns, "nft", "-a", "list", "ruleset")
			rsCheckAgainstNft(t, rs, listing, rsNetnsOutput(t, ns, "nft", "-j", "list", "ruleset"))
			// iptables-nft.nft came from the rules before they were saved,
			// in another table order.
			if name != "iptables-nft" && listing != rsReadFile(t, name+".nft") {
				t.Logf("nft lists %s differently from the recording", name)
			}
		})
	}
}

// rsAddRule adds a rule with nft and returns its handle.
func rsAddRule(t *testing.T, ns string, rule ...string) uint64 {
	t.Helper()
	out := rsNetnsOutput(t, ns, append([]string{"nft", "-e", "-a", "add", "rule"}, rule...)...)
	for _, line := range strings.Split(out, "\n") {
		if h, ok := ruleHandle(line); ok && strings.HasPrefix(line, "add rule") {
			return h
		}
	}
	t.Fatalf("no handle in %q", out)
	return 0
}

func TestReloadChain(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t, "hxtrs")
	nsPath := "/run/netns/" + ns
	path, _ := filepath.Abs("testdata/rulesets/docker.nft")
	netns.Run(t, "ip", "netns", "exec", ns, "nft", "-f", path)
	rs, err := LoadRuleset(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	reload := func(table, chain string) {
		t.Helper()
		if err := rs.ReloadChain(nsPath, "ip", table, chain); err != nil {
			t.Fatal(err)
		}
	}

	h := rsAddRule(t, ns, "ip", "filter", "DOCKER-USER", "ip", "saddr", "198.51.100.7", "counter", "drop")
	if _, ok := rs.Rule("ip", "filter", "DOCKER-USER", h); ok {
		t.Fatal("a rule added after the load is known before a reload")
	}
	reload("filter", "DOCKER-USER")
	if got, ok := rs.Rule("ip", "filter", "DOCKER-USER", h); !ok || got != "ip saddr 198.51.100.7 counter packets 0 bytes 0 drop" {
		t.Errorf("added rule %d: %q, %v", h, got, ok)
	}
	if got, ok := rs.Rule("ip", "filter", "DOCKER-USER", 11); !ok || got != "counter packets 0 bytes 0 return" {
		t.Errorf("old rule 11: %q, %v", got, ok)
	}

	netns.Run(t, "ip", "netns", "exec", ns, "nft", "delete", "rule", "ip", "filter", "DOCKER-USER", "handle", "11")
	reload("filter", "DOCKER-USER")
	if got, ok := rs.Rule("ip", "filter", "DOCKER-USER", 11); ok {
		t.Errorf("deleted rule 11 is still there: %q", got)
	}

	netns.Run(t, "ip", "netns", "exec", ns, "nft", "add", "chain", "ip", "filter", "NEW")
	h = rsAddRule(t, ns, "ip", "filter", "NEW", "tcp", "dport", "22", "accept")
	reload("filter", "NEW")
	if got, _ := rs.Rule("ip", "filter", "NEW", h); got != "tcp dport 22 accept" {
		t.Errorf("rule of a new chain: %q", got)
	}
	if all := rs.Chains(); all[len(all)-1].Name != "NEW" {
		t.Errorf("a new chain is not listed last: %+v", all[len(all)-1])
	}

	netns.Run(t, "ip", "netns", "exec", ns, "nft", "flush chain ip filter NEW; delete chain ip filter NEW")
	reload("filter", "NEW")
	if _, ok := rs.Chain("ip", "filter", "NEW"); ok {
		t.Error("a deleted chain is still there")
	}
	reload("nosuchtable", "NEW")

	rsCheckAgainstNft(t, rs, rsNetnsOutput(t, ns, "nft", "-a", "list", "ruleset"), rsNetnsOutput(t, ns, "nft", "-j", "list", "ruleset"))
}

// A chain whose name nft's command line reads as a keyword is listed
// through its table.
func TestReloadChainKeywordName(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t, "hxtrs")
	nsPath := "/run/netns/" + ns
	netns.Run(t, "ip", "netns", "exec", ns, "iptables-nft", "-N", "counter")
	rs, err := LoadRuleset(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	netns.Run(t, "ip", "netns", "exec", ns, "iptables-nft", "-A", "counter", "-j", "ACCEPT")
	if err := rs.ReloadChain(nsPath, "ip", "filter", "counter"); err != nil {
		t.Fatal(err)
	}
	if rules := rs.ChainRules("ip", "filter", "counter"); len(rules) != 1 || rules[0].Text != "counter packets 0 bytes 0 accept" {
		t.Errorf("rules %+v", rules)
	}
}

func TestLoadMissingCommands(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := LoadRuleset("")
	rsCheckOneLine(t, err, exec.ErrNotFound, "list nf_tables ruleset in hooktrace's network namespace: nft command not found: install nftables to resolve rule handles to rule text")
	err = newRuleset().ReloadChain("", "ip", "filter", "INPUT")
	rsCheckOneLine(t, err, exec.ErrNotFound, "reload chain ip filter INPUT in hooktrace's network namespace: nft command not found: install nftables to resolve rule handles to rule text")
	_, err = LoadIptablesRules("")
	rsCheckOneLine(t, err, exec.ErrNotFound, "iptables-nft-save in hooktrace's network namespace: iptables-nft-save command not found: install iptables to show iptables-nft rules in iptables syntax")
	_, err = LoadLegacyRules("")
	rsCheckOneLine(t, err, exec.ErrNotFound, "iptables-legacy-save in hooktrace's network namespace: iptables-legacy-save command not found: install iptables to resolve iptables-legacy TRACE lines to rules")
}

func rsCheckOneLine(t *testing.T, err, target error, want string) {
	t.Helper()
	if !errors.Is(err, target) || err.Error() != want {
		t.Errorf("error %q (is %v: %v), want %q", err, target, errors.Is(err, target), want)
	}
}

func TestLoadRulesetMissingNamespace(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft")
	}
	_, err := LoadRuleset("/nonexistent/netns")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/nonexistent/netns") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q", err)
	}
}

func TestClassifyCommandError(t *testing.T) {
	exit := errors.New("exit status 1")
	tests := []struct {
		name, stderr string
		is           error
		want         string
	}{
		{"nft", "Operation not permitted (you must be root)\nnetlink: Error: cache initialization failed: Operation not permitted\n", fs.ErrPermission,
			"permission denied: nft needs CAP_NET_ADMIN, run hooktrace as root (nft: netlink: Error: cache initialization failed: Operation not permitted)"},
		{"iptables-nft-save", "iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n", fs.ErrPermission,
			"permission denied: iptables-nft-save needs CAP_NET_ADMIN, run hooktrace as root (iptables-nft-save: iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root))"},
		{"nft", "netlink: Error: cache initialization failed: Protocol not supported\n", errors.ErrUnsupported,
			"nf_tables is not supported by this kernel (nft: netlink: Error: cache initialization failed: Protocol not supported)"},
		{"nft", "Error: No such file or directory\nlist chain inet fw nosuch\n                   ^^^^^^\n", errNftNoObject,
			"nft: Error: No such file or directory"},
		{"nft", "Error: syntax error, unexpected counter, expecting string\nlist chain ip filter counter\n                     ^^^^^^^\n", nil,
			"nft: Error: syntax error, unexpected counter, expecting string"},
		{"nft", "", nil, "nft: exit status 1"},
	}
	for _, tt := range tests {
		err := classifyCommandError(tt.name, tt.stderr, exit)
		if err.Error() != tt.want || (tt.is != nil && !errors.Is(err, tt.is)) {
			t.Errorf("classify %q:\n got %q\nwant %q (is %v)", tt.stderr, err, tt.want, tt.is)
		}
	}
}
