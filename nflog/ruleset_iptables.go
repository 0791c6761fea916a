package nflog

import "maps"

// MatchIptables pairs the rules of an iptables-nft-save output (family
// "ip") or ip6tables-nft-save output ("ip6") with the rules of the same
// chains in rs: the N-th rule of a chain in the save output is the N-th
// rule of that chain in nf_tables. A chain whose rule counts differ (it
// changed between the two listings, or holds rules iptables cannot show)
// is left out rather than guessed.
func MatchIptables(rs *Ruleset, family string, save *IptablesSave) map[IptablesKey]string {
	m := map[IptablesKey]string{}
	if save == nil {
		return m
	}
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	for _, t := range save.Tables {
		for _, ic := range t.Chains {
			c := rs.chain(family, t.Name, ic.Name)
			if c == nil || len(c.rules) != len(ic.Rules) {
				continue
			}
			for i, rule := range c.rules {
				m[IptablesKey{family, t.Name, ic.Name, rule.Handle}] = ic.Rules[i]
			}
		}
	}
	return m
}

// AttachIptables gives r the iptables text of the rules iptables-nft
// wrote (LoadIptablesRules), replacing what it had.
func (r *Ruleset) AttachIptables(m map[IptablesKey]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.iptables = m
}

// ReloadIptables reads the rules iptables-nft and ip6tables-nft wrote in
// the network namespace at nsPath ("" for hooktrace's own) again, with
// iptables-nft-save and ip6tables-nft-save, and pairs them with the
// chains r knows now (MatchIptables), replacing the iptables text r had.
// Call it once r has learned of a rule added to a table iptables-nft
// manages (ReloadChain, Apply): until then that rule has no iptables
// text. When a save fails, r keeps what it had.
func (r *Ruleset) ReloadIptables(nsPath string) error {
	save4, err := loadSave(nsPath, iptablesInstallHint, "iptables-nft-save")
	if err != nil {
		return err
	}
	save6, err := loadSave(nsPath, iptablesInstallHint, "ip6tables-nft-save")
	if err != nil {
		return err
	}
	m := MatchIptables(r, "ip", save4)
	maps.Copy(m, MatchIptables(r, "ip6", save6))
	r.AttachIptables(m)
	return nil
}

// IptablesRule returns a rule in iptables syntax ("-A INPUT -p tcp -m tcp
// --dport 22 -j DROP") by its nf_tables family, table, chain and handle,
// if iptables-nft wrote it and AttachIptables was given its text.
func (r *Ruleset) IptablesRule(family, table, chain string, handle uint64) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.iptables[IptablesKey{family, table, chain, handle}]
	return s, ok
}
