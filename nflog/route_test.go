package nflog

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/hooktrace/hooktrace/fixtures/netns"
)

// routeLab is a router namespace (the one asked) and an outside
// namespace holding the far ends of its links:
//
//	hin   10.50.0.2/24 2001:db8:50::2/64  (peer hpeer .1 / ::1)
//	hout  10.60.0.1/24 2001:db8:60::1/64  (peer hfar  .2 / ::2)
//	hvpn  10.70.0.1/24                    (peer hvpnp .2)
type routeLab struct {
	t      *testing.T
	router string
}

func newRouteLab(t *testing.T) routeLab {
	t.Helper()
	netns.RequireRoot(t)
	r, o := netns.New(t, "hxtrt"), netns.New(t, "hxtro")
	netns.Veth(t, r, "hin", "10.50.0.2/24", o, "hpeer", "10.50.0.1/24")
	netns.Veth(t, r, "hout", "10.60.0.1/24", o, "hfar", "10.60.0.2/24")
	netns.Veth(t, r, "hvpn", "10.70.0.1/24", o, "hvpnp", "10.70.0.2/24")
	lab := routeLab{t: t, router: r}
	lab.ip("-6", "addr", "add", "2001:db8:50::2/64", "dev", "hin", "nodad")
	lab.ip("-6", "addr", "add", "2001:db8:60::1/64", "dev", "hout", "nodad")
	netns.Run(t, "ip", "-n", o, "-6", "addr", "add", "2001:db8:50::1/64", "dev", "hpeer", "nodad")
	return lab
}

// ip runs an ip command in the router namespace.
func (l routeLab) ip(args ...string) {
	l.t.Helper()
	netns.Run(l.t, append([]string{"ip", "-n", l.router}, args...)...)
}

// sysctl sets a sysctl inside the router namespace (gone with it).
func (l routeLab) sysctl(kv ...string) {
	l.t.Helper()
	netns.Run(l.t, append([]string{"ip", "netns", "exec", l.router, "sysctl", "-q", "-w"}, kv...)...)
}

func (l routeLab) lookup(q RouteQuery) RouteDecision {
	l.t.Helper()
	d, err := LookupRoute("/run/netns/"+l.router, q)
	if err != nil {
		l.t.Fatalf("LookupRoute(%+v): %v", q, err)
	}
	l.t.Logf("%+v -> %+v", q, d)
	return d
}

// ipGetArgs is `ip route get` for the query.
func ipGetArgs(ns string, q RouteQuery, fibmatch bool) []string {
	args := []string{"ip", "-n", ns}
	if q.Dst.Is6() {
		args = append(args, "-6")
	}
	args = append(args, "route", "get")
	if fibmatch {
		args = append(args, "fibmatch")
	}
	args = append(args, q.Dst.String())
	if q.Src.IsValid() {
		args = append(args, "from", q.Src.String())
	}
	if q.IIF != "" {
		args = append(args, "iif", q.IIF)
	}
	if q.Mark != 0 {
		args = append(args, "mark", "0x"+strings.TrimLeft(strings.ToLower(hex32(q.Mark)), "0"))
	}
	if q.Proto != 0 {
		args = append(args, "ipproto", ipProtoName(q.Proto))
	}
	if q.SPort != 0 {
		args = append(args, "sport", itoa(int(q.SPort)))
	}
	if q.DPort != 0 {
		args = append(args, "dport", itoa(int(q.DPort)))
	}
	return args
}

// ipGet runs `ip route get` and returns its first line, or what it said
// on failure ("RTNETLINK answers: " removed).
func ipGet(t *testing.T, ns string, q RouteQuery, fibmatch bool) (line string, refused string) {
	t.Helper()
	args := ipGetArgs(ns, q, fibmatch)
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	text := strings.TrimSpace(string(out))
	if err != nil {
		if !strings.HasPrefix(text, "RTNETLINK answers: ") {
			t.Fatalf("%s: %v %s", strings.Join(args, " "), err, text)
		}
		return "", strings.ToLower(strings.TrimPrefix(text, "RTNETLINK answers: "))
	}
	line, _, _ = strings.Cut(text, "\n")
	return strings.TrimSpace(line), ""
}

