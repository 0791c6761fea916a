package nflog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ParseRuleset parses the output of `nft -a list ruleset` (nft 1.0.x
// text, with "# handle N" comments); the output of `nft -a list table`
// and `nft -a list chain` parses too. Sets, maps, flowtables and stateful
// objects (counters, quotas, limits, ct helpers, ...) are skipped, as are
// table flags and comments.
func ParseRuleset(text string) (*Ruleset, error) {
	p := rsParser{rs: newRuleset()}
	for n := 1; text != ""; n++ {
		line := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		if err := p.feed(strings.TrimSpace(line)); err != nil {
			return nil, fmt.Errorf("parse nft ruleset: line %d: %w", n, err)
		}
	}
	if err := p.end(); err != nil {
		return nil, fmt.Errorf("parse nft ruleset: %w", err)
	}
	return p.rs, nil
}

// rsParser reads a listing line by line: outside any table, inside a
// table, inside a chain, or inside a block it skips.
type rsParser struct {
	rs      *Ruleset
	family  string // of the table being read; "" outside a table
	table   string
	chain   *rsChain // the chain being read
	skip    int      // brace depth of a skipped block (set, map, object)
	pending string   // a rule whose braces have not closed yet
}

func (p *rsParser) feed(line string) error {
	switch {
	case p.skip > 0:
		p.skip += braceBalance(line)
		return nil
	case p.chain != nil:
		return p.chainLine(line)
	case p.family != "":
		return p.tableLine(line)
	default:
		return p.topLine(line)
	}
}

func (p *rsParser) end() error {
	switch {
	case p.chain != nil:
		return fmt.Errorf("listing ends inside chain %s", p.chain.info.Name)
	case p.family != "":
		return fmt.Errorf("listing ends inside table %s %s", p.family, p.table)
	case p.skip > 0:
		return errors.New("listing ends inside a block")
	}
	return nil
}

// topLine reads a line outside any table: a table opens, warnings and
// blank lines pass, and any other block is skipped.
func (p *rsParser) topLine(line string) error {
	if rest, ok := strings.CutPrefix(line, "table "); ok {
		head, err := blockHeader(rest)
		if err != nil {
			return fmt.Errorf("table: %w", err)
		}
		family, name, ok := strings.Cut(head, " ")
		if !ok || name == "" {
			return fmt.Errorf("table %q has no family or no name", head)
		}
		p.family, p.table = family, unquoteName(name)
		return nil
	}
	if line == "}" {
		return errors.New("unexpected }")
	}
	if b := braceBalance(line); b > 0 && !strings.HasPrefix(line, "#") {
		p.skip = b
	}
	return nil
}

// tableLine reads a line inside a table: a chain opens; sets, maps,
// flowtables and objects are skipped; flags and comments pass.
func (p *rsParser) tableLine(line string) error {
	if line == "}" {
		p.family, p.table = "", ""
		return nil
	}
	b := braceBalance(line)
	if rest, ok := strings.CutPrefix(line, "chain "); ok && b > 0 {
		return p.openChain(rest)
	}
	if b > 0 {
		p.skip = b
	}
	return nil
}

func (p *rsParser) openChain(rest string) error {
	handle, _ := ruleHandle(rest)
	head, err := blockHeader(rest)
	if err != nil {
		return fmt.Errorf("chain: %w", err)
	}
	p.chain = &rsChain{info: ChainInfo{
		Family: p.family,
		Table:  p.table,
		Name:   unquoteName(head),
		Handle: handle,
	}}
	return nil
}

// chainLine reads a line inside a chain: the base chain's declaration, a
// comment, a rule, or the end of the chain.
func (p *rsParser) chainLine(line string) error {
	if p.pending != "" {
		line = p.pending + "\n" + line
		p.pending = ""
	}
	if line == "}" {
		p.rs.putChain(p.chain)
		p.chain = nil
		return nil
	}
	if line == "" {
		return nil
	}
	if handle, text, ok := cutRuleHandle(line); ok {
		p.chain.addRule(handle, text)
		return nil
	}
	if rest, ok := strings.CutPrefix(line, "type "); ok {
		if err := parseBaseChain(rest, &p.chain.info); err != nil {
			return fmt.Errorf("chain %s: %w", p.chain.info.Name, err)
		}
		return nil
	}
	for _, attr := range []string{"comment ", "policy ", "flags ", "devices "} {
		if strings.HasPrefix(line, attr) {
			return nil
		}
	}
	if braceBalance(line) > 0 {
		p.pending = line // a rule printed over several lines
		return nil
	}
	return fmt.Errorf("chain %s: rule without a handle (was the ruleset listed with nft -a?): %q", p.chain.info.Name, line)
}

// blockHeader returns what comes before the opening brace of
// `NAME { # handle N`.
func blockHeader(s string) (string, error) {
	head, _, ok := strings.Cut(s, " {")
	if !ok {
		if head, ok = strings.CutSuffix(s, "{"); !ok {
			return "", fmt.Errorf("no { in %q", s)
		}
	}
	return strings.TrimSpace(head), nil
}

// cutRuleHandle splits "TEXT # handle N" into N and the trimmed text.
func cutRuleHandle(line string) (uint64, string, bool) {
	i := strings.LastIndex(line, "# handle ")
	if i < 0 || (i > 0 && line[i-1] != ' ' && line[i-1] != '\t') {
		return 0, "", false
	}
	h, err := strconv.ParseUint(line[i+len("# handle "):], 10, 64)
	if err != nil {
		return 0, "", false
	}
	return h, strings.TrimSpace(line[:i]), true
}

// ruleHandle returns the handle of a line that ends in "# handle N".
func ruleHandle(line string) (uint64, bool) {
	h, _, ok := cutRuleHandle(line)
	return h, ok
}

// braceBalance counts opening minus closing braces outside double quotes
// and before a comment.
func braceBalance(s string) int {
	n, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case '{':
			if !quoted {
				n++
			}
		case '}':
			if !quoted {
				n--
			}
		case '#':
			if !quoted {
				return n
			}
		}
	}
	return n
}

// unquoteName strips the double quotes nft may put around a name.
func unquoteName(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}
