package nflog

import (
	"errors"
	"fmt"
	"maps"
	"strings"
)

// IptablesKey names a rule written by iptables-nft as nf_tables knows it:
// family "ip" or "ip6", table "filter", "nat", "mangle", "raw" or
// "security", the chain and the rule's handle.
type IptablesKey struct {
	Family string
	Table  string
	Chain  string
	Handle uint64
}

// IptablesSave is what an iptables-save (iptables-nft-save,
// iptables-legacy-save, ip6tables-...) printed: tables, their chains and
// their rules in order.
type IptablesSave struct {
	Tables []IptablesTable
	index  map[[2]string]*IptablesChain
}

// IptablesTable is one "*table" section of a save output.
type IptablesTable struct {
	Name   string
	Chains []IptablesChain // in the order they were declared
}

// IptablesChain is one chain of a save output.
type IptablesChain struct {
	Name string
	// Policy is "ACCEPT" or "DROP" for a built-in chain, "" for a user
	// chain.
	Policy string
	// Rules are the chain's rules in order, as saved:
	// "-A INPUT -p tcp -m tcp --dport 22 -j DROP".
	Rules []string
}

// ParseIptablesSave parses the output of iptables-save or ip6tables-save
// in either backend, with or without counters (-c). Comment lines,
// including iptables-nft's "# Table `x' is incompatible", are skipped.
func ParseIptablesSave(text string) (*IptablesSave, error) {
	s := &IptablesSave{}
	var t *IptablesTable
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		var err error
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '*':
			s.Tables = append(s.Tables, IptablesTable{Name: line[1:]})
			t = &s.Tables[len(s.Tables)-1]
		case t == nil:
			err = errors.New("outside a table")
		case line == "COMMIT":
			t = nil
		case line[0] == ':':
			err = t.declare(line[1:])
		default:
			err = t.addRule(line)
		}
		if err != nil {
			return nil, fmt.Errorf("parse iptables-save output: line %d: %w: %q", n+1, err, line)
		}
	}
	s.buildIndex()
	return s, nil
}

// declare reads ":CHAIN POLICY [packets:bytes]".
func (t *IptablesTable) declare(decl string) error {
	f := strings.Fields(decl)
	if len(f) < 2 {
		return errors.New("chain without a policy")
	}
	policy := f[1]
	if policy == "-" {
		policy = ""
	}
	t.Chains = append(t.Chains, IptablesChain{Name: f[0], Policy: policy})
	return nil
}

// addRule reads "[packets:bytes] -A CHAIN ...", the counters optional.
func (t *IptablesTable) addRule(line string) error {
	if line[0] == '[' {
		_, rest, ok := strings.Cut(line, "] ")
		if !ok {
			return errors.New("unterminated counters")
		}
		line = strings.TrimSpace(rest)
	}
	rest, ok := strings.CutPrefix(line, "-A ")
	if !ok {
		return errors.New("not a chain declaration, rule or COMMIT")
	}
	chain, _, _ := strings.Cut(rest, " ")
	for i := range t.Chains {
		if t.Chains[i].Name == chain {
			t.Chains[i].Rules = append(t.Chains[i].Rules, line)
			return nil
		}
	}
	return fmt.Errorf("rule in undeclared chain %s", chain)
}

func (s *IptablesSave) buildIndex() {
	s.index = map[[2]string]*IptablesChain{}
	for i := range s.Tables {
		t := &s.Tables[i]
		for j := range t.Chains {
			s.index[[2]string{t.Name, t.Chains[j].Name}] = &t.Chains[j]
		}
	}
}

// Chain finds a chain of a table.
func (s *IptablesSave) Chain(table, chain string) (*IptablesChain, bool) {
	if s.index != nil {
		c, ok := s.index[[2]string{table, chain}]
		return c, ok
	}
	for i := range s.Tables {
		if s.Tables[i].Name != table {
			continue
		}
		for j := range s.Tables[i].Chains {
			if c := &s.Tables[i].Chains[j]; c.Name == chain {
				return c, true
			}
		}
	}
	return nil, false
}

