package nflog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hooktrace/hooktrace/fixtures/netns"
)

// Size of the generated ruleset: 20,000 rules across 500 chains.
const (
	rsBenchChains = 500
	rsBenchRules  = 40 // per chain
)

// rsBenchRuleset generates a listing as `nft -a list ruleset` prints it,
// which `nft -f` also loads: five base chains, and regular chains that
// jump only to the last ten, which jump nowhere (the kernel limits jump
// depth). With anonSets, one rule in five matches an anonymous set
// ("udp dport { 53, 123, 2001 }"), which nf_tables keeps as a set of the
// table.
func rsBenchRuleset(chains, rules int, anonSets bool) string {
	var b strings.Builder
	hooks := []string{"prerouting priority raw", "input priority filter", "forward priority filter - 10", "output priority mangle + 5", "postrouting priority srcnat"}
	handle := chains + 2
	b.WriteString("table inet bench { # handle 1\n")
	for i := 0; i < chains; i++ {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "\tchain c%d { # handle %d\n", i, i+2)
		if i < len(hooks) {
			fmt.Fprintf(&b, "\t\ttype filter hook %s; policy accept;\n", hooks[i])
		}
		for j := 0; j < rules; j++ {
			fmt.Fprintf(&b, "\t\t%s # handle %d\n", rsBenchRule(i, j, chains, anonSets), handle)
			handle++
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func rsBenchRule(i, j, chains int, anonSets bool) string {
	switch j % 5 {
	case 0:
		return fmt.Sprintf("ip saddr 10.%d.%d.0/24 tcp dport %d counter packets 0 bytes 0 accept", i%256, j, 1000+j)
	case 1:
		if !anonSets {
			return fmt.Sprintf(`udp dport %d counter packets 0 bytes 0 drop comment "rule %d of c%d"`, 2000+j, j, i)
		}
		return fmt.Sprintf(`udp dport { 53, 123, %d } counter packets 0 bytes 0 drop comment "rule %d of c%d"`, 2000+j, j, i)
	case 2:
		if i < chains-10 {
			return fmt.Sprintf(`iifname "veth%d" ip daddr 192.168.%d.%d jump c%d`, j, i%256, j, chains-10+j%10)
		}
		return "return"
	case 3:
		return "ct state established,related accept"
	}
	return fmt.Sprintf("tcp flags syn / fin,syn,rst,ack meta mark set 0x%08x", i*64+j)
}

func BenchmarkParseRuleset(b *testing.B) {
	text := rsBenchRuleset(rsBenchChains, rsBenchRules, true)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRuleset(text); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rsBenchChains*rsBenchRules), "ns/rule")
}

// BenchmarkReloadChain loads the generated ruleset into a namespace,
// then measures ReloadChain of one 40-rule chain after a one-rule change,
// beside LoadRuleset of the whole ruleset. nft 1.0.6 fetches every set of
// the chain's table (and each set's elements, one request per set) to
// list a single chain, so the anonymous sets of rules elsewhere in the
// table cost time too: hence the two variants.
func BenchmarkReloadChain(b *testing.B) {
	for _, v := range []struct {
		name     string
		anonSets bool
	}{{"no-sets", false}, {"anon-sets", true}} {
		b.Run(v.name, func(b *testing.B) { rsBenchReload(b, v.anonSets) })
	}
}

func rsBenchReload(b *testing.B, anonSets bool) {
	netns.RequireRoot(b)
	ns := netns.New(b, "hxtbench")
	nsPath := "/run/netns/" + ns
	path := filepath.Join(b.TempDir(), "bench.nft")
	if err := os.WriteFile(path, []byte(rsBenchRuleset(rsBenchChains, rsBenchRules, anonSets)), 0o644); err != nil {
		b.Fatal(err)
	}
	netns.Run(b, "ip", "netns", "exec", ns, "nft", "-f", path)
	rs, err := LoadRuleset(nsPath)
	if err != nil {
		b.Fatal(err)
	}
	const chain = "c250"
	handle := rs.ChainRules("inet", "bench", chain)[0].Handle
	b.Run("chain", func(b *testing.B) {
		port := 0
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			port++
			netns.Run(b, "ip", "netns", "exec", ns, "nft", "replace", "rule", "inet", "bench", chain,
				"handle", fmt.Sprint(handle), "tcp", "dport", fmt.Sprint(port), "drop")
			b.StartTimer()
			if err := rs.ReloadChain(nsPath, "inet", "bench", chain); err != nil {
				b.Fatal(err)
			}
		}
		if got, _ := rs.Rule("inet", "bench", chain, handle); got != fmt.Sprintf("tcp dport %d drop", port) {
			b.Fatalf("after the reload: %q", got)
		}
	})
	b.Run("whole-ruleset", func(b *testing.B) {
		for b.Loop() {
			if _, err := LoadRuleset(nsPath); err != nil {
				b.Fatal(err)
			}
		}
	})
}
