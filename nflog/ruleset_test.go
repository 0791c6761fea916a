package nflog

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The listings in testdata/rulesets were recorded from nft 1.0.6 in a
// fresh namespace: `nft -a list ruleset` as NAME.nft and, as an oracle
// that does not go through this parser, `nft -j list ruleset` as
// NAME.json. iptables-nft.nft holds what iptables-nft-restore made of
// iptables-nft.save and ip6tables-nft.save.

// rsRecordings lists the recorded listings by name.
func rsRecordings(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/rulesets/*.nft")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded rulesets: %v", err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".nft"))
	}
	return names
}

func rsReadFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/rulesets", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseRulesetRecorded(t *testing.T) {
	for _, name := range rsRecordings(t) {
		t.Run(name, func(t *testing.T) {
			listing := rsReadFile(t, name+".nft")
			rs, err := ParseRuleset(listing)
			if err != nil {
				t.Fatal(err)
			}
			rsCheckAgainstNft(t, rs, listing, rsReadFile(t, name+".json"))
		})
	}
}

// rsNftJSON is what the tests read of `nft -j list ruleset`.
type rsNftJSON struct {
	Nftables []struct {
		Chain *struct {
			Family, Table, Name string
			Handle              uint64
			Type, Hook, Policy  string
			Prio                int
		}
		Rule *struct {
			Family, Table, Chain string
			Handle               uint64
		}
	}
}

// rsCheckAgainstNft compares a parsed ruleset with nft's own JSON listing
// (chains, hooks, priorities as numbers, rule handles in order) and with
// the rule lines of its text listing, found by indentation alone.
func rsCheckAgainstNft(t *testing.T, rs *Ruleset, listing, jsonText string) {
	t.Helper()
	var js rsNftJSON
	if err := json.Unmarshal([]byte(jsonText), &js); err != nil {
		t.Fatal(err)
	}
	var wantChains []ChainInfo
	wantRules := map[[3]string][]uint64{}
	for _, o := range js.Nftables {
		if c := o.Chain; c != nil {
			wantChains = append(wantChains, ChainInfo{
				Family: c.Family, Table: c.Table, Name: c.Name, Handle: c.Handle,
				Hook: c.Hook, Priority: c.Prio, Type: c.Type, Policy: c.Policy, Base: c.Hook != "",
			})
		}
		if r := o.Rule; r != nil {
			k := [3]string{r.Family, r.Table, r.Chain}
			wantRules[k] = append(wantRules[k], r.Handle)
		}
	}
	got := rs.Chains()
	for i := range got {
		got[i].Devices = nil // nft 1.0.6 leaves devices out of its JSON
	}
	if !reflect.DeepEqual(got, wantChains) {
		t.Errorf("chains:\n got %+v\nwant %+v", got, wantChains)
	}
	texts := rsRuleLines(listing)
	n := 0
	for _, c := range got {
		rules := rs.ChainRules(c.Family, c.Table, c.Name)
		var handles []uint64
		for _, r := range rules {
			handles = append(handles, r.Handle)
			want := texts[rsRuleKey{c.Family, c.Table, r.Handle}]
			if r.Text != want {
				t.Errorf("%s %s %s handle %d: text %q, nft printed %q", c.Family, c.Table, c.Name, r.Handle, r.Text, want)
			}
			if text, ok := rs.Rule(c.Family, c.Table, c.Name, r.Handle); !ok || text != r.Text {
				t.Errorf("Rule(%s %s %s %d) = %q, %v", c.Family, c.Table, c.Name, r.Handle, text, ok)
			}
			n++
		}
		if want := wantRules[[3]string{c.Family, c.Table, c.Name}]; !reflect.DeepEqual(handles, want) {
			t.Errorf("%s %s %s: handles %v, nft has %v", c.Family, c.Table, c.Name, handles, want)
		}
	}
	if n != len(texts) {
		t.Errorf("%d rules parsed, the listing has %d rule lines", n, len(texts))
	}
}

type rsRuleKey struct {
	family, table string
	handle        uint64
}

// rsRuleLines finds the rules of a listing by indentation: a line indented
// by two tabs that ends in "# handle N", in the table opened last.
func rsRuleLines(listing string) map[rsRuleKey]string {
	out := map[rsRuleKey]string{}
	var family, table string
	for _, line := range strings.Split(listing, "\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "table ") && len(f) >= 3 {
			family, table = f[1], f[2]
			continue
		}
		if !strings.HasPrefix(line, "\t\t") {
			continue
		}
		text, h, ok := strings.Cut(line, " # handle ")
		for ok && strings.Contains(h, " # handle ") { // a comment that mentions a handle
			var more string
			more, h, _ = strings.Cut(h, " # handle ")
			text += " # handle " + more
		}
		handle, err := strconv.ParseUint(h, 10, 64)
		if !ok || err != nil {
			continue
		}
		out[rsRuleKey{family, table, handle}] = strings.TrimSpace(text)
	}
	return out
}

func TestParseRulesetDetails(t *testing.T) {
	rs := rsParse(t, "sets-maps.nft")
	tests := []struct {
		family, table, chain string
		handle               uint64
		want                 string
	}{
		{"inet", "fw", "input", 23, "ct state vmap { invalid : drop, established : accept, related : accept }"},
		{"inet", "fw", "input", 26, `tcp dport 22 counter name "ssh-in" accept comment "ssh # handle 99 not real"`},
		{"inet", "fw", "input", 32, `ip saddr != @allowed_v4 tcp flags syn / fin,syn,rst,ack add @blocklist { ip saddr timeout 10m } log prefix "new blocked: "`},
		{"inet", "fw", "raw_pre", 43, "notrack"},
	}
	for _, tt := range tests {
		got, ok := rs.Rule(tt.family, tt.table, tt.chain, tt.handle)
		if !ok || got != tt.want {
			t.Errorf("Rule(%s %s %s %d) = %q, %v; want %q", tt.family, tt.table, tt.chain, tt.handle, got, ok, tt.want)
		}
	}
	for _, miss := range [][3]string{{"ip", "fw", "input"}, {"inet", "nope", "input"}, {"inet", "fw", "nope"}} {
		if got, ok := rs.Rule(miss[0], miss[1], miss[2], 23); ok {
			t.Errorf("Rule(%v, 23) = %q, want none", miss, got)
		}
	}
	if got, ok := rs.Rule("inet", "fw", "input", 99); ok {
		t.Errorf("handle 99 from a comment was taken for a rule: %q", got)
	}
}

func TestParseRulesetChains(t *testing.T) {
	tests := []struct {
		file string
		want ChainInfo
	}{
		{"docker.nft", ChainInfo{Family: "ip", Table: "nat", Name: "OUTPUT", Handle: 4, Hook: "output", Priority: -100, Type: "nat", Policy: "accept", Base: true}},
		{"docker.nft", ChainInfo{Family: "ip", Table: "filter", Name: "DOCKER-USER", Handle: 4}},
		{"kube-proxy.nft", ChainInfo{Family: "ip", Table: "kube-proxy", Name: "filter-prerouting", Handle: 1, Hook: "prerouting", Priority: -110, Type: "filter", Policy: "accept", Base: true}},
		{"kube-proxy.nft", ChainInfo{Family: "ip", Table: "kube-proxy", Name: "endpoint-GTZ3ZKZN-default/kubernetes/tcp/https__192.168.49.2/8443", Handle: 17}},
		{"sets-maps.nft", ChainInfo{Family: "inet", Table: "fw", Name: "ing", Handle: 8, Hook: "ingress", Priority: -500, Type: "filter", Policy: "accept", Devices: []string{"dummy0"}, Base: true}},
		{"sets-maps.nft", ChainInfo{Family: "inet", Table: "fw", Name: "mangle_out", Handle: 5, Hook: "output", Priority: -150, Type: "route", Policy: "accept", Base: true}},
		{"netdev.nft", ChainInfo{Family: "netdev", Table: "nd", Name: "ingress_two", Handle: 2, Hook: "ingress", Priority: -150, Type: "filter", Policy: "accept", Devices: []string{"veth0", "veth1"}, Base: true}},
		{"netdev.nft", ChainInfo{Family: "netdev", Table: "nd", Name: "egress_veth1", Handle: 3, Hook: "egress", Priority: 1, Type: "filter", Policy: "accept", Devices: []string{"veth1"}, Base: true}},
		{"bridge.nft", ChainInfo{Family: "bridge", Table: "br", Name: "out", Handle: 4, Hook: "output", Priority: 100, Type: "filter", Policy: "accept", Base: true}},
		{"bridge.nft", ChainInfo{Family: "bridge", Table: "br", Name: "other", Handle: 6, Hook: "forward", Priority: 0, Type: "filter", Policy: "drop", Base: true}},
		{"priorities.nft", ChainInfo{Family: "bridge", Table: "prio", Name: "c", Handle: 3, Hook: "output", Priority: 95, Type: "filter", Policy: "accept", Base: true}},
		{"priorities.nft", ChainInfo{Family: "ip6", Table: "v6", Name: "pre", Handle: 3, Hook: "prerouting", Priority: -290, Type: "filter", Policy: "accept", Base: true}},
	}
	for _, tt := range tests {
		rs := rsParse(t, tt.file)
		got, ok := rs.Chain(tt.want.Family, tt.want.Table, tt.want.Name)
		if !ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Chain(%s %s %s) = %+v, %v\nwant %+v", tt.file, tt.want.Family, tt.want.Table, tt.want.Name, got, ok, tt.want)
		}
	}
}

func rsParse(t testing.TB, file string) *Ruleset {
	t.Helper()
	rs, err := ParseRuleset(rsReadFile(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// rsOddListing has what the recordings lack: a flowtable (this kernel
// has none), braces inside strings, a warning line as newer nft prints
// on standard output, a quoted name and a rule printed over two lines.
const rsOddListing = `# Warning: table ip filter is managed by iptables-nft, do not touch!
table inet x { # handle 3
	comment "a { table"
	flags dormant

	flowtable ft { # handle 2
		hook ingress priority filter
		devices = { veth0, veth1 }
	}

	set s { # handle 4
		type ifname
		elements = { "a}b",
			     "c{" }
	}

	ct timeout t { # handle 5
		protocol tcp
		l3proto ip
		policy = { established : 120, close : 20 }
	}

	chain "odd name" { # handle 6
		comment "chain { comment"
		type filter hook input priority filter - 10; policy drop; flags offload;
		tcp dport 22 accept comment "} # handle 1" # handle 7
		ip saddr { 10.0.0.1,
			   10.0.0.2 } drop # handle 8
		 counter packets 0 bytes 0  # handle 9
	}
}
`

func TestParseRulesetOddListing(t *testing.T) {
	rs, err := ParseRuleset(rsOddListing)
	if err != nil {
		t.Fatal(err)
	}
	want := []NftRule{
		{7, `tcp dport 22 accept comment "} # handle 1"`},
		{8, "ip saddr { 10.0.0.1,\n10.0.0.2 } drop"},
		{9, "counter packets 0 bytes 0"},
	}
	if got := rs.ChainRules("inet", "x", "odd name"); !reflect.DeepEqual(got, want) {
		t.Errorf("rules:\n got %+v\nwant %+v", got, want)
	}
	wantChain := ChainInfo{Family: "inet", Table: "x", Name: "odd name", Handle: 6, Hook: "input", Priority: -10, Type: "filter", Policy: "drop", Base: true}
	if got := rs.Chains(); len(got) != 1 || !reflect.DeepEqual(got[0], wantChain) {
		t.Errorf("chains %+v, want [%+v]", got, wantChain)
	}
}

func TestParseRulesetErrors(t *testing.T) {
	tests := []struct{ name, listing, want string }{
		{"without -a", "table ip t {\n\tchain c {\n\t\ttcp dport 22 accept\n\t}\n}\n", "line 3: chain c: rule without a handle (was the ruleset listed with nft -a?)"},
		{"truncated chain", "table ip t { # handle 1\n\tchain c { # handle 1\n", "listing ends inside chain c"},
		{"truncated table", "table ip t { # handle 1\n", "listing ends inside table ip t"},
		{"truncated set", "table ip t { # handle 1\n\tset s { # handle 2\n", "listing ends inside table ip t"},
		{"bad priority", "table ip t {\n\tchain c {\n\t\ttype filter hook input priority bogus; policy accept;\n\t}\n}\n", `line 3: chain c: priority "bogus" in family ip: unknown name "bogus"`},
		{"no hook", "table ip t {\n\tchain c {\n\t\ttype filter priority 0;\n\t}\n}\n", "no hook"},
		{"stray brace", "}\n", "line 1: unexpected }"},
		{"no table name", "table ip {\n}\n", "has no family or no name"},
		{"one-line block skipped", "table ip t {\n\tchain c { }\n}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRuleset(tt.listing)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseChainPriority(t *testing.T) {
	tests := []struct {
		family, text string
		want         int
		ok           bool
	}{
		{"ip", "filter", 0, true},
		{"inet", "raw - 10", -310, true},
		{"ip6", "mangle + 5", -145, true},
		{"inet", "dstnat", -100, true},
		{"ip", "security", 50, true},
		{"ip", "srcnat", 100, true},
		{"netdev", "filter + 1", 1, true},
		{"arp", "filter", 0, true},
		{"bridge", "dstnat", -300, true},
		{"bridge", "filter", -200, true},
		{"bridge", "filter - 5", -205, true},
		{"bridge", "out", 100, true},
		{"bridge", "srcnat + 10", 310, true},
		{"inet", "-2147483648", -2147483648, true},
		{"inet", "2147483647", 2147483647, true},
		{"inet", "-150", -150, true},
		{"bridge", "raw", 0, false},
		{"ip", "out", 0, false},
		{"ip", "filter * 2", 0, false},
		{"ip", "filter -", 0, false},
		{"ip", "filter - x", 0, false},
		{"ip", "filter - -3", 0, false},
		{"ip", "", 0, false},
		{"ip", "2147483648", 0, false},
	}
	for _, tt := range tests {
		got, err := parseChainPriority(tt.family, tt.text)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseChainPriority(%s, %q) = %d, %v; want %d, ok %v", tt.family, tt.text, got, err, tt.want, tt.ok)
		}
	}
}

func TestRemoveTable(t *testing.T) {
	rs := rsParse(t, "iptables-nft.nft")
	rs.AttachIptables(map[IptablesKey]string{
		{"ip", "filter", "INPUT", 9}: "-A INPUT -i lo -j ACCEPT",
		{"ip", "nat", "DOCKER", 26}:  "-A DOCKER -i docker0 -j RETURN",
	})
	rs.RemoveTable("ip", "filter")
	rs.RemoveTable("ip", "nope")
	if _, ok := rs.Chain("ip", "filter", "INPUT"); ok {
		t.Error("chain of a removed table is still there")
	}
	if _, ok := rs.IptablesRule("ip", "filter", "INPUT", 9); ok {
		t.Error("iptables text of a removed table is still there")
	}
	if _, ok := rs.IptablesRule("ip", "nat", "DOCKER", 26); !ok {
		t.Error("iptables text of another table went away")
	}
	for _, c := range rs.Chains() {
		if c.Family == "ip" && c.Table == "filter" {
			t.Errorf("Chains lists %s of a removed table", c.Name)
		}
	}
}

func TestPutChainKeepsOrder(t *testing.T) {
	rs := rsParse(t, "docker.nft")
	update, err := ParseRuleset("table ip filter {\n\tchain DOCKER-USER { # handle 4\n\t\tip saddr 10.0.0.1 drop # handle 40\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	before := rs.Chains()
	rs.putChain(update.chain("ip", "filter", "DOCKER-USER"))
	after := rs.Chains()
	if !reflect.DeepEqual(before, after) {
		t.Errorf("chains changed:\n%+v\n%+v", before, after)
	}
	if got, ok := rs.Rule("ip", "filter", "DOCKER-USER", 40); !ok || got != "ip saddr 10.0.0.1 drop" {
		t.Errorf("new rule: %q, %v", got, ok)
	}
	if _, ok := rs.Rule("ip", "filter", "DOCKER-USER", 11); ok {
		t.Error("the replaced chain's old rule is still there")
	}
}

func TestChainDevicesAreCopies(t *testing.T) {
	rs := rsParse(t, "netdev.nft")
	c, _ := rs.Chain("netdev", "nd", "ingress_two")
	c.Devices[0] = "changed"
	if c, _ := rs.Chain("netdev", "nd", "ingress_two"); c.Devices[0] != "veth0" {
		t.Errorf("a caller changed the cache: %v", c.Devices)
	}
}

func TestRulesetConcurrentUse(t *testing.T) {
	rs := rsParse(t, "kube-proxy.nft")
	update, err := ParseRuleset(rsReadFile(t, "kube-proxy.nft"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				rs.Rule("ip", "kube-proxy", "services", 44)
				rs.Chain("ip", "kube-proxy", "nat-output")
				rs.IptablesRule("ip", "kube-proxy", "services", 44)
				_ = rs.Chains()
			}
		}()
	}
	for j := 0; j < 200; j++ {
		rs.mu.Lock()
		rs.putChain(update.chain("ip", "kube-proxy", "services"))
		rs.mu.Unlock()
		rs.AttachIptables(map[IptablesKey]string{})
		if j%50 == 0 {
			rs.RemoveTable("ip", "kube-proxy")
		}
	}
	wg.Wait()
}

func FuzzParseRuleset(f *testing.F) {
	for _, name := range rsRecordings(f) {
		f.Add(rsReadFile(f, name+".nft"))
	}
	f.Add(rsOddListing)
	f.Fuzz(func(t *testing.T, listing string) {
		rs, err := ParseRuleset(listing)
		if err != nil {
			return
		}
		for _, c := range rs.Chains() {
			for _, r := range rs.ChainRules(c.Family, c.Table, c.Name) {
				if text, ok := rs.Rule(c.Family, c.Table, c.Name, r.Handle); !ok || text != strings.TrimSpace(text) {
					t.Fatalf("rule %d of %s: %q, %v", r.Handle, c.Name, text, ok)
				}
			}
		}
	})
}
