package nflog

import (
	"errors"
	"fmt"
	"strings"
)

// nftInstallHint says what a missing nft costs.
const nftInstallHint = "install nftables to resolve rule handles to rule text"

// LoadRuleset lists the nf_tables ruleset of the network namespace at
// nsPath ("" for hooktrace's own) with `nft -a list ruleset`, run inside
// that namespace. A missing nft gives an error that wraps
// exec.ErrNotFound; missing privileges one that wraps fs.ErrPermission; a
// kernel without nf_tables one that wraps errors.ErrUnsupported.
func LoadRuleset(nsPath string) (*Ruleset, error) {
	out, err := commandOutput(nsPath, nftInstallHint, "nft", "-a", "list", "ruleset")
	if err != nil {
		return nil, fmt.Errorf("list nf_tables ruleset in %s: %w", namespaceLabel(nsPath), err)
	}
	rs, err := ParseRuleset(string(out))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", namespaceLabel(nsPath), err)
	}
	return rs, nil
}

// ReloadChain lists one chain again with `nft -a list chain FAMILY TABLE
// CHAIN` in the namespace at nsPath and replaces what r knew of it, so
// that a change costs time in proportion to the chain rather than the
// ruleset. One exception is outside hooktrace's hands: to list a chain,
// nft 1.0.6 still fetches every set of the chain's table, one request per
// set, and each anonymous set in a rule ("tcp dport { 80, 443 }", a vmap)
// is a set of the table. A chain that no longer exists is forgotten.
// Names that nft's command line cannot take (keywords such as "counter",
// "x:y") fall back to listing the table, then the ruleset.
//
// The iptables text of the chain's rules (AttachIptables) is not
// refreshed: load it again after a change to an iptables-nft table.
func (r *Ruleset) ReloadChain(nsPath, family, table, chain string) error {
	c, err := listChain(nsPath, family, table, chain)
	switch {
	case errors.Is(err, errNftNoObject):
		r.mu.Lock()
		r.removeChain(family, table, chain)
		r.mu.Unlock()
		return nil
	case err != nil:
		return fmt.Errorf("reload chain %s %s %s in %s: %w", family, table, chain, namespaceLabel(nsPath), err)
	}
	r.mu.Lock()
	r.putChain(c)
	r.mu.Unlock()
	return nil
}

// listChain lists one chain, by itself when nft's command line accepts
// its names, else within its table or the whole ruleset.
func listChain(nsPath, family, table, chain string) (*rsChain, error) {
	listings := [][]string{
		{"-a", "list", "chain", family, table, chain},
		{"-a", "list", "table", family, table},
		{"-a", "list", "ruleset"},
	}
	var err error
	for _, args := range listings {
		var out []byte
		out, err = commandOutput(nsPath, nftInstallHint, "nft", args...)
		if err != nil {
			if strings.Contains(err.Error(), "syntax error") {
				continue
			}
			return nil, err
		}
		rs, perr := ParseRuleset(string(out))
		if perr != nil {
			return nil, perr
		}
		if c := rs.chain(family, table, chain); c != nil {
			return c, nil
		}
		return nil, &rulesetError{"nft did not list the chain", errNftNoObject}
	}
	return nil, err
}
