package ui

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/decode"
)

// TestRulesetPrinters: a ruleset snapshot as a heading and nft's text,
// and as a ruleset record whose text round-trips.
func TestRulesetPrinters(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 6, 58, 123456789, time.UTC)
	text := "table inet hxfilter { # handle 3\n\tchain forward { # handle 1\n\t\ttype filter hook forward priority 0; policy accept;\n\t\tip daddr 10.205.1.2 tcp dport 80 counter packets 0 bytes 0 drop # handle 2\n\t}\n}\n"
	for _, tc := range []struct {
		snap decode.RulesetSnapshot
		want string
	}{
		{decode.RulesetSnapshot{Time: at, Netns: "hxtnd-router", Text: text},
			"# ruleset of namespace hxtnd-router, recorded 2026-11-25 10:06:58.123456 UTC\n" + text},
		{decode.RulesetSnapshot{Time: at, Text: "table ip nat { # handle 9\n}"}, // no final newline: one is added
			"# ruleset of the namespace hooktrace ran in, recorded 2026-11-25 10:06:58.123456 UTC\ntable ip nat { # handle 9\n}\n"},
	} {
		var b bytes.Buffer
		if err := NewText(&b, time.UTC).Ruleset(&tc.snap); err != nil || b.String() != tc.want {
			t.Errorf("text: %v\n%s\nwant\n%s", err, b.String(), tc.want)
		}
		b.Reset()
		if err := NewNDJSON(&b).Ruleset(&tc.snap); err != nil {
			t.Fatal(err)
		}
		var r struct{ Type, Time, Netns, Text string }
		if err := json.Unmarshal(b.Bytes(), &r); err != nil || bytes.Count(b.Bytes(), []byte("\n")) != 1 {
			t.Fatalf("json %q: %v", b.String(), err)
		}
		if r.Type != "ruleset" || r.Time != "2026-11-25T10:06:58.123456789Z" || r.Netns != tc.snap.Netns || r.Text != tc.snap.Text {
			t.Errorf("json record %+v", r)
		}
	}
}
