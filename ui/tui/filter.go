package tui

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hooktrace/hooktrace/capture/filter"
	"github.com/hooktrace/hooktrace/decode"
)

// filterSnaplen is the snap length display filters are compiled for.
const filterSnaplen = 262144

// displayFilter decides which loaded packets the list shows: a tcpdump
// expression (as `tcpdump -r` applies it), journey fields, or both
// joined with and/or/not and parentheses.
type displayFilter struct {
	text  string
	match func(s *store, i int) bool
	// journeys is set when the filter asks about journeys: rows must be
	// checked again as their journeys close.
	journeys bool
}

// journeyFields are the fields a display filter may compare.
var journeyFields = map[string]bool{"outcome": true, "netns": true, "chain": true, "hook": true, "vni": true, "reason": true, "iface": true}

var outcomes = map[string]bool{"delivered": true, "forwarded": true, "sent": true, "dropped": true, "rejected": true, "unknown": true, "none": true}

// compileFilter parses expr; an empty expr shows everything (nil).
func compileFilter(expr string) (*displayFilter, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return nil, nil
	}
	toks := tokenize(expr)
	p := &filterParser{toks: toks}
	hasJ := false
	for i := range toks {
		if p.isTerm(i) {
			hasJ = true
		}
	}
	if !hasJ {
		m, err := bpfMatcher(expr)
		if err != nil {
			return nil, err
		}
		return &displayFilter{text: expr, match: m}, nil
	}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.pos < len(toks) {
		return nil, fmt.Errorf("unexpected %q", toks[p.pos])
	}
	m, err := p.compile(n)
	if err != nil {
		return nil, err
	}
	return &displayFilter{text: expr, match: m, journeys: true}, nil
}

// tokenize splits a filter into words, parentheses (outside brackets)
// and the operators ==, !=, =, &&, ||, !.
func tokenize(s string) []string {
	var toks []string
	depth := 0 // inside [ ]
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
		case c == '[':
			depth++
			cur.WriteByte(c)
		case c == ']':
			depth--
			cur.WriteByte(c)
		case depth > 0:
			cur.WriteByte(c)
		case c == ' ' || c == '\t':
			flush()
		case c == '(' || c == ')':
			flush()
			toks = append(toks, string(c))
		case i+1 < len(s) && (s[i:i+2] == "==" || s[i:i+2] == "!=" || s[i:i+2] == "&&" || s[i:i+2] == "||"):
			flush()
			toks = append(toks, s[i:i+2])
			i++
		case c == '=' || c == '!':
			flush()
			toks = append(toks, string(c))
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return toks
}

// node is a parsed filter: a connective, a journey comparison, or a run
// of tcpdump tokens; start and end are its span of tokens.
type node struct {
	op         string // "and", "or", "not", "term", "raw", "group"
	kids       []*node
	start, end int
}

type filterParser struct {
	toks []string
	pos  int
}

func (p *filterParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func isConnective(t string) bool {
	return t == "and" || t == "or" || t == "&&" || t == "||"
}

// isTerm says whether a journey comparison starts at token i.
func (p *filterParser) isTerm(i int) bool {
	if i+2 >= len(p.toks) {
		return false
	}
	op := p.toks[i+1]
	return journeyFields[p.toks[i]] && (op == "==" || op == "!=" || op == "=")
}

// expr: unary ((and|or) unary)*, left-associative with equal
// precedence, as in tcpdump.
func (p *filterParser) expr() (*node, error) {
	start := p.pos
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for isConnective(p.peek()) {
		op := p.toks[p.pos]
		if op == "&&" {
			op = "and"
		} else if op == "||" {
			op = "or"
		}
		p.pos++
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		left = &node{op: op, kids: []*node{left, right}, start: start, end: p.pos}
	}
	return left, nil
}

func (p *filterParser) unary() (*node, error) {
	start := p.pos
	switch t := p.peek(); {
	case t == "":
		return nil, errors.New("expression ends too soon")
	case t == "not" || t == "!":
		p.pos++
		k, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &node{op: "not", kids: []*node{k}, start: start, end: p.pos}, nil
	case t == "(":
		p.pos++
		k, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, errors.New("missing )")
		}
		p.pos++
		return &node{op: "group", kids: []*node{k}, start: start, end: p.pos}, nil
	case p.isTerm(p.pos):
		p.pos += 3
		return &node{op: "term", start: start, end: p.pos}, nil
	case t == ")" || isConnective(t):
		return nil, fmt.Errorf("unexpected %q", t)
	}
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		if isConnective(t) || t == "(" || t == ")" || p.isTerm(p.pos) {
			break
		}
		p.pos++
	}
	return &node{op: "raw", start: start, end: p.pos}, nil
}

