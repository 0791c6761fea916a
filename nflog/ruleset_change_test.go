package nflog

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
)

// nftMsg builds an nf_tables notification as the kernel sends it.
func nftMsg(t testing.TB, msgType int, flags netlink.HeaderFlags, family uint8, attrs func(ae *netlink.AttributeEncoder)) netlink.Message {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	attrs(ae)
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(nftSubsys<<8 | msgType), Flags: flags},
		Data:   append([]byte{family, 0, 0, 0}, b...),
	}
}

func ruleMsg(t testing.TB, op int, flags netlink.HeaderFlags, table, chain string, handle, pos uint64) netlink.Message {
	return nftMsg(t, op, flags, 1, func(ae *netlink.AttributeEncoder) {
		ae.String(nftaRuleTable, table)
		ae.String(nftaRuleChain, chain)
		ae.Uint64(nftaRuleHandle, handle)
		if pos != 0 {
			ae.Uint64(nftaRulePosition, pos)
		}
		ae.Bytes(4, []byte{0, 0, 0, 0}) // NFTA_RULE_EXPRESSIONS, not decoded
	})
}

func genMsg(t testing.TB, gen uint32) netlink.Message {
	return nftMsg(t, nftMsgNewGen, 0, 0, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(nftaGenID, gen)
		ae.Uint32(2, 4242)  // NFTA_GEN_PROC_PID
		ae.String(3, "nft") // NFTA_GEN_PROC_NAME
	})
}

