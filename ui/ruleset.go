package ui

import (
	"strings"
	"time"

	"github.com/hooktrace/hooktrace/decode"
)

// RulesetPrinter prints the ruleset snapshots a recording holds.
type RulesetPrinter interface {
	Ruleset(s *decode.RulesetSnapshot) error
}

// Ruleset writes a {"type":"ruleset",...} record: the namespace, when
// the snapshot was taken, and the ruleset as `nft -a list ruleset` gives
// it.
func (p *NDJSON) Ruleset(s *decode.RulesetSnapshot) error {
	j := &p.j
	j.reset()
	j.open('{')
	j.plain("type", "ruleset")
	p.time("time", s.Time)
	j.Str("netns", s.Netns)
	j.Str("text", s.Text)
	j.close('}')
	j.b = append(j.b, '\n')
	_, err := p.w.Write(j.b)
	return err
}

// Ruleset writes a heading line (the namespace, and when the snapshot
// was taken, in the printer's time zone), then the ruleset as `nft -a
// list ruleset` gives it, ending with a newline.
func (t *Text) Ruleset(s *decode.RulesetSnapshot) error {
	b := append(append(t.b[:0], "# ruleset of "...), RulesetNamespace(s.Netns)...)
	b = append(b, ", recorded "...)
	loc := t.loc
	if loc == nil {
		loc = time.UTC
	}
	b = s.Time.In(loc).AppendFormat(b, "2006-01-02 15:04:05.000000 MST")
	b = append(append(b, '\n'), s.Text...)
	if !strings.HasSuffix(s.Text, "\n") {
		b = append(b, '\n')
	}
	t.b = b
	_, err := t.w.Write(b)
	return err
}

// RulesetNamespace names a ruleset snapshot's namespace in a heading:
// "namespace NS", or for "" the one hooktrace ran in.
func RulesetNamespace(netns string) string {
	if netns == "" {
		return "the namespace hooktrace ran in"
	}
	return "namespace " + netns
}
