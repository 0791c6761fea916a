package nflog

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/fixtures/netns"
)

// Size of the generated ruleset of the scale test and benchmark: 20,000
// rules across 500 chains.
const (
	scaleChains = 500
	scaleRules  = 40 // per chain
)

// scaleRuleset generates `table inet scale`: a base chain "entry" on the
// input hook whose rule k jumps to chain ck for UDP from source port
// 7000+k, and regular chains c1..c499 of 40 rules each. In every chain,
// rule j matches UDP to port 3000+j when j%8 is 1 (through an anonymous
// set: one rule in eight, 2,500 sets), 3 (sets a mark and goes on) or 5
// (drops); the other rules match nothing the test sends (filler in the
// shapes kube-proxy and Docker write: address and port matches,
// counters, comments, jumps, conntrack). A separate table marks
// 10.84.0.1's packets for tracing.
func scaleRuleset(chains, rules int) string {
	var b strings.Builder
	b.WriteString("table inet scalemark {\n\tchain pre {\n\t\ttype filter hook prerouting priority -300;\n\t\tip saddr 10.84.0.1 meta nftrace set 1\n\t}\n}\n")
	b.WriteString("table inet scale {\n")
	for i := chains - 1; i >= 0; i-- { // jump targets first
		name := fmt.Sprintf("c%d", i)
		if i == 0 {
			name = "entry"
		}
		fmt.Fprintf(&b, "\tchain %s {\n", name)
		if i == 0 {
			b.WriteString("\t\ttype filter hook input priority filter; policy accept;\n")
		}
		for j := 0; j < rules; j++ {
			fmt.Fprintf(&b, "\t\t%s\n", scaleRule(i, j, chains, rules))
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func scaleRule(i, j, chains, rules int) string {
	if i == 0 {
		return fmt.Sprintf("ip saddr 10.84.0.1 udp sport %d jump c%d", 7000+j+1, j+1)
	}
	switch j % 8 {
	case 1:
		return fmt.Sprintf(`udp dport { 53, 123, %d } drop comment "c%d rule %d"`, 3000+j, i, j)
	case 3:
		return fmt.Sprintf("ip daddr 10.84.0.2 udp dport %d meta mark set 0x%08x", 3000+j, i*64+j)
	case 5:
		return fmt.Sprintf("udp dport %d drop", 3000+j)
	case 0:
		return fmt.Sprintf("ip saddr 10.%d.%d.0/24 tcp dport %d counter packets 0 bytes 0 accept", i%256, j, 1000+j)
	case 2:
		if i < chains-rules/8-1 {
			return fmt.Sprintf(`iifname "veth%d" ip daddr 192.168.%d.%d jump c%d`, j, i%256, j, chains-1-j/8)
		}
		return "ip protocol gre return"
	case 4:
		return "meta l4proto tcp ct state established,related counter packets 0 bytes 0 accept"
	case 6:
		return fmt.Sprintf("ip6 saddr 2001:db8:%x::/48 tcp dport %d reject", i, 1000+j)
	}
	return fmt.Sprintf("tcp flags syn / fin,syn,rst,ack tcp option maxseg size set %d", 1200+j)
}

// scaleSend sends one UDP datagram from 10.84.0.1:sport to
// 10.84.0.2:dport.
func scaleSend(t *testing.T, topo traceTopo, sport, dport int) {
	t.Helper()
	netns.In(t, topo.send, func() error {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 84, 0, 1), Port: sport}, &net.UDPAddr{IP: net.IPv4(10, 84, 0, 2), Port: dport})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hooktrace"))
		return err
	})
}

