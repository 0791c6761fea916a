package nflog

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The trace rules set the trace bit only for the packets the user's
// filter selects. nftables cannot run a tcpdump expression, so the
// expression is translated: parsed into primitives joined by and, or and
// not, brought into disjunctive normal form, and each conjunction becomes
// one nft rule. Expressions outside the supported subset are refused with
// an error that says which part, rather than traced wrongly.

// conj is a conjunction of matches; dnf is a disjunction of them.
type conj []string
type dnf []conj

func (d dnf) and(e dnf) dnf {
	var out dnf
	for _, a := range d {
		for _, b := range e {
			out = append(out, append(append(conj{}, a...), b...))
		}
	}
	return out
}

// node is a parsed filter expression.
type node interface {
	// rules returns the node, or its negation, in DNF.
	dnf(negated bool) (dnf, error)
}

type andNode struct{ l, r node }
type orNode struct{ l, r node }
type notNode struct{ x node }
type leaf struct {
	text string // the primitive as written, for errors
	pos  dnf    // the primitive
	neg  dnf    // its negation
}

func (n andNode) dnf(neg bool) (dnf, error) {
	if neg {
		return orNode{notNode{n.l}, notNode{n.r}}.dnf(false)
	}
	l, err := n.l.dnf(false)
	if err != nil {
		return nil, err
	}
	r, err := n.r.dnf(false)
	if err != nil {
		return nil, err
	}
	return l.and(r), nil
}

func (n orNode) dnf(neg bool) (dnf, error) {
	if neg {
		return andNode{notNode{n.l}, notNode{n.r}}.dnf(false)
	}
	l, err := n.l.dnf(false)
	if err != nil {
		return nil, err
	}
	r, err := n.r.dnf(false)
	if err != nil {
		return nil, err
	}
	return append(l, r...), nil
}

func (n notNode) dnf(neg bool) (dnf, error) { return n.x.dnf(!neg) }

func (n leaf) dnf(neg bool) (dnf, error) {
	if neg {
		if n.neg == nil {
			return nil, fmt.Errorf("cannot negate %q in nftables matches", n.text)
		}
		return n.neg, nil
	}
	return n.pos, nil
}

// maxTraceRules bounds how many rules one expression may expand to.
const maxTraceRules = 64