func TestParseRulesetChange(t *testing.T) {
	tests := []struct {
		name string
		msg  netlink.Message
		want RulesetChange
	}{
		{"new table", nftMsg(t, nftMsgNewTable, netlink.Create, 2, func(ae *netlink.AttributeEncoder) {
			ae.String(nftaTableName, "filter")
			ae.Uint32(2, 0) // NFTA_TABLE_FLAGS
		}), RulesetChange{Op: ChangeNewTable, Family: "ip", Table: "filter"}},
		{"delete table", nftMsg(t, nftMsgDelTable, 0, 10, func(ae *netlink.AttributeEncoder) {
			ae.String(nftaTableName, "filter")
		}), RulesetChange{Op: ChangeDelTable, Family: "ip6", Table: "filter"}},
		{"destroy table", nftMsg(t, nftMsgDestroyTable, 0, 10, func(ae *netlink.AttributeEncoder) {
			ae.String(nftaTableName, "filter")
		}), RulesetChange{Op: ChangeDelTable, Family: "ip6", Table: "filter"}},
		{"base chain", nftMsg(t, nftMsgNewChain, netlink.Create, 1, func(ae *netlink.AttributeEncoder) {
			ae.String(nftaChainTable, "fw")
			ae.Uint64(nftaChainHandle, 7)
			ae.String(nftaChainName, "out")
			ae.Nested(nftaChainHook, func(nae *netlink.AttributeEncoder) error {
				nae.Uint32(nftaHookHooknum, 3)
				nae.Uint32(nftaHookPriority, uint32(0xffffff6f)) // -145: mangle + 5
				return nil
			})
			ae.Uint32(nftaChainPolicy, 0)
			ae.String(nftaChainType, "filter")
		}), RulesetChange{Op: ChangeNewChain, Family: "inet", Table: "fw", Chain: "out", Handle: 7,
			Info: ChainInfo{Family: "inet", Table: "fw", Name: "out", Handle: 7, Hook: "output", Priority: -145, Type: "filter", Policy: "drop", Base: true}}},
		{"netdev chain", nftMsg(t, nftMsgNewChain, netlink.Create, 5, func(ae *netlink.AttributeEncoder) {
			ae.String(nftaChainTable, "edge")
			ae.Uint64(nftaChainHandle, 1)
			ae.String(nftaChainName, "in")
			ae.Nested(nftaChainHook, func(nae *netlink.AttributeEncoder) error {
				nae.Uint32(nftaHookHooknum, 0)
				nae.Uint32(nftaHookPriority, uint32(0xfffffe0c)) // -500
				nae.String(nftaHookDev, "d0")
				nae.Nested(nftaHookDevs, func(dae *netlink.AttributeEncoder) error {
					dae.String(nftaDeviceName, "d0")
					dae.String(nftaDeviceName, "d1")
					return nil
				})
				return nil
			})
			ae.Uint32(nftaChainPolicy, 1)
			ae.String(nftaChainType, "filter")
		}), RulesetChange{Op: ChangeNewChain, Family: "netdev", Table: "edge", Chain: "in", Handle: 1,
			Info: ChainInfo{Family: "netdev", Table: "edge", Name: "in", Handle: 1, Hook: "ingress", Priority: -500, Type: "filter", Policy: "accept", Devices: []string{"d0", "d1"}, Base: true}}},
		{"regular chain", nftMsg(t, nftMsgNewChain, netlink.Create, 1, func(ae *netlink.AttributeEncoder) {
			ae.String(nftaChainTable, "fw")
			ae.Uint64(nftaChainHandle, 3)
			ae.String(nftaChainName, "svc")
			ae.Uint32(6, 0) // NFTA_CHAIN_USE
		}), RulesetChange{Op: ChangeNewChain, Family: "inet", Table: "fw", Chain: "svc", Handle: 3,
			Info: ChainInfo{Family: "inet", Table: "fw", Name: "svc", Handle: 3}}},
		{"delete chain", nftMsg(t, nftMsgDelChain, 0, 3, func(ae *netlink.AttributeEncoder) {
			ae.String(nftaChainTable, "a")
			ae.String(nftaChainName, "in")
		}), RulesetChange{Op: ChangeDelChain, Family: "arp", Table: "a", Chain: "in", Info: ChainInfo{Family: "arp", Table: "a", Name: "in"}}},
		{"add rule", ruleMsg(t, nftMsgNewRule, netlink.Create|netlink.Append, "fw", "svc", 12, 0),
			RulesetChange{Op: ChangeNewRule, Family: "inet", Table: "fw", Chain: "svc", Handle: 12, Append: true}},
		{"insert rule after", ruleMsg(t, nftMsgNewRule, netlink.Create, "fw", "svc", 13, 6),
			RulesetChange{Op: ChangeNewRule, Family: "inet", Table: "fw", Chain: "svc", Handle: 13, Position: 6}},
		{"delete rule", ruleMsg(t, nftMsgDelRule, 0, "fw", "svc", 12, 0),
			RulesetChange{Op: ChangeDelRule, Family: "inet", Table: "fw", Chain: "svc", Handle: 12}},
		{"destroy rule", ruleMsg(t, nftMsgDestroyRule, 0, "fw", "svc", 12, 0),
			RulesetChange{Op: ChangeDelRule, Family: "inet", Table: "fw", Chain: "svc", Handle: 12}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := ParseRulesetChange(tt.msg)
			if err != nil || !ok {
				t.Fatalf("ok %v, err %v", ok, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseRulesetChangeIgnoresAndRefuses(t *testing.T) {
	set := nftMsg(t, 9, 0, 1, func(ae *netlink.AttributeEncoder) { ae.String(1, "fw") }) // NFT_MSG_NEWSET
	trace := netlink.Message{Header: netlink.Header{Type: traceMsgType}, Data: []byte{1, 0, 0, 0}}
	other := netlink.Message{Header: netlink.Header{Type: 1<<8 | nftMsgNewRule}, Data: []byte{1, 0, 0, 0}} // conntrack subsystem
	for name, m := range map[string]netlink.Message{"set": set, "trace": trace, "other subsystem": other, "generation": genMsg(t, 3)} {
		if c, ok, err := ParseRulesetChange(m); ok || err != nil {
			t.Errorf("%s: %+v, %v, %v", name, c, ok, err)
		}
	}
	bad := map[string]netlink.Message{
		"short":         {Header: netlink.Header{Type: nftSubsys<<8 | nftMsgNewRule}, Data: []byte{1, 0}},
		"no table":      nftMsg(t, nftMsgNewTable, 0, 1, func(ae *netlink.AttributeEncoder) {}),
		"no chain":      nftMsg(t, nftMsgDelChain, 0, 1, func(ae *netlink.AttributeEncoder) { ae.String(nftaChainTable, "t") }),
		"no handle":     ruleMsg(t, nftMsgNewRule, 0, "t", "c", 0, 0),
		"bad attribute": {Header: netlink.Header{Type: nftSubsys<<8 | nftMsgNewRule}, Data: []byte{1, 0, 0, 0, 9, 0, 1, 0}},
		"short handle": nftMsg(t, nftMsgNewRule, 0, 1, func(ae *netlink.AttributeEncoder) {
			ae.String(nftaRuleTable, "t")
			ae.String(nftaRuleChain, "c")
			ae.Uint32(nftaRuleHandle, 5)
		}),
	}
	for name, m := range bad {
		if c, ok, err := ParseRulesetChange(m); err == nil {
			t.Errorf("%s: no error: %+v %v", name, c, ok)
		}
	}
	if _, err := ParseGeneration([]byte{0, 0, 0, 0}); err == nil {
		t.Error("a generation without NFTA_GEN_ID parsed")
	}
}

func TestChangeBatches(t *testing.T) {
	var cur ChangeBatch
	msgs := []netlink.Message{
		ruleMsg(t, nftMsgNewRule, netlink.Append, "fw", "svc", 12, 0),
		nftMsg(t, 9, 0, 1, func(ae *netlink.AttributeEncoder) { ae.String(1, "fw") }), // a set: not followed
		ruleMsg(t, nftMsgDelRule, 0, "fw", "svc", 4, 0),
		genMsg(t, 41),
		ruleMsg(t, nftMsgNewRule, 0, "fw", "svc", 0, 0), // malformed
		genMsg(t, 42),
	}
	var got []ChangeBatch
	malformed := 0
	for _, m := range msgs {
		b, done := addChangeMessage(&cur, m)
		if b.malformed {
			malformed++
		}
		if done {
			got = append(got, b.ChangeBatch)
		}
	}
	if len(got) != 2 || got[0].Gen != 41 || len(got[0].Changes) != 2 || got[0].Lost ||
		got[0].Changes[0].Op != ChangeNewRule || got[0].Changes[1].Op != ChangeDelRule {
		t.Fatalf("first batch: %+v", got)
	}
	if got[1].Gen != 42 || !got[1].Lost || malformed != 1 {
		t.Errorf("a batch with a malformed message is not marked lost: %+v, %d malformed", got[1], malformed)
	}
}

const applyBase = `table inet fw { # handle 1
	chain input { # handle 1
		type filter hook input priority filter; policy accept;
		tcp dport 22 accept # handle 3
		jump svc # handle 4
	}
	chain svc { # handle 2
		udp dport 53 accept # handle 5
		tcp dport 80 accept # handle 6
	}
}
table ip nat { # handle 2
	chain pre { # handle 1
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 8080 dnat to 10.0.0.1 # handle 2
	}
}
`

// rulesText prints a chain's rules as "handle:text" for comparisons.
func rulesText(rs *Ruleset, family, table, chain string) string {
	var parts []string
	for _, r := range rs.ChainRules(family, table, chain) {
		parts = append(parts, fmt.Sprintf("%d:%s", r.Handle, r.Text))
	}
	return strings.Join(parts, " | ")
}

func TestRulesetApply(t *testing.T) {
	newRule := func(chain string, h, pos uint64, appended bool) RulesetChange {
		return RulesetChange{Op: ChangeNewRule, Family: "inet", Table: "fw", Chain: chain, Handle: h, Position: pos, Append: appended}
	}
	delRule := func(chain string, h uint64) RulesetChange {
		return RulesetChange{Op: ChangeDelRule, Family: "inet", Table: "fw", Chain: chain, Handle: h}
	}
	texts := map[uint64]string{7: "tcp dport 443 accept", 8: "ip saddr 10.0.0.0/8 drop", 9: "tcp dport 81 drop", 6: "tcp dport 8080 accept", 10: "accept"}
	text := func(c RulesetChange) (string, bool) { s, ok := texts[c.Handle]; return s, ok }
	tests := []struct {
		name    string
		changes []RulesetChange
		chain   string
		want    string
		reload  []ChainRef
	}{
		{"append", []RulesetChange{newRule("svc", 7, 0, true)}, "svc", "5:udp dport 53 accept | 6:tcp dport 80 accept | 7:tcp dport 443 accept", nil},
		{"insert first", []RulesetChange{newRule("svc", 8, 0, false)}, "svc", "8:ip saddr 10.0.0.0/8 drop | 5:udp dport 53 accept | 6:tcp dport 80 accept", nil},
		{"after a position", []RulesetChange{newRule("svc", 7, 5, false)}, "svc", "5:udp dport 53 accept | 7:tcp dport 443 accept | 6:tcp dport 80 accept", nil},
		{"two in a row", []RulesetChange{newRule("svc", 7, 5, true), newRule("svc", 9, 7, true)}, "svc", "5:udp dport 53 accept | 7:tcp dport 443 accept | 9:tcp dport 81 drop | 6:tcp dport 80 accept", nil},
		{"delete", []RulesetChange{delRule("svc", 5)}, "svc", "6:tcp dport 80 accept", nil},
		{"delete twice", []RulesetChange{delRule("svc", 5), delRule("svc", 5), delRule("svc", 99)}, "svc", "6:tcp dport 80 accept", nil},
		{"replace", []RulesetChange{delRule("svc", 6), newRule("svc", 6, 5, true)}, "svc", "5:udp dport 53 accept | 6:tcp dport 8080 accept", nil},
		{"delete then add", []RulesetChange{delRule("svc", 5), delRule("svc", 6), newRule("svc", 10, 0, true)}, "svc", "10:accept", nil},
		{"again", []RulesetChange{newRule("svc", 7, 0, true), newRule("svc", 7, 0, true)}, "svc", "5:udp dport 53 accept | 6:tcp dport 80 accept | 7:tcp dport 443 accept", nil},
		{"no text", []RulesetChange{newRule("svc", 11, 0, true), newRule("svc", 12, 0, true), newRule("input", 13, 0, true)}, "svc", "5:udp dport 53 accept | 6:tcp dport 80 accept",
			[]ChainRef{{"inet", "fw", "svc"}, {"inet", "fw", "input"}}},
		{"unknown chain", []RulesetChange{newRule("later", 7, 0, true)}, "later", "", []ChainRef{{"inet", "fw", "later"}}},
		{"delete chain", []RulesetChange{{Op: ChangeDelChain, Family: "inet", Table: "fw", Chain: "svc"}}, "svc", "", nil},
		{"delete table", []RulesetChange{{Op: ChangeDelTable, Family: "inet", Table: "fw"}}, "input", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := ParseRuleset(applyBase)
			if err != nil {
				t.Fatal(err)
			}
			reload := rs.Apply(ChangeBatch{Gen: 2, Changes: tt.changes}, text)
			if got := rulesText(rs, "inet", "fw", tt.chain); got != tt.want {
				t.Errorf("rules:\n got %s\nwant %s", got, tt.want)
			}
			if !reflect.DeepEqual(reload, tt.reload) {
				t.Errorf("reload %v, want %v", reload, tt.reload)
			}
			if got := rulesText(rs, "ip", "nat", "pre"); got != "2:tcp dport 8080 dnat to 10.0.0.1" {
				t.Errorf("another table changed: %s", got)
			}
			for _, r := range rs.ChainRules("inet", "fw", tt.chain) {
				if got, ok := rs.Rule("inet", "fw", tt.chain, r.Handle); !ok || got != r.Text {
					t.Errorf("Rule(%d) = %q, %v; ChainRules says %q", r.Handle, got, ok, r.Text)
				}
			}
		})
	}
}

func TestRulesetApplyChains(t *testing.T) {
	rs, err := ParseRuleset(applyBase)
	if err != nil {
		t.Fatal(err)
	}
	out := ChainInfo{Family: "inet", Table: "fw", Name: "out", Handle: 7, Hook: "output", Priority: -145, Type: "filter", Policy: "drop", Base: true}
	rs.Apply(ChangeBatch{Changes: []RulesetChange{
		{Op: ChangeNewTable, Family: "netdev", Table: "edge"},
		{Op: ChangeNewChain, Family: "inet", Table: "fw", Chain: "out", Handle: 7, Info: out},
	}}, nil)
	if got, ok := rs.Chain("inet", "fw", "out"); !ok || !reflect.DeepEqual(got, out) {
		t.Errorf("new chain: %+v, %v", got, ok)
	}
	// A policy change keeps the rules; a rename (same handle, new name)
	// moves them.
	input := ChainInfo{Family: "inet", Table: "fw", Name: "input", Handle: 1, Hook: "input", Type: "filter", Policy: "drop", Base: true}
	svc2 := ChainInfo{Family: "inet", Table: "fw", Name: "svc2", Handle: 2}
	rs.Apply(ChangeBatch{Changes: []RulesetChange{
		{Op: ChangeNewChain, Family: "inet", Table: "fw", Chain: "input", Handle: 1, Info: input},
		{Op: ChangeNewChain, Family: "inet", Table: "fw", Chain: "svc2", Handle: 2, Info: svc2},
	}}, nil)
	if got, _ := rs.Chain("inet", "fw", "input"); got.Policy != "drop" || rulesText(rs, "inet", "fw", "input") != "3:tcp dport 22 accept | 4:jump svc" {
		t.Errorf("policy change: %+v, %s", got, rulesText(rs, "inet", "fw", "input"))
	}
	if _, ok := rs.Chain("inet", "fw", "svc"); ok {
		t.Error("renamed chain still known by its old name")
	}
	if got := rulesText(rs, "inet", "fw", "svc2"); got != "5:udp dport 53 accept | 6:tcp dport 80 accept" {
		t.Errorf("renamed chain's rules: %s", got)
	}
	var names []string
	for _, c := range rs.Chains() {
		names = append(names, c.Family+" "+c.Table+" "+c.Name)
	}
	if got := strings.Join(names, ", "); got != "inet fw input, inet fw out, inet fw svc2, ip nat pre" {
		t.Errorf("chains: %s", got)
	}
	if n := len(rs.Apply(ChangeBatch{Lost: true, Changes: []RulesetChange{{Op: ChangeDelTable, Family: "inet", Table: "fw"}}}, nil)); n != 0 || len(rs.ChainRules("inet", "fw", "input")) == 0 {
		t.Error("a lost batch was applied")
	}
}

func TestMonitorLines(t *testing.T) {
	for line, want := range map[string]string{
		"add rule inet bench c250 udp dport { 7, 9, 11 } counter packets 0 bytes 0 accept # handle 24502": "inet/bench/24502 c250: udp dport { 7, 9, 11 } counter packets 0 bytes 0 accept",
		"insert rule ip filter INPUT ip saddr 10.0.0.0/8 drop # handle 3":                                 "ip/filter/3 INPUT: ip saddr 10.0.0.0/8 drop",
		"add rule inet fw input handle 4 tcp dport { 8080, 8443 } accept # handle 11":                     "inet/fw/11 input: tcp dport { 8080, 8443 } accept",
		`add rule inet "my table" "counter" accept # handle 9`:                                            "inet/my table/9 counter: accept",
		`add rule inet t c meta mark set 0x1 comment "a # handle 3" # handle 12`:                          `inet/t/12 c: meta mark set 0x1 comment "a # handle 3"`,
		"add chain inet t c":                   "",
		"delete rule inet t c handle 2":        "",
		"add rule inet t c accept":             "",
		`add rule inet "t c accept # handle 2`: "",
	} {
		k, v, ok := monitorRuleLine(line)
		got := ""
		if ok {
			got = fmt.Sprintf("%s/%s/%d %s: %s", k.family, k.table, k.handle, v.chain, v.text)
		}
		if got != want {
			t.Errorf("%q:\n got %q\nwant %q", line, got, want)
		}
	}
	if _, _, ok := monitorRuleLine("# new generation 15 by process 11041 (nft)"); ok {
		t.Error("a generation line read as a rule")
	}
}

func TestNftMonitorTexts(t *testing.T) {
	m := newNftMonitor()
	newRule := func(h uint64) RulesetChange {
		return RulesetChange{Op: ChangeNewRule, Family: "inet", Table: "fw", Chain: "svc", Handle: h}
	}
	keys := []monitorKey{{"inet", "fw", 7}, {"inet", "fw", 8}}
	if m.waitRules(5, keys, time.Second) {
		t.Fatal("a monitor that has not subscribed has texts")
	}
	m.setSince(4)
	if m.waitRules(4, keys, time.Second) {
		t.Fatal("a generation from before the subscription has texts")
	}
	go func() {
		m.line("add rule inet fw svc tcp dport 443 accept # handle 7")
		m.line("add rule inet fw other accept # handle 8")
	}()
	if !m.waitRules(5, keys, 5*time.Second) {
		t.Fatal("the rules of generation 5 never came")
	}
	if s, ok := m.take(newRule(7)); !ok || s != "tcp dport 443 accept" {
		t.Errorf("take 7: %q, %v", s, ok)
	}
	if _, ok := m.take(newRule(7)); ok {
		t.Error("a text was taken twice")
	}
	if _, ok := m.take(newRule(8)); ok {
		t.Error("a text of another chain was taken")
	}
	// A rule nft has not printed: waitRules gives up at its timeout.
	start := time.Now()
	if m.waitRules(6, []monitorKey{{"inet", "fw", 9}}, 50*time.Millisecond) || time.Since(start) < 50*time.Millisecond {
		t.Error("a rule nft did not print is there")
	}
	m.line("add rule inet fw svc accept # handle 9")
	m.forget()
	if len(m.texts) != 2 { // 8 (other chain, not taken) and 9: both recent
		t.Errorf("after forget: %v", m.texts)
	}
	for k, v := range m.texts {
		v.at = v.at.Add(-2 * monitorTextAge)
		m.texts[k] = v
	}
	m.forget()
	if len(m.texts) != 0 {
		t.Errorf("old texts kept: %v", m.texts)
	}
}
