package nflog

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// TraceTable is the nftables table hooktrace adds, in the inet family, to
// every namespace it traces. Its name is how `hooktrace cleanup` and the
// leftover check at start recognise it; nothing else of the user's is
// ever touched.
const TraceTable = "hooktrace"

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

// TraceScript returns the `nft -f` script that adds hooktrace's table:
// chains at the earliest priority of prerouting and output whose rules
// set `meta nftrace set 1` for the packets matches selects (from
// TranslateFilter), each under a rate limit (rate <= 0: none). Nothing in
// it changes a verdict: the chains accept, and only set the trace bit.
func TraceScript(matches []string, rate int) string {
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
	fmt.Fprintf(&b, "table inet %s {\n", TraceTable)
	for _, hook := range []string{"prerouting", "output"} {
		fmt.Fprintf(&b, "\tchain trace_%s {\n\t\ttype filter hook %s priority %d; policy accept;\n", hook, hook, tracePriority)
		for _, r := range rules {
			if r != "" {
				r += " "
			}
			fmt.Fprintf(&b, "\t\t%s%smeta nftrace set 1\n", r, limit)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// RemoveScript deletes hooktrace's table.
func RemoveScript() string {
	return fmt.Sprintf("delete table inet %s\n", TraceTable)
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