func hasTerm(n *node) bool {
	if n.op == "term" {
		return true
	}
	for _, k := range n.kids {
		if hasTerm(k) {
			return true
		}
	}
	return false
}

// compile turns a tree into a matcher. A subtree without journey terms
// is handed to libpcap whole, so tcpdump's own rules (such as "host a or
// b") hold inside it.
func (p *filterParser) compile(n *node) (func(*store, int) bool, error) {
	if !hasTerm(n) {
		return bpfMatcher(strings.Join(p.toks[n.start:n.end], " "))
	}
	switch n.op {
	case "term":
		return termMatcher(p.toks[n.start], p.toks[n.start+1], p.toks[n.start+2])
	case "group":
		return p.compile(n.kids[0])
	case "not":
		k, err := p.compile(n.kids[0])
		if err != nil {
			return nil, err
		}
		return func(s *store, i int) bool { return !k(s, i) }, nil
	}
	a, err := p.compile(n.kids[0])
	if err != nil {
		return nil, err
	}
	b, err := p.compile(n.kids[1])
	if err != nil {
		return nil, err
	}
	if n.op == "and" {
		return func(s *store, i int) bool { return a(s, i) && b(s, i) }, nil
	}
	return func(s *store, i int) bool { return a(s, i) || b(s, i) }, nil
}

// bpfMatcher compiles a tcpdump expression.
func bpfMatcher(expr string) (func(*store, int) bool, error) {
	set, err := filter.NewSet(expr, filterSnaplen)
	if err != nil {
		var se *filter.SyntaxError
		if errors.As(err, &se) {
			return nil, se
		}
		return nil, err
	}
	return func(s *store, i int) bool {
		r := &s.rows[i]
		ok, _ := set.Match(int(r.lt), s.data(i), int(r.wirelen))
		return ok
	}, nil
}

// termMatcher compiles one journey comparison.
func termMatcher(field, op, val string) (func(*store, int) bool, error) {
	var m func(s *store, i int) bool
	switch field {
	case "outcome":
		if !outcomes[val] {
			return nil, fmt.Errorf("outcome %q: one of delivered, forwarded, sent, dropped, rejected, unknown, none", val)
		}
		want := decode.Outcome(val)
		if val == "none" {
			want = ""
		}
		m = func(s *store, i int) bool { return s.outcome(i) == want }
	case "vni":
		n, err := strconv.ParseUint(val, 0, 24)
		if err != nil {
			return nil, fmt.Errorf("vni %q: a number below 16777216", val)
		}
		attr := "vni=" + strconv.FormatUint(n, 10)
		m = func(s *store, i int) bool { return s.rows[i].vni == uint32(n) || s.hasAttr(i, attr) }
	case "netns":
		m = func(s *store, i int) bool { return s.strs[s.rows[i].netns] == val || s.hasAttr(i, "netns="+val) }
	case "iface":
		m = func(s *store, i int) bool { return s.strs[s.rows[i].iface] == val }
	default: // chain, hook, reason
		attr := field + "=" + val
		m = func(s *store, i int) bool { return s.hasAttr(i, attr) }
	}
	if op == "!=" {
		return func(s *store, i int) bool { return !m(s, i) }, nil
	}
	return m, nil
}

func uitoa(v uint64) string { return strconv.FormatUint(v, 10) }

// CheckFilter reports whether expr is a valid display filter.
func CheckFilter(expr string) error {
	_, err := compileFilter(expr)
	return err
}
