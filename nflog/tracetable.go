package nflog

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// TraceTable is the nftables table hooktrace adds, in the inet and the
// bridge family, to every namespace it traces. Its name is how `hooktrace
// cleanup` and the leftover check at start recognise it; nothing else of
// the user's is ever touched.
const TraceTable = "hooktrace"

// TraceFamilies are the families hooktrace's table is added in: inet for
// routed and local packets, bridge for packets a bridge forwards (which
// the inet hooks see only with br_netfilter). A bridge created while
// hooktrace runs (docker0, cni0) is covered too; without bridges the
// bridge chains never run.
var TraceFamilies = []string{"inet", "bridge"}

// tracePriority is the earliest priority a base chain can have, so the
// trace bit is set before any of the user's chains sees the packet.
const tracePriority = -2147483648

// DefaultTraceRate bounds how many packets per second each trace rule
// marks, so that tracing cannot flood the host with events.
const DefaultTraceRate = 1000

// VXLAN ports, whose outer packets are traced when the inner packet
// matches: the kernel clears the trace bit on encapsulation and
// decapsulation, so the outer packet needs its own mark.
var vxlanPorts = "{ 4789, 8472 }"

// Offsets in bits, from the UDP header, of the inner IPv4 addresses of a
// VXLAN packet: UDP 8 + VXLAN 8 + Ethernet 14 bytes, then 12 and 16 into
// the IPv4 header.
const (
	vxlanInnerSrcBits = (8 + 8 + 14 + 12) * 8
	vxlanInnerDstBits = (8 + 8 + 14 + 16) * 8
)

// tracePriority and lastPriority are the earliest and the latest
// priorities a base chain can have: hooktrace's chains run before and
// after every chain of the user's at the same hook.
const lastPriority = 2147483647

// DefaultLogGroup is the first NFLOG group hooktrace tries for its own
// rules ("HT"); when another process holds it, the next ones are tried.
const DefaultLogGroup = 0x4854

// Log prefixes of hooktrace's NFLOG rules: the packet as it enters a hook
// (before any of the user's chains) and as it leaves it (after all).
const (
	LogPrefixFirst = "hooktrace first"
	LogPrefixLast  = "hooktrace last"
)

// tracedHooks are the inet hooks hooktrace's chains attach to.
var tracedHooks = []string{"prerouting", "input", "forward", "output", "postrouting"}

// TraceScript returns the `nft -f` script that adds hooktrace's table,
// in each of TraceFamilies.
//
// Chains at the earliest priority of prerouting and output set `meta
// nftrace set 1` for the packets matches selects (from TranslateFilter),
// each rule under a rate limit (rate <= 0: none). With logGroup >= 0,
// every hook (prerouting, input, forward, output, postrouting) also gets
// a chain at the earliest and one at the latest priority whose rules send
// the same packets to that NFLOG group, prefixed LogPrefixFirst or
// LogPrefixLast: the packet's headers as it enters and as it leaves the
// hook. Nothing in the script changes a verdict: every chain's policy is
// accept, and an accept in a base chain only ends that chain, not the
// user's chains at the same hook.
func TraceScript(matches []string, rate int, logGroup int) string {
	var rules []string
	for _, m := range matches {
		rules = append(rules, m)
		if inner, ok := vxlanInner(m); ok {
			rules = append(rules, inner)
		}
	}
	limit := ""
	if rate > 0 {
		limit = fmt.Sprintf("limit rate %d/second burst %d packets ", rate, rate)
	}
	var b strings.Builder
	chain := func(name, hook string, priority int, statements ...string) {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority %d; policy accept;\n", name, hook, priority)
		for _, st := range statements {
			for _, r := range rules {
				if r != "" {
					r += " "
				}
				fmt.Fprintf(&b, "\t\t%s%s%s\n", r, limit, st)
			}
		}
		b.WriteString("\t}\n")
	}
	// A packet that more than one rule selects is logged once: the first
	// rule that logs it ends hooktrace's chain, whose policy is accept
	// anyway, so the user's chains see the packet as before.
	logFirst := fmt.Sprintf("log prefix %q group %d accept", LogPrefixFirst, logGroup)
	logLast := fmt.Sprintf("log prefix %q group %d accept", LogPrefixLast, logGroup)
	for _, family := range TraceFamilies {
		fmt.Fprintf(&b, "table %s %s {\n", family, TraceTable)
		for _, hook := range tracedHooks {
			var first []string
			if hook == "prerouting" || hook == "output" {
				first = append(first, "meta nftrace set 1")
			}
			if logGroup >= 0 {
				first = append(first, logFirst)
			}
			if len(first) > 0 {
				chain("first_"+hook, hook, tracePriority, first...)
			}
			if logGroup >= 0 {
				chain("last_"+hook, hook, lastPriority, logLast)
			}
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// RemoveScript deletes hooktrace's table in each of families.
func RemoveScript(families []string) string {
	var b strings.Builder
	for _, f := range families {
		fmt.Fprintf(&b, "delete table %s %s\n", f, TraceTable)
	}
	return b.String()
}

// vxlanInner rewrites a rule made only of IPv4 address matches so that it
// matches the same addresses inside a VXLAN packet.
func vxlanInner(rule string) (string, bool) {
	f := strings.Fields(rule)
	if len(f) == 0 || len(f)%3 != 0 {
		return "", false
	}
	out := []string{"udp dport " + vxlanPorts}
	for i := 0; i < len(f); i += 3 {
		if f[i] != "ip" || (f[i+1] != "saddr" && f[i+1] != "daddr") {
			return "", false
		}
		off := vxlanInnerSrcBits
		if f[i+1] == "daddr" {
			off = vxlanInnerDstBits
		}
		m, ok := rawIPv4Match(off, f[i+2])
		if !ok {
			return "", false
		}
		out = append(out, m)
	}
	return strings.Join(out, " "), true
}

// rawIPv4Match matches an IPv4 address or prefix at a bit offset from
// the transport header.
func rawIPv4Match(off int, val string) (string, bool) {
	pfx, err := netip.ParsePrefix(val)
	if err != nil {
		a, err := netip.ParseAddr(val)
		if err != nil || !a.Is4() {
			return "", false
		}
		pfx = netip.PrefixFrom(a, 32)
	}
	if !pfx.Addr().Is4() {
		return "", false
	}
	a4 := pfx.Addr().As4()
	v := binary.BigEndian.Uint32(a4[:])
	if pfx.Bits() == 32 {
		return fmt.Sprintf("@th,%d,32 0x%08x", off, v), true
	}
	mask := ^uint32(0) << (32 - pfx.Bits())
	return fmt.Sprintf("@th,%d,32 & 0x%08x == 0x%08x", off, mask, v&mask), true
}

// IsOwn says whether a trace event comes from hooktrace's own table (in
// any of TraceFamilies) rather than from the user's rules.
func (t *Trace) IsOwn() bool {
	if t.Table != TraceTable {
		return false
	}
	fam := FamilyName(t.Family)
	for _, f := range TraceFamilies {
		if f == fam {
			return true
		}
	}
	return false
}
