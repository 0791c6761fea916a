package nflog

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/fixtures/netns"
)

// BenchmarkRulesetScale compares, on the 20,000-rule ruleset of
// TestRulesetWatchScale (500 chains, 2,500 anonymous sets), a full load
// with bringing the watched ruleset up to date after a one-rule change.
//
// ns/op of the change benchmarks is the whole round: the nft command
// that makes the change, and the wait (Sync) until the watch has applied
// it; apply-µs/op is the watch's own share (Stats.ApplyTime), from the
// end of the notifications to the applied ruleset. The chain-reload
// variant is the fallback without nft monitor, which lists the chain
// again with nft (and so fetches every set of the table).
func BenchmarkRulesetScale(b *testing.B) {
	netns.RequireRoot(b)
	ns := netns.New(b, "hxtscale")
	rsNft(b, ns, scaleRuleset(scaleChains, scaleRules))
	nsPath := "/run/netns/" + ns
	b.Run("full-load", func(b *testing.B) {
		for b.Loop() {
			if _, err := LoadRuleset(nsPath); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse-only", func(b *testing.B) {
		text := rsNetnsOutput(b, ns, "nft", "-a", "list", "ruleset")
		for b.Loop() {
			if _, err := ParseRuleset(text); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, v := range []struct {
		name string
		opt  WatchOptions
	}{{"monitor", WatchOptions{}}, {"chain-reload", WatchOptions{NoMonitor: true}}} {
		b.Run(v.name, func(b *testing.B) {
			w := watchNamespace(b, ns, v.opt)
			if w.mon != nil {
				waitMonitor(b, w)
			}
			b.Run("add-rule", func(b *testing.B) {
				benchChange(b, w, func(i int) string {
					return fmt.Sprintf("add rule inet scale c250 udp dport { %d, %d } counter drop\n", 10000+i, 20000+i)
				})
			})
			b.Run("delete-rule", func(b *testing.B) {
				// Rules to delete, added before the clock starts.
				var add strings.Builder
				for i := 0; i < b.N; i++ {
					fmt.Fprintf(&add, "add rule inet scale c251 udp dport %d drop\n", 40000+i%20000)
				}
				rsNft(b, ns, add.String())
				if err := w.Sync(time.Minute); err != nil {
					b.Fatal(err)
				}
				rules := w.Ruleset().ChainRules("inet", "scale", "c251")[scaleRules:]
				benchChange(b, w, func(i int) string {
					return fmt.Sprintf("delete rule inet scale c251 handle %d\n", rules[i].Handle)
				})
			})
			b.Run("add-100-rules", func(b *testing.B) {
				benchChange(b, w, func(i int) string {
					var s strings.Builder
					for j := 0; j < 100; j++ {
						fmt.Fprintf(&s, "add rule inet scale c252 ip saddr 10.%d.%d.%d tcp dport 443 accept\n", i%250, j, i/250%250)
					}
					return s.String()
				})
			})
			b.Run("nft-command-alone", func(b *testing.B) {
				// The same one-rule change without waiting for the watch.
				for i := 0; b.Loop(); i++ {
					rsNft(b, ns, fmt.Sprintf("add rule inet scale c253 udp dport { %d, %d } counter drop\n", 10000+i%20000, 30000+i%20000))
				}
			})
		})
	}
}

// benchChange makes change(i) with nft and waits until the watch has
// applied it, b.N times (a plain loop, so that callers can prepare b.N
// rules), and reports the watch's apply time per change.
func benchChange(b *testing.B, w *RulesetWatch, change func(i int) string) {
	ns := strings.TrimPrefix(w.nsPath, "/run/netns/")
	before := w.Stats()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rsNft(b, ns, change(i))
		if err := w.Sync(time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	after := w.Stats()
	n := float64(after.Generations - before.Generations)
	if n == 0 {
		b.Fatal("no generation applied")
	}
	b.ReportMetric(float64((after.ApplyTime-before.ApplyTime).Microseconds())/n, "apply-µs/op")
	b.ReportMetric(float64(after.ChainReloads-before.ChainReloads)/n, "chain-reloads/op")
	if after.FullReloads != before.FullReloads || after.Errors != before.Errors {
		b.Errorf("full reloads or errors: %+v", after)
	}
}

// BenchmarkRulesetApply measures Apply itself on the parsed 20,000-rule
// ruleset, beside parsing the whole listing: a one-rule change costs
// time in proportion to the change.
func BenchmarkRulesetApply(b *testing.B) {
	// The listing nft prints of the scale ruleset, with handles.
	var listing strings.Builder
	handle := uint64(1)
	for _, line := range strings.Split(scaleRuleset(scaleChains, scaleRules), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "table ") || strings.HasPrefix(trimmed, "chain ") ||
			(trimmed != "" && trimmed != "}" && !strings.HasPrefix(trimmed, "type ")) {
			line += fmt.Sprintf(" # handle %d", handle)
			handle++
		}
		listing.WriteString(line + "\n")
	}
	text := listing.String()
	rs, err := ParseRuleset(text)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("parse-20k", func(b *testing.B) {
		for b.Loop() {
			if _, err := ParseRuleset(text); err != nil {
				b.Fatal(err)
			}
		}
	})
	ruleText := func(RulesetChange) (string, bool) { return "udp dport 9999 drop", true }
	b.Run("add-and-delete-one-rule", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			h := handle + uint64(i)
			rs.Apply(ChangeBatch{Changes: []RulesetChange{{Op: ChangeNewRule, Family: "inet", Table: "scale", Chain: "c250", Handle: h, Append: true}}}, ruleText)
			rs.Apply(ChangeBatch{Changes: []RulesetChange{{Op: ChangeDelRule, Family: "inet", Table: "scale", Chain: "c250", Handle: h}}}, ruleText)
		}
	})
}
