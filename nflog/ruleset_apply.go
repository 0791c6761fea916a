package nflog

import (
	"slices"
)

// ChainRef names a chain.
type ChainRef struct{ Family, Table, Chain string }

// RuleTextFunc gives the text of the rule a ChangeNewRule added, as nft
// prints it, or false when it does not know it.
type RuleTextFunc func(c RulesetChange) (string, bool)

// Apply brings r up to date with one generation's changes, in the order
// the kernel sent them, in time proportional to the batch and the chains
// it touches: deleted tables, chains and rules are forgotten; a new chain
// gets the hook, priority and policy its notification carries; a new
// rule gets the text text returns for it and goes after the rule its
// notification names. Applying a change twice is harmless, so a batch
// that overlaps a fresh load is fine.
//
// Apply returns the chains whose new rules it has no text for: the
// caller reloads them (ReloadChain). A lost batch (b.Lost) changes
// nothing: only a full reload repairs it.
func (r *Ruleset) Apply(b ChangeBatch, text RuleTextFunc) []ChainRef {
	if b.Lost {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a := applier{r: r, text: text, dirty: map[*rsChain]bool{}}
	for _, c := range b.Changes {
		a.apply(c)
	}
	for c := range a.dirty {
		c.compact()
	}
	return a.reload
}

// applier is the state of one Apply.
type applier struct {
	r      *Ruleset
	text   RuleTextFunc
	dirty  map[*rsChain]bool // chains with deleted rules to compact
	reload []ChainRef
}

func (a *applier) apply(c RulesetChange) {
	switch c.Op {
	case ChangeNewTable:
		a.r.table(c.Family, c.Table)
	case ChangeDelTable:
		a.r.removeTable(c.Family, c.Table)
	case ChangeNewChain:
		a.newChain(c)
	case ChangeDelChain:
		a.r.removeChain(c.Family, c.Table, c.Chain)
	case ChangeNewRule:
		a.newRule(c)
	case ChangeDelRule:
		if ch := a.r.chain(c.Family, c.Table, c.Chain); ch != nil && ch.deleteRule(c.Handle) {
			a.dirty[ch] = true
		}
	}
}

// newChain adds a chain, or updates one already known by name (a new
// policy) or by handle (a renamed chain), keeping its rules.
func (a *applier) newChain(c RulesetChange) {
	t := a.r.table(c.Family, c.Table)
	if ch := t.chains[c.Chain]; ch != nil {
		ch.info = mergeChainInfo(ch.info, c.Info)
		return
	}
	if old := t.chainByHandle(c.Handle); old != nil {
		a.r.removeChain(c.Family, c.Table, old.info.Name)
		old.info = mergeChainInfo(old.info, c.Info)
		a.r.putChain(old)
		return
	}
	a.r.putChain(&rsChain{info: c.Info.clone()})
}

// mergeChainInfo updates a known chain from a notification, which for a
// netdev chain may name only the devices it added.
func mergeChainInfo(old, upd ChainInfo) ChainInfo {
	devs := slices.Clone(old.Devices)
	for _, d := range upd.Devices {
		if !slices.Contains(devs, d) {
			devs = append(devs, d)
		}
	}
	upd.Devices = devs
	return upd
}

func (a *applier) newRule(c RulesetChange) {
	ref := ChainRef{c.Family, c.Table, c.Chain}
	ch := a.r.chain(c.Family, c.Table, c.Chain)
	text, ok := "", false
	if a.text != nil {
		text, ok = a.text(c)
	}
	if ch == nil || !ok {
		if !slices.Contains(a.reload, ref) {
			a.reload = append(a.reload, ref)
		}
		return
	}
	ch.insertRule(c.Handle, c.Position, c.Append, text)
}

// chainByHandle finds a chain by its handle (0 never matches).
func (t *rsTable) chainByHandle(h uint64) *rsChain {
	if h == 0 {
		return nil
	}
	for _, c := range t.chains {
		if c.info.Handle == h {
			return c
		}
	}
	return nil
}

// removeTable forgets a table; the caller holds the write lock.
func (r *Ruleset) removeTable(family, table string) {
	k := rsTableKey{family, table}
	if _, ok := r.tables[k]; !ok {
		return
	}
	delete(r.tables, k)
	if i := slices.Index(r.order, k); i >= 0 {
		r.order = slices.Delete(r.order, i, i+1)
	}
	for ik := range r.iptables {
		if ik.Family == family && ik.Table == table {
			delete(r.iptables, ik)
		}
	}
}

// deleteRule leaves a tombstone (handle 0) where the rule was, for
// compact to sweep once per batch; it reports whether the rule was there.
func (c *rsChain) deleteRule(handle uint64) bool {
	i, ok := c.byHandle[handle]
	if !ok {
		return false
	}
	delete(c.byHandle, handle)
	c.rules[i] = NftRule{}
	return true
}

// insertRule puts a rule after the rule with handle after when it is
// known, else last (appended) or first, or replaces the text of a rule
// already there.
func (c *rsChain) insertRule(handle, after uint64, appended bool, text string) {
	if c.byHandle == nil {
		c.byHandle = map[uint64]int{}
	}
	if i, ok := c.byHandle[handle]; ok {
		c.rules[i].Text = text
		return
	}
	at := len(c.rules)
	if i, ok := c.byHandle[after]; ok && after != 0 {
		at = i + 1
	} else if !appended {
		at = 0
	}
	if at == len(c.rules) {
		c.addRule(handle, text)
		return
	}
	c.rules = slices.Insert(c.rules, at, NftRule{Handle: handle, Text: text})
	c.reindex(at)
}

// compact sweeps the tombstones deleteRule left.
func (c *rsChain) compact() {
	c.rules = slices.DeleteFunc(c.rules, func(r NftRule) bool { return r.Handle == 0 })
	c.reindex(0)
}

// reindex refreshes byHandle from rules[from:].
func (c *rsChain) reindex(from int) {
	for i := from; i < len(c.rules); i++ {
		if h := c.rules[i].Handle; h != 0 {
			c.byHandle[h] = i
		}
	}
}

// replaceWith takes the tables and chains of a fresh load, keeping the
// iptables text it had.
func (r *Ruleset) replaceWith(fresh *Ruleset) {
	fresh.mu.RLock()
	tables, order := fresh.tables, slices.Clone(fresh.order)
	fresh.mu.RUnlock()
	r.mu.Lock()
	r.tables, r.order = tables, order
	r.mu.Unlock()
}
