package nflog

import (
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/fixtures/netns"
)

// rsNft runs nft inside a namespace with a script on standard input.
func rsNft(t testing.TB, ns, script string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s\nscript:\n%.2000s", err, out, script)
	}
}

// watchNamespace starts a RulesetWatch on a namespace, closed when the
// test ends.
func watchNamespace(t testing.TB, ns string, opt WatchOptions) *RulesetWatch {
	t.Helper()
	opt.OnError = func(err error) { t.Logf("watch: %v", err) }
	w, err := WatchRuleset(ns, "/run/netns/"+ns, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

// waitMonitor waits until the watch's nft monitor prints every new
// generation, so that a test measures the path it means to.
func waitMonitor(t testing.TB, w *RulesetWatch) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		w.mon.mu.Lock()
		ready := w.mon.ready
		w.mon.mu.Unlock()
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nft monitor did not subscribe within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rsSnapshot is everything a Ruleset says, for comparisons.
func rsSnapshot(rs *Ruleset) map[string]any {
	m := map[string]any{}
	for _, c := range rs.Chains() {
		key := fmt.Sprintf("%s %s %s", c.Family, c.Table, c.Name)
		m[key] = c
		if rules := rs.ChainRules(c.Family, c.Table, c.Name); len(rules) > 0 {
			m[key+" rules"] = rules
		}
	}
	return m
}

// rsCompareFresh checks that rs says what a fresh load says.
func rsCompareFresh(t testing.TB, rs *Ruleset, ns string) {
	t.Helper()
	fresh, err := LoadRuleset("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	got, want := rsSnapshot(rs), rsSnapshot(fresh)
	if reflect.DeepEqual(got, want) {
		return
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s:\n got %+v\nwant %+v", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: cached but gone: %+v", k, v)
		}
	}
}

const watchBase = `table inet fw {
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 22 accept
		jump svc
	}
	chain svc {
		udp dport { 53, 123 } accept
		tcp dport 80 counter accept
	}
}
table ip nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
	}
}
`

func TestRulesetWatchFollowsChanges(t *testing.T) {
	netns.RequireRoot(t)
	for _, v := range []struct {
		name string
		opt  WatchOptions
	}{{"monitor", WatchOptions{}}, {"chain-reloads", WatchOptions{NoMonitor: true}}} {
		t.Run(v.name, func(t *testing.T) {
			ns := netns.New(t, "hxtrw")
			netns.Run(t, "ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d0p")
			rsNft(t, ns, watchBase)
			w := watchNamespace(t, ns, v.opt)
			if w.mon != nil {
				waitMonitor(t, w)
			}
			steps := []struct{ name, script string }{
				{"add rule", "add rule inet fw svc tcp dport 443 accept"},
				{"insert rule", "insert rule inet fw svc ip saddr 10.0.0.0/8 drop"},
				{"anonymous set and vmap", "add rule inet fw input tcp dport { 8080, 8443 } counter accept\nadd rule inet fw input meta l4proto vmap { tcp : jump svc, udp : accept }"},
				{"replace rule", "replace rule inet fw svc handle HANDLE(inet fw svc tcp dport 80 counter packets 0 bytes 0 accept) tcp dport 81 drop"},
				{"delete rule", "delete rule inet fw input handle HANDLE(inet fw input tcp dport 22 accept)"},
				{"new base chain", "add chain inet fw out { type filter hook output priority mangle + 5; policy drop; }\nadd rule inet fw out oifname \"d0\" accept"},
				{"netdev chain", "add table netdev edge\nadd chain netdev edge in { type filter hook ingress device \"d0\" priority -500; policy accept; }\nadd rule netdev edge in ip saddr 192.0.2.1 drop"},
				{"policy change", "add chain inet fw out { policy accept; }"},
				{"rename chain", "rename chain inet fw out out2"},
				{"hundred rules", rsManyRules("inet fw svc", 100)},
				{"flush chain", "flush chain inet fw svc"},
				{"delete chain", "delete chain ip nat pre"},
				{"delete and recreate table", "delete table inet fw\n" + watchBase},
				{"delete table", "delete table netdev edge"},
			}
			for _, s := range steps {
				start := time.Now()
				rsNft(t, ns, rsHandles(t, w.Ruleset(), s.script))
				if err := w.Sync(5 * time.Second); err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				t.Logf("%s: %v, %+v", s.name, time.Since(start), w.Stats())
				t.Run(strings.ReplaceAll(s.name, " ", "-"), func(t *testing.T) { rsCompareFresh(t, w.Ruleset(), ns) })
			}
			st := w.Stats()
			t.Logf("%+v", st)
			if st.Lost != 0 || st.FullReloads != 0 || st.Errors != 0 {
				t.Errorf("stats: %+v", st)
			}
			if v.opt.NoMonitor && st.MonitorRules != 0 || !v.opt.NoMonitor && st.ChainReloads != 0 {
				t.Errorf("new rules took the wrong path: %+v", st)
			}
		})
	}
}

// rsManyRules adds n rules to a chain in one transaction.
func rsManyRules(chain string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "add rule %s tcp dport %d ip saddr 10.1.%d.%d accept\n", chain, 10000+i, i/256, i%256)
	}
	return b.String()
}

// rsHandles replaces each HANDLE(family table chain text) in a script by
// the handle of that rule.
func rsHandles(t testing.TB, rs *Ruleset, script string) string {
	t.Helper()
	for {
		i := strings.Index(script, "HANDLE(")
		if i < 0 {
			return script
		}
		j := strings.Index(script[i:], ")") + i
		f := strings.SplitN(script[i+len("HANDLE("):j], " ", 4)
		var h uint64
		for _, r := range rs.ChainRules(f[0], f[1], f[2]) {
			if r.Text == f[3] {
				h = r.Handle
			}
		}
		if h == 0 {
			t.Fatalf("no rule %q in %v", f[3], rs.ChainRules(f[0], f[1], f[2]))
		}
		script = script[:i] + fmt.Sprint(h) + script[j+1:]
	}
}

// TestRulesetWatchReloadsAfterLoss overruns a small change socket with a
// 20,000-rule transaction: the watch must notice (ENOBUFS) and load the
// whole ruleset once, not apply a partial batch.
func TestRulesetWatchReloadsAfterLoss(t *testing.T) {
	netns.RequireRoot(t)
	if testing.Short() {
		t.Skip("loads 20,000 rules")
	}
	ns := netns.New(t, "hxtrw")
	w := watchNamespace(t, ns, WatchOptions{BufBytes: 4096, NoMonitor: true})
	rsNft(t, ns, scaleRuleset(scaleChains, scaleRules))
	if err := w.Sync(time.Minute); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Lost == 0 || st.FullReloads == 0 {
		t.Fatalf("no loss seen with a 4 KiB buffer: %+v", st)
	}
	rsCompareFresh(t, w.Ruleset(), ns)
	t.Logf("%+v", st)
}
