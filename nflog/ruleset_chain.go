package nflog

import (
	"fmt"
	"strconv"
	"strings"
)

// parseBaseChain reads a base chain's declaration, after "type ":
//
//	filter hook input priority filter; policy drop;
//	filter hook ingress device "eth0" priority -500; policy accept;
//	filter hook ingress devices = { eth0, eth1 } priority filter + 10; policy accept;
func parseBaseChain(decl string, info *ChainInfo) error {
	clauses := strings.Split(decl, ";")
	typ, rest, _ := strings.Cut(strings.TrimSpace(clauses[0]), " ")
	rest, ok := strings.CutPrefix(rest, "hook ")
	if !ok {
		return fmt.Errorf("no hook in %q", decl)
	}
	hook, rest, _ := strings.Cut(rest, " ")
	i := strings.LastIndex(rest, "priority ")
	if i < 0 {
		return fmt.Errorf("no priority in %q", decl)
	}
	prio, err := parseChainPriority(info.Family, rest[i+len("priority "):])
	if err != nil {
		return err
	}
	info.Base, info.Type, info.Hook, info.Priority = true, typ, hook, prio
	info.Devices = parseDevices(strings.TrimSpace(rest[:i]))
	for _, c := range clauses[1:] {
		if p, ok := strings.CutPrefix(strings.TrimSpace(c), "policy "); ok {
			info.Policy = strings.TrimSpace(p)
		}
	}
	return nil
}

// parseDevices reads `device "eth0"` or `devices = { eth0, eth1 }`.
func parseDevices(s string) []string {
	if d, ok := strings.CutPrefix(s, "device "); ok {
		return []string{unquoteName(strings.TrimSpace(d))}
	}
	d, ok := strings.CutPrefix(s, "devices = ")
	if !ok {
		return nil
	}
	d = strings.TrimSuffix(strings.TrimPrefix(d, "{"), "}")
	var out []string
	for _, name := range strings.Split(d, ",") {
		if name = strings.TrimSpace(name); name != "" {
			out = append(out, unquoteName(name))
		}
	}
	return out
}

// parseChainPriority converts a base chain priority as nft prints it for a
// table family ("filter", "dstnat + 5", "mangle - 10", "-150") into a
// number. The names are nft's: for ip, ip6, inet, arp and netdev raw
// -300, mangle -150, dstnat -100, filter 0, security 50, srcnat 100; for
// bridge dstnat -300, filter -200, out 100, srcnat 300.
func parseChainPriority(family, s string) (int, error) {
	f := strings.Fields(s)
	var base, off int
	var err error
	switch len(f) {
	case 1:
		base, err = priorityTerm(family, f[0])
	case 3:
		if base, err = priorityTerm(family, f[0]); err != nil {
			break
		}
		if off, err = strconv.Atoi(f[2]); err != nil || off < 0 {
			err = fmt.Errorf("offset %q", f[2])
			break
		}
		switch f[1] {
		case "+":
		case "-":
			off = -off
		default:
			err = fmt.Errorf("operator %q", f[1])
		}
	default:
		err = fmt.Errorf("%d words", len(f))
	}
	if err != nil {
		return 0, fmt.Errorf("priority %q in family %s: %w", s, family, err)
	}
	return base + off, nil
}

// priorityTerm reads a number or one of nft's priority names.
func priorityTerm(family, s string) (int, error) {
	if n, err := strconv.ParseInt(s, 10, 32); err == nil {
		return int(n), nil
	}
	if n, ok := standardPriority(family, s); ok {
		return n, nil
	}
	return 0, fmt.Errorf("unknown name %q", s)
}

// standardPriority gives the value of a priority name in a family, as
// nft's src/rule.c std_prios and bridge_std_prios.
func standardPriority(family, name string) (int, bool) {
	if family == "bridge" {
		switch name {
		case "dstnat":
			return -300, true
		case "filter":
			return -200, true
		case "out":
			return 100, true
		case "srcnat":
			return 300, true
		}
		return 0, false
	}
	switch name {
	case "raw":
		return -300, true
	case "mangle":
		return -150, true
	case "dstnat":
		return -100, true
	case "filter":
		return 0, true
	case "security":
		return 50, true
	case "srcnat":
		return 100, true
	}
	return 0, false
}