var counterValues = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// TestRulesetWatchScale traces packets through a 20,000-rule ruleset while
// it changes, and checks that every traced rule verdict resolves, through
// the watched ruleset, to the text `nft -a list ruleset` shows for that
// handle at that moment. Counter values are left out of the comparison:
// they move with every packet, in any cache.
func TestRulesetWatchScale(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 20,000 rules")
	}
	start := time.Now()
	topo := newTraceTopo(t, scaleRuleset(scaleChains, scaleRules))
	t.Logf("generated and loaded %d rules in %v", scaleChains*scaleRules, time.Since(start))
	c := collectTraces(t, topo, 64<<20)
	w := watchNamespace(t, topo.recv, WatchOptions{})
	waitMonitor(t, w)
	t.Logf("watch ready after %v", time.Since(start))
	if n := len(w.Ruleset().Chains()); n != scaleChains+1 {
		t.Fatalf("%d chains loaded", n)
	}

	type probe struct{ chain, rule int }
	seen := 0
	phase := func(name string, probes []probe, script string) {
		t.Helper()
		if script != "" {
			rsNft(t, topo.recv, rsHandles(t, w.Ruleset(), script))
		}
		// No Sync here: the packets race the change notifications, as
		// they do in hooktrace.
		for _, p := range probes {
			scaleSend(t, topo, 7000+p.chain, 3000+p.rule)
		}
		ruleVerdicts := func() int {
			n := 0
			for _, tr := range c.traces()[seen:] {
				if tr.Handle != 0 && tr.Table == "scale" {
					n++
				}
			}
			return n
		}
		traceSettle(ruleVerdicts, 2*len(probes), 2*time.Second)
		time.Sleep(50 * time.Millisecond) // the policy events that follow
		got := c.traces()[seen:]
		seen += len(got)
		listing, err := ParseRuleset(rsNetnsOutput(t, topo.recv, "nft", "-a", "list", "ruleset"))
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, tr := range got {
			if tr.Handle == 0 || tr.Table != "scale" {
				continue
			}
			fam := FamilyName(tr.Family)
			want, ok := listing.Rule(fam, tr.Table, tr.Chain, tr.Handle)
			if !ok {
				t.Errorf("%s: nft does not list %s %s handle %d", name, tr.Table, tr.Chain, tr.Handle)
				continue
			}
			text, ok := w.Ruleset().Rule(fam, tr.Table, tr.Chain, tr.Handle)
			if !ok { // the notification may trail the packet: catch up
				if err := w.Sync(5 * time.Second); err != nil {
					t.Fatal(err)
				}
				text, ok = w.Ruleset().Rule(fam, tr.Table, tr.Chain, tr.Handle)
			}
			if counterValues.ReplaceAllString(text, "counter") != counterValues.ReplaceAllString(want, "counter") || !ok {
				t.Errorf("%s: %s %s handle %d (verdict %s):\n got %q\nwant %q", name, tr.Table, tr.Chain, tr.Handle, tr.Verdict, text, want)
			}
			checked++
		}
		if checked != 2*len(probes) {
			for _, tr := range got {
				t.Logf("%s: trace %08x %s %s %d %s", name, tr.ID, tr.Table, tr.Chain, tr.Handle, tr.Verdict)
			}
			t.Errorf("%s: %d rule verdicts traced, want %d", name, checked, 2*len(probes))
		}
		t.Logf("%s: %d rule verdicts checked; %+v", name, checked, w.Stats())
	}

	phase("loaded rules", []probe{{1, 1}, {1, 5}, {7, 3}, {20, 9}, {39, 13}, {33, 37}}, "")
	phase("rule inserted while tracing", []probe{{7, 999}, {7, 5}},
		`insert rule inet scale c7 udp dport 3999 drop comment "inserted while tracing"`)
	var newChain strings.Builder
	newChain.WriteString("add chain inet scale c_new\n")
	for i := 0; i < 100; i++ { // one generation: one batch
		fmt.Fprintf(&newChain, "add rule inet scale c_new udp dport %d ip daddr 10.84.0.2 drop\n", 3000+i)
	}
	newChain.WriteString("add rule inet scale entry ip saddr 10.84.0.1 udp sport 7100 jump c_new\n")
	phase("new chain of 100 rules and a jump to it", []probe{{100, 1}, {100, 50}, {100, 99}}, newChain.String())
	phase("rule replaced and rule deleted in a changed chain", []probe{{20, 5}, {20, 1}},
		"replace rule inet scale c20 handle HANDLE(inet scale c20 udp dport 3005 drop) udp dport 3005 ip ttl != 0 counter drop\n"+
			"delete rule inet scale c20 handle HANDLE(inet scale c20 udp dport { 53, 123, 3001 } drop comment \"c20 rule 1\")\n"+
			"add rule inet scale c20 udp dport { 3001, 3002 } accept\n")
	phase("chain flushed and refilled", []probe{{39, 1}, {39, 2}},
		"flush chain inet scale c39\nadd rule inet scale c39 udp dport vmap { 3001 : drop, 3002 : accept }\n")
	phase("other chains deleted", []probe{{33, 37}},
		"flush chain inet scale c100\ndelete chain inet scale c100\n")
	st := w.Stats()
	if st.ChainReloads != 0 || st.FullReloads != 0 || st.Errors != 0 {
		t.Errorf("the watch fell back to reloads: %+v", st)
	}
}