// wordAfter is the word after key in an ip output line.
func wordAfter(line, key string) string {
	w := strings.Fields(line)
	for i := 0; i+1 < len(w); i++ {
		if w[i] == key {
			return w[i+1]
		}
	}
	return ""
}

// agreeWithIP checks the decision against `ip route get` run beside it:
// type, table, device, gateway and the kernel's refusal; the matched
// route against `ip route get fibmatch`; the rule against `ip rule`.
func (l routeLab) agreeWithIP(q RouteQuery, d RouteDecision) {
	t := l.t
	t.Helper()
	line, refused := ipGet(t, l.router, q, false)
	if refused != "" {
		if !strings.HasPrefix(d.Error, refused) {
			t.Errorf("ip route get refused with %q; Error = %q", refused, d.Error)
		}
	} else {
		if d.Error != "" {
			t.Errorf("ip route get answered %q; Error = %q", line, d.Error)
		}
		typ := strings.Fields(line)[0]
		wantKind := map[string]string{"local": "local", "broadcast": "broadcast", "multicast": "multicast"}[typ]
		if wantKind == "" {
			wantKind = map[bool]string{true: "forward", false: "output"}[q.IIF != ""]
		}
		if d.Kind != wantKind {
			t.Errorf("Kind = %q; ip route get says %q", d.Kind, line)
		}
		table := wordAfter(line, "table")
		if table == "" {
			table = "main"
		}
		route := d.Route
		if table == "main" && d.Table == "local" && l.mergedLocal(d.Route) {
			table, route = "local", strings.Replace(route, " table local", "", 1)
		}
		if d.Table != table {
			t.Errorf("Table = %q; ip route get says %q", d.Table, line)
		}
		if dev := wordAfter(line, "dev"); d.Dev != dev {
			t.Errorf("Dev = %q; ip route get says %q", d.Dev, line)
		}
		gw := ""
		if d.Gateway.IsValid() {
			gw = d.Gateway.String()
		}
		if via := wordAfter(line, "via"); gw != via {
			t.Errorf("Gateway = %q; ip route get says %q", gw, line)
		}
		if fib, _ := ipGet(t, l.router, q, true); route != fib {
			t.Errorf("Route = %q; ip route get fibmatch says %q", d.Route, fib)
		}
	}
	if d.Rule != "" {
		family := "-4"
		if q.Dst.Is6() {
			family = "-6"
		}
		rules := strings.ReplaceAll(netns.Run(t, "ip", "-n", l.router, family, "rule"), "\t", " ")
		if !strings.Contains("\n"+rules, "\n"+d.Rule+"\n") {
			t.Errorf("Rule %q is not a line of ip rule:\n%s", d.Rule, rules)
		}
	}
}