// iptablesInstallHint says what a missing iptables-nft-save costs.
const iptablesInstallHint = "install iptables to show iptables-nft rules in iptables syntax"

// LoadIptablesRules reads the rules iptables-nft and ip6tables-nft wrote
// in the network namespace at nsPath ("" for hooktrace's own), with
// iptables-nft-save, ip6tables-nft-save and `nft -a list ruleset`, and
// gives each its iptables text by nf_tables handle, for AttachIptables.
func LoadIptablesRules(nsPath string) (map[IptablesKey]string, error) {
	save4, err := loadSave(nsPath, iptablesInstallHint, "iptables-nft-save")
	if err != nil {
		return nil, err
	}
	save6, err := loadSave(nsPath, iptablesInstallHint, "ip6tables-nft-save")
	if err != nil {
		return nil, err
	}
	rs, err := LoadRuleset(nsPath)
	if err != nil {
		return nil, err
	}
	m := MatchIptables(rs, "ip", save4)
	maps.Copy(m, MatchIptables(rs, "ip6", save6))
	return m, nil
}

// loadSave runs an iptables-save command in a namespace and parses what
// it printed.
func loadSave(nsPath, install, cmd string) (*IptablesSave, error) {
	out, err := commandOutput(nsPath, install, cmd)
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", cmd, namespaceLabel(nsPath), err)
	}
	s, err := ParseIptablesSave(string(out))
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", cmd, namespaceLabel(nsPath), err)
	}
	return s, nil
}

// LegacyRules are the rules of iptables-legacy and ip6tables-legacy in
// one namespace. Their TRACE target logs through NFLOG with prefixes
// "TRACE: table:chain:type:N", N the 1-based position of the rule.
type LegacyRules struct {
	saves map[string]*IptablesSave // by family, "ip" or "ip6"
}

// NewLegacyRules wraps parsed iptables-legacy-save (family "ip") and
// ip6tables-legacy-save ("ip6") outputs; either may be nil.
func NewLegacyRules(ip, ip6 *IptablesSave) *LegacyRules {
	return &LegacyRules{saves: map[string]*IptablesSave{"ip": ip, "ip6": ip6}}
}

// legacyInstallHint says what a missing iptables-legacy-save costs.
const legacyInstallHint = "install iptables to resolve iptables-legacy TRACE lines to rules"

// LoadLegacyRules reads the rules of iptables-legacy and ip6tables-legacy
// in the network namespace at nsPath ("" for hooktrace's own) with
// iptables-legacy-save and ip6tables-legacy-save.
func LoadLegacyRules(nsPath string) (*LegacyRules, error) {
	save4, err := loadSave(nsPath, legacyInstallHint, "iptables-legacy-save")
	if err != nil {
		return nil, err
	}
	save6, err := loadSave(nsPath, legacyInstallHint, "ip6tables-legacy-save")
	if err != nil {
		return nil, err
	}
	return NewLegacyRules(save4, save6), nil
}

// Rule returns the n-th (1-based) rule of a chain in iptables syntax, by
// family ("ip" or "ip6"), table and chain.
func (l *LegacyRules) Rule(family, table, chain string, n int) (string, bool) {
	c, ok := l.chain(family, table, chain)
	if !ok || n < 1 || n > len(c.Rules) {
		return "", false
	}
	return c.Rules[n-1], true
}

// Policy returns a built-in chain's policy ("ACCEPT", "DROP"), or "" for
// a user chain or an unknown one.
func (l *LegacyRules) Policy(family, table, chain string) string {
	c, ok := l.chain(family, table, chain)
	if !ok {
		return ""
	}
	return c.Policy
}

func (l *LegacyRules) chain(family, table, chain string) (*IptablesChain, bool) {
	s := l.saves[family]
	if s == nil {
		return nil, false
	}
	return s.Chain(table, chain)
}