// TranslateFilter turns a tcpdump expression into nft matches, one string
// per rule; any rule matching selects the packet. An empty expression
// gives one empty match (everything). It supports host, net, port and
// portrange (with src/dst), the protocols ip, ip6, tcp, udp, sctp, icmp and
// icmp6, "proto N", and, or, not and parentheses.
func TranslateFilter(expr string) ([]string, error) {
	toks := tokenize(expr)
	if len(toks) == 0 {
		return []string{""}, nil
	}
	p := &filterParser{toks: toks}
	n, err := p.or()
	if err != nil {
		return nil, fmt.Errorf("translate filter %q for tracing: %w", expr, err)
	}
	if p.i < len(p.toks) {
		return nil, fmt.Errorf("translate filter %q for tracing: unexpected %q", expr, p.toks[p.i])
	}
	d, err := n.dnf(false)
	if err != nil {
		return nil, fmt.Errorf("translate filter %q for tracing: %w", expr, err)
	}
	if len(d) > maxTraceRules {
		return nil, fmt.Errorf("translate filter %q for tracing: it expands to %d rules, more than %d", expr, len(d), maxTraceRules)
	}
	out := make([]string, 0, len(d))
	seen := map[string]bool{}
	for _, c := range d {
		r := strings.Join(c.simplify(), " ")
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out, nil
}

func tokenize(s string) []string {
	var toks []string
	cur := strings.Builder{}
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '(' || c == ')' || c == '!':
			flush()
			toks = append(toks, string(c))
		case c == '&' && i+1 < len(s) && s[i+1] == '&':
			flush()
			toks = append(toks, "and")
			i++
		case c == '|' && i+1 < len(s) && s[i+1] == '|':
			flush()
			toks = append(toks, "or")
			i++
		case c == ' ' || c == '\t' || c == '\n':
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return toks
}

type filterParser struct {
	toks []string
	i    int
}

func (p *filterParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *filterParser) next() string {
	t := p.peek()
	p.i++
	return t
}

func (p *filterParser) or() (node, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek() == "or" {
		p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
	return l, nil
}

func (p *filterParser) and() (node, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t == "and" {
			p.next()
		} else if t == "" || t == "or" || t == ")" {
			return l, nil
		}
		// tcpdump reads juxtaposed primitives ("tcp port 80") as and.
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
}

func (p *filterParser) unary() (node, error) {
	switch p.peek() {
	case "not", "!":
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	case "(":
		p.next()
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.next() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		return x, nil
	case "":
		return nil, fmt.Errorf("expression ends early")
	}
	return p.primitive()
}

// primitive parses [src|dst] [host|net|port|portrange] VALUE or a protocol.
func (p *filterParser) primitive() (node, error) {
	start := p.i
	dir := ""
	if t := p.peek(); t == "src" || t == "dst" {
		dir = p.next()
		if t2 := p.peek(); t2 == "or" || t2 == "and" {
			return nil, fmt.Errorf("%q: \"src or dst\"/\"src and dst\" qualifiers are not supported; write host X", t+" "+t2)
		}
	}
	kind := p.peek()
	switch kind {
	case "host", "net", "port", "portrange":
		p.next()
	case "ip", "ip6", "tcp", "udp", "sctp", "icmp", "icmp6":
		if dir != "" {
			return nil, fmt.Errorf("%q needs host, net or port", dir+" "+kind)
		}
		p.next()
		return protoLeaf(kind)
	case "proto":
		p.next()
		return protoNumberLeaf(p.next())
	default:
		if dir == "" {
			return nil, fmt.Errorf("%q is not in the subset hooktrace can trace with nftables", kind)
		}
		kind = "host" // "src 10.0.0.1" means src host
	}
	val := p.next()
	if val == "" {
		return nil, fmt.Errorf("%s needs a value", kind)
	}
	text := strings.Join(p.toks[start:p.i], " ")
	switch kind {
	case "host":
		return addrLeaf(text, dir, val, false)
	case "net":
		if p.peek() == "mask" {
			return nil, fmt.Errorf("%q: write the net as a prefix (10.0.0.0/8)", text)
		}
		return addrLeaf(text, dir, val, true)
	case "port", "portrange":
		return portLeaf(text, dir, val, kind == "portrange")
	}
	return nil, fmt.Errorf("%q is not supported", text)
}

func protoLeaf(kind string) (node, error) {
	m := map[string]string{
		"ip": "meta nfproto ipv4", "ip6": "meta nfproto ipv6", "tcp": "meta l4proto tcp",
		"udp": "meta l4proto udp", "sctp": "meta l4proto sctp", "icmp": "meta l4proto icmp",
		"icmp6": "meta l4proto ipv6-icmp",
	}[kind]
	return leaf{text: kind, pos: dnf{{m}}, neg: dnf{{negateMeta(m)}}}, nil
}

// negateMeta turns "meta l4proto tcp" into "meta l4proto != tcp".
func negateMeta(m string) string {
	i := strings.LastIndexByte(m, ' ')
	return m[:i] + " != " + m[i+1:]
}

func protoNumberLeaf(v string) (node, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 255 {
		return nil, fmt.Errorf("proto %q: give a protocol number", v)
	}
	m := "meta l4proto " + strconv.Itoa(n)
	return leaf{text: "proto " + v, pos: dnf{{m}}, neg: dnf{{negateMeta(m)}}}, nil
}

// addrLeaf matches an address or prefix as source, destination or either.
func addrLeaf(text, dir, val string, isNet bool) (node, error) {
	var fam string
	if isNet {
		pfx, err := netip.ParsePrefix(val)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", text, err)
		}
		fam = "ip"
		if pfx.Addr().Is6() {
			fam = "ip6"
		}
		val = pfx.Masked().String()
	} else {
		a, err := netip.ParseAddr(val)
		if err != nil {
			return nil, fmt.Errorf("%q: hooktrace traces addresses, not names", text)
		}
		fam = "ip"
		if a.Is6() {
			fam = "ip6"
		}
	}
	src, dst := fam+" saddr "+val, fam+" daddr "+val
	nsrc, ndst := fam+" saddr != "+val, fam+" daddr != "+val
	switch dir {
	case "src":
		return leaf{text: text, pos: dnf{{src}}, neg: dnf{{nsrc}}}, nil
	case "dst":
		return leaf{text: text, pos: dnf{{dst}}, neg: dnf{{ndst}}}, nil
	}
	return leaf{text: text, pos: dnf{{src}, {dst}}, neg: dnf{{nsrc, ndst}}}, nil
}

// portProtos is the protocol context port matches need.
const portProtos = "meta l4proto { tcp, udp, sctp }"

// simplify drops the generic port context where the conjunction names
// its protocol, and repeated terms.
func (c conj) simplify() conj {
	specific := false
	for _, t := range c {
		switch t {
		case "meta l4proto tcp", "meta l4proto udp", "meta l4proto sctp":
			specific = true
		}
	}
	var out conj
	seen := map[string]bool{}
	for _, t := range c {
		if seen[t] || (specific && t == portProtos) {
			continue
		}
		seen[t] = true
		out = append(out, t)
	}
	return out
}

// portLeaf matches TCP, UDP or SCTP ports.
func portLeaf(text, dir, val string, isRange bool) (node, error) {
	if isRange {
		lo, hi, ok := strings.Cut(val, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if !ok || err1 != nil || err2 != nil || a < 0 || b > 65535 || a > b {
			return nil, fmt.Errorf("%q: give a range such as 8000-8080", text)
		}
		val = fmt.Sprintf("%d-%d", a, b)
	} else if n, err := strconv.Atoi(val); err != nil || n < 0 || n > 65535 {
		return nil, fmt.Errorf("%q: give a port number", text)
	}
	l4 := portProtos
	sp, dp := "th sport "+val, "th dport "+val
	nsp, ndp := "th sport != "+val, "th dport != "+val
	// A packet without ports matches "not port N", as in tcpdump.
	noPorts := "meta l4proto != { tcp, udp, sctp }"
	switch dir {
	case "src":
		return leaf{text: text, pos: dnf{{l4, sp}}, neg: dnf{{noPorts}, {l4, nsp}}}, nil
	case "dst":
		return leaf{text: text, pos: dnf{{l4, dp}}, neg: dnf{{noPorts}, {l4, ndp}}}, nil
	}
	return leaf{text: text, pos: dnf{{l4, sp}, {l4, dp}}, neg: dnf{{noPorts}, {l4, nsp, ndp}}}, nil
}
