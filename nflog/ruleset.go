package nflog

import (
	"slices"
	"sync"
)

// Ruleset is what hooktrace knows of one namespace's nf_tables rules: the
// text of every rule by handle, and every chain's hook and priority. It
// is built from `nft -a list ruleset`, and kept current by applying the
// kernel's change notifications (Apply, RulesetWatch) or by reloading a
// chain (ReloadChain). A Ruleset is safe for concurrent use.
type Ruleset struct {
	mu       sync.RWMutex
	tables   map[rsTableKey]*rsTable
	order    []rsTableKey // tables in listing order
	iptables map[IptablesKey]string
}

// ChainInfo describes a chain; base chains have a hook.
type ChainInfo struct {
	Family string // "inet", "ip", "ip6", "bridge", "netdev" or "arp"
	Table  string
	Name   string
	Handle uint64 // 0 when the listing did not show it
	// Hook is "prerouting", "input", "forward", "output", "postrouting",
	// "ingress" or "egress" for a base chain, "" for a regular chain.
	Hook     string
	Priority int      // as a number, also when nft printed a name such as "filter - 10"
	Type     string   // "filter", "nat" or "route"; "" for a regular chain
	Policy   string   // "accept" or "drop"; "" for a regular chain
	Devices  []string // the devices of an ingress or egress chain
	Base     bool
}

// clone copies the devices, so that a caller cannot change the cache.
func (c ChainInfo) clone() ChainInfo {
	c.Devices = slices.Clone(c.Devices)
	return c
}

// NftRule is one rule of a chain as nft prints it.
type NftRule struct {
	Handle uint64
	Text   string // without the "# handle N" comment, trimmed
}

type rsTableKey struct{ family, name string }

type rsTable struct {
	chains map[string]*rsChain
	order  []string // chain names in listing order
}

type rsChain struct {
	info     ChainInfo
	rules    []NftRule
	byHandle map[uint64]int // index into rules
}

func newRuleset() *Ruleset {
	return &Ruleset{tables: map[rsTableKey]*rsTable{}}
}

// Rule returns the text of a rule (as nft prints it, without the
// "# handle N" comment) by family name ("inet", "ip", "ip6", "bridge",
// "netdev", "arp"), table, chain and handle.
func (r *Ruleset) Rule(family, table, chain string, handle uint64) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := r.chain(family, table, chain)
	if c == nil {
		return "", false
	}
	i, ok := c.byHandle[handle]
	if !ok {
		return "", false
	}
	return c.rules[i].Text, true
}

// Chain returns a chain's description.
func (r *Ruleset) Chain(family, table, chain string) (ChainInfo, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := r.chain(family, table, chain)
	if c == nil {
		return ChainInfo{}, false
	}
	return c.info.clone(), true
}

// Chains lists every chain, tables and chains in the order nft listed
// them (chains added by ReloadChain come last in their table), for tests
// and the UI.
func (r *Ruleset) Chains() []ChainInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []ChainInfo
	for _, k := range r.order {
		t := r.tables[k]
		for _, name := range t.order {
			out = append(out, t.chains[name].info.clone())
		}
	}
	return out
}

// ChainRules returns the rules of a chain in order, or nil when the chain
// is unknown.
func (r *Ruleset) ChainRules(family, table, chain string) []NftRule {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := r.chain(family, table, chain)
	if c == nil {
		return nil
	}
	return slices.Clone(c.rules)
}

// RemoveTable forgets a table, its chains and their iptables text. Call
// it when the table is deleted: a table created again with the same name
// numbers its rule handles from the start.
func (r *Ruleset) RemoveTable(family, table string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeTable(family, table)
}

// chain finds a chain; the caller holds the lock.
func (r *Ruleset) chain(family, table, chain string) *rsChain {
	t := r.tables[rsTableKey{family, table}]
	if t == nil {
		return nil
	}
	return t.chains[chain]
}

// table finds or adds a table; the caller holds the write lock.
func (r *Ruleset) table(family, name string) *rsTable {
	k := rsTableKey{family, name}
	t := r.tables[k]
	if t == nil {
		t = &rsTable{chains: map[string]*rsChain{}}
		r.tables[k] = t
		r.order = append(r.order, k)
	}
	return t
}

// putChain adds a chain or replaces the one of the same name, keeping its
// place; the caller holds the write lock.
func (r *Ruleset) putChain(c *rsChain) {
	t := r.table(c.info.Family, c.info.Table)
	if _, ok := t.chains[c.info.Name]; !ok {
		t.order = append(t.order, c.info.Name)
	}
	t.chains[c.info.Name] = c
}

// removeChain forgets a chain; the caller holds the write lock.
func (r *Ruleset) removeChain(family, table, chain string) {
	t := r.tables[rsTableKey{family, table}]
	if t == nil {
		return
	}
	if _, ok := t.chains[chain]; !ok {
		return
	}
	delete(t.chains, chain)
	if i := slices.Index(t.order, chain); i >= 0 {
		t.order = slices.Delete(t.order, i, i+1)
	}
}

// addRule appends a rule to a chain being parsed.
func (c *rsChain) addRule(handle uint64, text string) {
	if c.byHandle == nil {
		c.byHandle = map[uint64]int{}
	}
	c.byHandle[handle] = len(c.rules)
	c.rules = append(c.rules, NftRule{Handle: handle, Text: text})
}