// mergedLocal: while a namespace has only the default rules the kernel
// answers "main" for routes of the local table (fib_trie merges the two);
// LookupRoute says local when `ip route show table local` has the route.
func (l routeLab) mergedLocal(route string) bool {
	if rules := strings.TrimSpace(netns.Run(l.t, "ip", "-n", l.router, "-4", "rule")); strings.Count(rules, "\n") != 2 {
		return false // custom rules unmerge the tables: the kernel says local itself
	}
	show := netns.Run(l.t, "ip", "-n", l.router, "route", "show", "table", "local")
	for _, line := range strings.Split(show, "\n") {
		if strings.TrimSpace(line) == strings.Replace(route, " table local", "", 1) {
			return true
		}
	}
	return false
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func hex32(v uint32) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// check compares the fields a case cares about ("" and invalid skip).
func checkDecision(t *testing.T, got, want RouteDecision) {
	t.Helper()
	if got.Kind != want.Kind {
		t.Errorf("Kind = %q, want %q", got.Kind, want.Kind)
	}
	for _, f := range []struct{ name, got, want string }{
		{"Table", got.Table, want.Table},
		{"Rule", got.Rule, want.Rule},
		{"Route", got.Route, want.Route},
		{"Dev", got.Dev, want.Dev},
	} {
		if f.want != "" && f.got != f.want {
			t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
		}
	}
	if want.Gateway.IsValid() && got.Gateway != want.Gateway {
		t.Errorf("Gateway = %v, want %v", got.Gateway, want.Gateway)
	}
	if want.PrefSrc.IsValid() && got.PrefSrc != want.PrefSrc {
		t.Errorf("PrefSrc = %v, want %v", got.PrefSrc, want.PrefSrc)
	}
	if !strings.Contains(got.Error, want.Error) || (want.Error == "" && got.Error != "") {
		t.Errorf("Error = %q, want it to contain %q", got.Error, want.Error)
	}
	if !strings.Contains(got.Note, want.Note) {
		t.Errorf("Note = %q, want it to contain %q", got.Note, want.Note)
	}
}

func TestRouteLocalDelivery(t *testing.T) {
	lab := newRouteLab(t)
	for _, q := range []RouteQuery{
		{Src: addr("10.50.0.1"), Dst: addr("10.50.0.2"), IIF: "hin"},
		{Dst: addr("10.50.0.2")},
	} {
		d := lab.lookup(q)
		checkDecision(t, d, RouteDecision{
			Kind: "local", Table: "local", Rule: "0: from all lookup local", Dev: "lo",
			Route: "local 10.50.0.2 dev hin table local proto kernel scope host src 10.50.0.2",
		})
		lab.agreeWithIP(q, d)
	}
}

func TestRouteForward(t *testing.T) {
	lab := newRouteLab(t)
	lab.sysctl("net.ipv4.ip_forward=1")
	q := RouteQuery{Src: addr("10.50.0.1"), Dst: addr("10.60.0.2"), IIF: "hin", Proto: 6, SPort: 40000, DPort: 443}
	d := lab.lookup(q)
	checkDecision(t, d, RouteDecision{
		Kind: "forward", Table: "main", Rule: "32766: from all lookup main", Dev: "hout",
		Route: "10.60.0.0/24 dev hout proto kernel scope link src 10.60.0.1",
	})
	lab.agreeWithIP(q, d)
}

func TestRouteFwmarkPolicy(t *testing.T) {
	lab := newRouteLab(t)
	lab.ip("route", "add", "default", "via", "10.60.0.2")
	lab.ip("route", "add", "10.80.0.0/16", "via", "10.70.0.2", "table", "100")
	lab.ip("rule", "add", "fwmark", "0x1", "lookup", "100")
	marked := RouteQuery{Dst: addr("10.80.1.1"), Mark: 1}
	d := lab.lookup(marked)
	checkDecision(t, d, RouteDecision{
		Kind: "output", Table: "100", Rule: "32765: from all fwmark 0x1 lookup 100", Dev: "hvpn",
		Gateway: addr("10.70.0.2"), PrefSrc: addr("10.70.0.1"),
		Route: "10.80.0.0/16 via 10.70.0.2 dev hvpn table 100",
	})
	lab.agreeWithIP(marked, d)

	plain := RouteQuery{Dst: addr("10.80.1.1")}
	d = lab.lookup(plain)
	checkDecision(t, d, RouteDecision{
		Kind: "output", Table: "main", Rule: "32766: from all lookup main", Dev: "hout",
		Gateway: addr("10.60.0.2"), Route: "default via 10.60.0.2 dev hout",
	})
	lab.agreeWithIP(plain, d)
}

func TestRouteSourcePolicy(t *testing.T) {
	lab := newRouteLab(t)
	lab.sysctl("net.ipv4.ip_forward=1")
	lab.ip("route", "add", "default", "via", "10.60.0.2")
	lab.ip("route", "add", "default", "via", "10.70.0.2", "table", "200")
	lab.ip("rule", "add", "from", "10.50.0.0/24", "lookup", "200", "pref", "1000")
	from := RouteQuery{Src: addr("10.50.0.1"), Dst: addr("192.0.2.9"), IIF: "hin"}
	d := lab.lookup(from)
	checkDecision(t, d, RouteDecision{
		Kind: "forward", Table: "200", Rule: "1000: from 10.50.0.0/24 lookup 200", Dev: "hvpn",
		Gateway: addr("10.70.0.2"),
	})
	lab.agreeWithIP(from, d)

	other := RouteQuery{Src: addr("10.60.0.2"), Dst: addr("192.0.2.9"), IIF: "hout"}
	d = lab.lookup(other)
	checkDecision(t, d, RouteDecision{Kind: "forward", Table: "main", Rule: "32766: from all lookup main", Dev: "hout"})
	lab.agreeWithIP(other, d)
}

// TestRouteProtoPortPolicy: a TUN-mode proxy's kind of rule, on the
// protocol and port, which the kernel is asked about (RTA_IP_PROTO,
// RTA_DPORT).
func TestRouteProtoPortPolicy(t *testing.T) {
	lab := newRouteLab(t)
	lab.ip("route", "add", "default", "via", "10.60.0.2")
	lab.ip("route", "add", "default", "via", "10.70.0.2", "table", "300")
	lab.ip("rule", "add", "ipproto", "udp", "dport", "53", "lookup", "300", "pref", "300")
	dns := RouteQuery{Dst: addr("192.0.2.53"), Proto: 17, SPort: 5353, DPort: 53}
	d := lab.lookup(dns)
	checkDecision(t, d, RouteDecision{Kind: "output", Table: "300", Rule: "300: from all ipproto udp dport 53 lookup 300", Dev: "hvpn"})
	lab.agreeWithIP(dns, d)

	web := RouteQuery{Dst: addr("192.0.2.53"), Proto: 6, SPort: 5353, DPort: 443}
	d = lab.lookup(web)
	checkDecision(t, d, RouteDecision{Kind: "output", Table: "main", Rule: "32766: from all lookup main", Dev: "hout"})
	lab.agreeWithIP(web, d)
}

// TestRouteSuppressPrefixlength is wg-quick's policy: main is consulted
// first but its default route is ignored, so everything else goes to
// the tunnel's table, except the tunnel's own marked packets.
func TestRouteSuppressPrefixlength(t *testing.T) {
	lab := newRouteLab(t)
	lab.ip("route", "add", "default", "via", "10.60.0.2")
	lab.ip("route", "add", "default", "dev", "hvpn", "table", "51820")
	lab.ip("rule", "add", "not", "fwmark", "0xca6c", "lookup", "51820", "pref", "101")
	lab.ip("rule", "add", "lookup", "main", "suppress_prefixlength", "0", "pref", "100")
	for _, c := range []struct {
		q    RouteQuery
		want RouteDecision
	}{
		{RouteQuery{Dst: addr("192.0.2.1")}, RouteDecision{Kind: "output", Table: "51820", Rule: "101: not from all fwmark 0xca6c lookup 51820", Dev: "hvpn"}},
		{RouteQuery{Dst: addr("10.60.0.9")}, RouteDecision{Kind: "output", Table: "main", Rule: "100: from all lookup main suppress_prefixlength 0", Dev: "hout"}},
		{RouteQuery{Dst: addr("192.0.2.1"), Mark: 0xca6c}, RouteDecision{Kind: "output", Table: "main", Rule: "32766: from all lookup main", Dev: "hout"}},
	} {
		d := lab.lookup(c.q)
		checkDecision(t, d, c.want)
		lab.agreeWithIP(c.q, d)
	}
}

func TestRouteRefusingRoutes(t *testing.T) {
	lab := newRouteLab(t)
	lab.sysctl("net.ipv4.ip_forward=1")
	lab.ip("route", "add", "blackhole", "10.71.0.0/24")
	lab.ip("route", "add", "unreachable", "10.72.0.0/24")
	lab.ip("route", "add", "prohibit", "10.73.0.0/24", "table", "100")
	lab.ip("rule", "add", "to", "10.73.0.0/16", "lookup", "100", "pref", "500")
	for _, c := range []struct {
		q    RouteQuery
		want RouteDecision
	}{
		{RouteQuery{Dst: addr("10.71.0.1")}, RouteDecision{Kind: "blackhole", Table: "main", Rule: "32766: from all lookup main", Route: "blackhole 10.71.0.0/24", Error: "invalid argument"}},
		{RouteQuery{Src: addr("10.50.0.1"), Dst: addr("10.71.0.1"), IIF: "hin"}, RouteDecision{Kind: "blackhole", Table: "main", Route: "blackhole 10.71.0.0/24", Error: "invalid argument"}},
		{RouteQuery{Dst: addr("10.72.0.1")}, RouteDecision{Kind: "unreachable", Table: "main", Route: "unreachable 10.72.0.0/24", Error: "no route to host"}},
		{RouteQuery{Dst: addr("10.73.0.1")}, RouteDecision{Kind: "prohibit", Table: "100", Rule: "500: from all to 10.73.0.0/16 lookup 100", Route: "prohibit 10.73.0.0/24 table 100", Error: "permission denied"}},
		{RouteQuery{Dst: addr("198.51.100.1")}, RouteDecision{Kind: "error", Error: "network is unreachable"}},
		{RouteQuery{Src: addr("10.50.0.1"), Dst: addr("198.51.100.1"), IIF: "hin"}, RouteDecision{Kind: "error", Error: "network is unreachable"}},
	} {
		d := lab.lookup(c.q)
		checkDecision(t, d, c.want)
		if c.want.Kind == "error" && (d.Table != "" || d.Rule != "" || d.Route != "") {
			t.Errorf("no route at all, but Table %q Rule %q Route %q", d.Table, d.Rule, d.Route)
		}
		lab.agreeWithIP(c.q, d)
	}
}

func TestRouteRuleAction(t *testing.T) {
	lab := newRouteLab(t)
	lab.ip("rule", "add", "to", "192.0.2.0/24", "unreachable", "pref", "10")
	q := RouteQuery{Dst: addr("192.0.2.7")}
	d := lab.lookup(q)
	checkDecision(t, d, RouteDecision{Kind: "unreachable", Rule: "10: from all to 192.0.2.0/24 unreachable", Error: "network is unreachable"})
	lab.agreeWithIP(q, d)
}

func TestRouteInputRefused(t *testing.T) {
	lab := newRouteLab(t)
	lab.ip("route", "add", "default", "via", "10.60.0.2")
	lab.sysctl("net.ipv4.ip_forward=0")
	fwd := RouteQuery{Src: addr("10.50.0.1"), Dst: addr("10.60.0.2"), IIF: "hin"}
	d := lab.lookup(fwd)
	checkDecision(t, d, RouteDecision{Kind: "error", Table: "main", Rule: "32766: from all lookup main",
		Error: "no route to host; forwarding is disabled on hin (net.ipv4.conf.hin.forwarding=0)"})
	lab.agreeWithIP(fwd, d)

	lab.sysctl("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.hin.rp_filter=1")
	spoofed := RouteQuery{Src: addr("10.99.0.1"), Dst: addr("10.60.0.2"), IIF: "hin"}
	d = lab.lookup(spoofed)
	checkDecision(t, d, RouteDecision{Kind: "error", Table: "main",
		Error: "invalid argument; rp_filter=1 on hin: the route back to 10.99.0.1 leaves by hout, not hin (strict reverse-path check)"})
	lab.agreeWithIP(spoofed, d)
}

func TestRouteIPv6(t *testing.T) {
	lab := newRouteLab(t)
	local := RouteQuery{Src: addr("2001:db8:50::1"), Dst: addr("2001:db8:50::2"), IIF: "hin"}
	d := lab.lookup(local)
	checkDecision(t, d, RouteDecision{Kind: "local", Table: "local", Rule: "0: from all lookup local", Dev: "lo"})
	lab.agreeWithIP(local, d)

	fwd := RouteQuery{Src: addr("2001:db8:50::1"), Dst: addr("2001:db8:60::2"), IIF: "hin", Proto: 58}
	d = lab.lookup(fwd)
	checkDecision(t, d, RouteDecision{Kind: "forward", Table: "main", Rule: "32766: from all lookup main", Dev: "hout",
		Note: "IPv6 forwarding is disabled"})
	lab.agreeWithIP(fwd, d)

	lab.sysctl("net.ipv6.conf.all.forwarding=1")
	d = lab.lookup(fwd)
	if d.Note != "" {
		t.Errorf("forwarding on, but Note = %q", d.Note)
	}
	lab.agreeWithIP(fwd, d)

	lab.ip("-6", "rule", "add", "from", "2001:db8:50::/48", "lookup", "600", "pref", "600")
	lab.ip("-6", "route", "add", "2001:db8:60::/48", "dev", "hvpn", "table", "600")
	d = lab.lookup(fwd)
	checkDecision(t, d, RouteDecision{Kind: "forward", Table: "600", Rule: "600: from 2001:db8:50::/48 lookup 600", Dev: "hvpn"})
	lab.agreeWithIP(fwd, d)
}

// TestRouteRulesRender renders every rule of a namespace with unusual
// selectors and actions and compares with `ip rule` line by line.
func TestRouteRulesRender(t *testing.T) {
	lab := newRouteLab(t)
	lab.ip("rule", "add", "not", "from", "10.1.2.3", "to", "10.3.0.0/16", "iif", "hin", "oif", "hout", "ipproto", "udp",
		"sport", "100-200", "dport", "53", "uidrange", "10-20", "fwmark", "0x4/0xf", "lookup", "100", "suppress_prefixlength", "0", "pref", "5")
	lab.ip("rule", "add", "pref", "6", "goto", "1000")
	lab.ip("rule", "add", "pref", "7", "blackhole", "iif", "nonexist")
	lab.ip("rule", "add", "pref", "8", "tos", "0x10", "nop")
	lab.ip("rule", "add", "pref", "9", "to", "10.0.0.1", "table", "1234", "proto", "99")
	lab.ip("rule", "add", "pref", "1000", "from", "10.50.0.0/24", "lookup", "200")
	lab.ip("rule", "add", "pref", "1001", "prohibit", "fwmark", "7")
	lab.ip("-6", "rule", "add", "from", "2001:db8::/32", "to", "2001:db8:1::1", "lookup", "7", "pref", "3")
	for _, family := range []uint8{2, 10} {
		c, err := dialRoute("/run/netns/" + lab.router)
		if err != nil {
			t.Fatal(err)
		}
		s := newRouteSession(c, lab.router)
		rules, err := s.rules(family)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rules {
			got = append(got, r.String())
		}
		flag := map[uint8]string{2: "-4", 10: "-6"}[family]
		want := strings.Split(strings.TrimSpace(strings.ReplaceAll(netns.Run(t, "ip", "-n", lab.router, flag, "rule"), "\t", " ")), "\n")
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("family %d rules:\n%s\nip rule:\n%s", family, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

func TestRouteErrors(t *testing.T) {
	lab := newRouteLab(t)
	if _, err := LookupRoute("/run/netns/"+lab.router, RouteQuery{Dst: addr("10.50.0.1"), IIF: "nosuchdev"}); err == nil || !strings.Contains(err.Error(), "nosuchdev") {
		t.Errorf("unknown input interface: err = %v", err)
	}
	if _, err := LookupRoute("/run/netns/hxt-no-such-namespace", RouteQuery{Dst: addr("10.50.0.1")}); err == nil {
		t.Error("namespace that does not exist: no error")
	}
	if _, err := LookupRoute("", RouteQuery{Src: addr("::1"), Dst: addr("10.50.0.1")}); err == nil {
		t.Error("mixed families: no error")
	}
}
