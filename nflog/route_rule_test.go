package nflog

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func rule(prio uint32, table uint32) policyRule {
	return policyRule{Family: unix.AF_INET, Priority: prio, Table: table, Action: unix.FR_ACT_TO_TBL, SuppressPrefixlen: -1, SuppressIfgroup: -1}
}

func TestRouteRuleString(t *testing.T) {
	withMark := rule(32765, 100)
	withMark.Mark, withMark.Mask = 1, 0xffffffff
	masked := rule(5, 100)
	masked.Invert, masked.Mark, masked.Mask = true, 4, 0xf
	masked.Src, masked.SrcLen = netip.MustParsePrefix("10.1.2.3/32"), 32
	masked.Dst, masked.DstLen = netip.MustParsePrefix("10.3.0.0/16"), 16
	masked.IIF, masked.OIF = "hin", "hout"
	masked.HasUID, masked.UID.Start, masked.UID.End = true, 10, 20
	masked.IPProto, masked.SPort, masked.DPort = 17, portRange{100, 200, true}, portRange{53, 53, true}
	masked.SuppressPrefixlen = 0
	gotoRule := rule(6, 0)
	gotoRule.Action, gotoRule.Goto, gotoRule.HasGoto = unix.FR_ACT_GOTO, 1000, true
	detached := rule(7, 0)
	detached.Action, detached.IIF, detached.IIFDetached = unix.FR_ACT_BLACKHOLE, "nonexist", true
	nop := rule(8, 0)
	nop.Action, nop.TOS = unix.FR_ACT_NOP, 0x10
	proto := rule(9, 1234)
	proto.Dst, proto.DstLen, proto.Protocol = netip.MustParsePrefix("10.0.0.1/32"), 32, 99
	v6 := rule(32765, 7)
	v6.Family, v6.Src, v6.SrcLen = unix.AF_INET6, netip.MustParsePrefix("2001:db8::/32"), 32
	l3 := rule(1000, 0)
	l3.L3mdev = true
	for _, c := range []struct {
		r    policyRule
		want string
	}{
		{rule(0, 255), "0: from all lookup local"},
		{rule(32766, 254), "32766: from all lookup main"},
		{rule(32767, 253), "32767: from all lookup default"},
		{withMark, "32765: from all fwmark 0x1 lookup 100"},
		{masked, "5: not from 10.1.2.3 to 10.3.0.0/16 fwmark 0x4/0xf iif hin oif hout uidrange 10-20 ipproto udp sport 100-200 dport 53 lookup 100 suppress_prefixlength 0"},
		{gotoRule, "6: from all goto 1000"},
		{detached, "7: from all iif nonexist [detached] blackhole"},
		{nop, "8: from all tos 0x10 nop"},
		{proto, "9: from all to 10.0.0.1 lookup 1234 proto openr"},
		{v6, "32765: from 2001:db8::/32 lookup 7"},
		{l3, "1000: from all lookup [l3mdev-table]"},
	} {
		if got := c.r.String(); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

func TestRouteRuleMatches(t *testing.T) {
	out := ruleFlow{Dst: netip.MustParseAddr("192.0.2.1"), IIF: "lo", Proto: 17, SPort: 5000, DPort: 53}
	in := ruleFlow{Src: netip.MustParseAddr("10.50.0.1"), Dst: netip.MustParseAddr("192.0.2.1"), IIF: "hin", Mark: 0x15, UID: 0xffffffff}
	mark := rule(1, 100)
	mark.Mark, mark.Mask = 0x5, 0xf
	exactMark := rule(1, 100)
	exactMark.Mark, exactMark.Mask = 0x5, 0xffffffff
	from := rule(1, 100)
	from.Src, from.SrcLen = netip.MustParsePrefix("10.50.0.0/24"), 24
	notFrom := from
	notFrom.Invert = true
	iif := rule(1, 100)
	iif.IIF = "hin"
	iifLo := rule(1, 100)
	iifLo.IIF = "lo"
	detached := iif
	detached.IIFDetached = true
	oif := rule(1, 100)
	oif.OIF = "hout"
	dport := rule(1, 100)
	dport.IPProto, dport.DPort = 17, portRange{50, 60, true}
	tcp := rule(1, 100)
	tcp.IPProto = 6
	uid := rule(1, 100)
	uid.HasUID, uid.UID.End = true, 1000
	to := rule(1, 100)
	to.Dst, to.DstLen = netip.MustParsePrefix("192.0.2.0/24"), 24
	from6 := rule(1, 100)
	from6.Family, from6.Src, from6.SrcLen = unix.AF_INET6, netip.MustParsePrefix("2001:db8::/32"), 32
	out6 := ruleFlow{Dst: netip.MustParseAddr("2001:db8::1"), IIF: "lo"}
	for _, c := range []struct {
		name string
		r    policyRule
		f    ruleFlow
		want bool
	}{
		{"all", rule(1, 100), out, true},
		{"fwmark/mask matches masked bits", mark, in, true},
		{"fwmark without mask is exact", exactMark, in, false},
		{"fwmark on unmarked", mark, out, false},
		{"from prefix", from, in, true},
		{"from prefix, no source", from, out, false},
		{"not from", notFrom, out, true},
		{"iif", iif, in, true},
		{"iif on a sent packet", iif, out, false},
		{"iif lo matches a sent packet", iifLo, out, true},
		{"detached iif", detached, in, false},
		{"oif never matches a lookup without one", oif, out, false},
		{"ipproto and dport range", dport, out, true},
		{"ipproto other", tcp, out, false},
		{"uidrange, root sends", uid, out, true},
		{"uidrange, arrived packet has no user", uid, in, false},
		{"to prefix", to, out, true},
		{"ipv6 from, no source", from6, out6, false},
	} {
		if got := c.r.matches(c.f); got != c.want {
			t.Errorf("%s: %s matches = %v, want %v", c.name, c.r, got, c.want)
		}
	}
}

func TestRouteWalkRules(t *testing.T) {
	f := ruleFlow{Dst: netip.MustParseAddr("192.0.2.1"), IIF: "lo", Mark: 0xca6c}
	deflt := routeEntry{Type: unix.RTN_UNICAST, Table: 254}
	host := routeEntry{Type: unix.RTN_UNICAST, Table: 254, DstLen: 24}
	suppress := rule(100, 254)
	suppress.SuppressPrefixlen = 0
	notMark := rule(101, 51820)
	notMark.Mark, notMark.Mask, notMark.Invert = 0xca6c, 0xffffffff, true
	gotoMain := rule(10, 0)
	gotoMain.Action, gotoMain.Goto, gotoMain.HasGoto = unix.FR_ACT_GOTO, 32766, true
	unresolved := rule(10, 0)
	unresolved.Action, unresolved.Goto, unresolved.HasGoto = unix.FR_ACT_GOTO, 20000, true
	blackhole := rule(50, 0)
	blackhole.Action = unix.FR_ACT_BLACKHOLE
	tables := func(m map[uint32]routeEntry) tableLookup {
		return func(t uint32) (routeEntry, bool) { e, ok := m[t]; return e, ok }
	}
	for _, c := range []struct {
		name     string
		rules    []policyRule
		lookup   tableLookup
		want     uint32 // priority of the deciding rule
		hasRoute bool
		ok       bool
	}{
		{"table without route falls through", []policyRule{rule(0, 255), rule(32765, 100), rule(32766, 254)},
			tables(map[uint32]routeEntry{254: deflt}), 32766, true, true},
		{"suppressed default route falls through", []policyRule{suppress, rule(32766, 254)},
			tables(map[uint32]routeEntry{254: deflt}), 32766, true, true},
		{"longer prefix is not suppressed", []policyRule{suppress, rule(32766, 254)},
			tables(map[uint32]routeEntry{254: host}), 100, true, true},
		{"throw falls through", []policyRule{rule(5, 100), rule(32766, 254)},
			tables(map[uint32]routeEntry{100: {Type: unix.RTN_THROW, Table: 100}, 254: deflt}), 32766, true, true},
		{"blackhole route is not suppressed", []policyRule{suppress},
			tables(map[uint32]routeEntry{254: {Type: unix.RTN_BLACKHOLE, Table: 254}}), 100, true, true},
		{"goto skips to its target", []policyRule{gotoMain, rule(20, 100), rule(32766, 254)},
			tables(map[uint32]routeEntry{100: deflt, 254: deflt}), 32766, true, true},
		{"unresolved goto is skipped", []policyRule{unresolved, rule(20, 100)},
			tables(map[uint32]routeEntry{100: deflt}), 20, true, true},
		{"rule action ends the walk", []policyRule{blackhole, rule(32766, 254)},
			tables(map[uint32]routeEntry{254: deflt}), 50, false, true},
		{"marked packet skips not-fwmark rule", []policyRule{notMark, rule(32766, 254)},
			tables(map[uint32]routeEntry{51820: deflt, 254: deflt}), 32766, true, true},
		{"no table has a route", []policyRule{rule(0, 255), rule(32766, 254)},
			tables(nil), 0, false, false},
	} {
		r, _, hasRoute, ok := walkRules(c.rules, f, c.lookup)
		if ok != c.ok || hasRoute != c.hasRoute || (ok && r.Priority != c.want) {
			t.Errorf("%s: rule %q hasRoute %v ok %v; want priority %d hasRoute %v ok %v", c.name, r, hasRoute, ok, c.want, c.hasRoute, c.ok)
		}
	}
}

func TestRouteText(t *testing.T) {
	names := func(i uint32) string { return map[uint32]string{2: "hout", 3: "hin"}[i] }
	for _, c := range []struct {
		e    routeEntry
		want string
	}{
		{routeEntry{Type: unix.RTN_UNICAST, Table: 254, Protocol: unix.RTPROT_BOOT, Gateway: netip.MustParseAddr("10.60.0.2"), OIF: 2, Pref: -1},
			"default via 10.60.0.2 dev hout"},
		{routeEntry{Type: unix.RTN_LOCAL, Table: 255, Protocol: unix.RTPROT_KERNEL, Scope: unix.RT_SCOPE_HOST, Dst: netip.MustParsePrefix("10.50.0.2/32"), DstLen: 32,
			OIF: 3, PrefSrc: netip.MustParseAddr("10.50.0.2"), Pref: -1}, "local 10.50.0.2 dev hin table local proto kernel scope host src 10.50.0.2"},
		{routeEntry{Type: unix.RTN_BLACKHOLE, Table: 100, Protocol: unix.RTPROT_BOOT, Dst: netip.MustParsePrefix("10.71.0.0/24"), DstLen: 24, Pref: -1},
			"blackhole 10.71.0.0/24 table 100"},
		{routeEntry{Type: unix.RTN_UNICAST, Table: 254, Protocol: unix.RTPROT_KERNEL, Dst: netip.MustParsePrefix("2001:db8:60::/64"), DstLen: 64,
			OIF: 2, Priority: 256, HasPrio: true, IIF: 3, Pref: 0}, "2001:db8:60::/64 dev hout proto kernel metric 256 iif hin pref medium"},
	} {
		if got := routeText(c.e, names); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

func TestBestRoute(t *testing.T) {
	p := netip.MustParsePrefix
	routes := []routeEntry{
		{Table: 254, Type: unix.RTN_UNICAST, Priority: 0},
		{Table: 254, Type: unix.RTN_UNICAST, Dst: p("10.0.0.0/8"), DstLen: 8, Priority: 100, OIF: 1},
		{Table: 254, Type: unix.RTN_UNICAST, Dst: p("10.0.0.0/8"), DstLen: 8, Priority: 10, OIF: 2},
		{Table: 254, Type: unix.RTN_BLACKHOLE, Dst: p("10.9.0.0/16"), DstLen: 16, TOS: 0x10},
		{Table: 100, Type: unix.RTN_UNICAST, Dst: p("10.9.9.0/24"), DstLen: 24},
	}
	f := func(dst string) ruleFlow { return ruleFlow{Dst: netip.MustParseAddr(dst)} }
	if e, ok := bestRoute(routes, 254, f("10.9.1.1")); !ok || e.OIF != 2 {
		t.Errorf("10.9.1.1: got %+v %v, want the /8 of metric 10 (the tos route does not apply)", e, ok)
	}
	if e, ok := bestRoute(routes, 254, f("192.0.2.1")); !ok || e.DstLen != 0 {
		t.Errorf("192.0.2.1: got %+v %v, want the default route", e, ok)
	}
	if _, ok := bestRoute(routes, 100, f("192.0.2.1")); ok {
		t.Error("table 100 has no route to 192.0.2.1")
	}
}
