package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/ui"
)

// printRulesets prints the ruleset snapshots the -r files hold (`--trace
// -w` records each traced namespace's ruleset when it starts), in file
// order, as text or, with --json, ruleset records; nothing else. A file
// that holds none gets one line on stderr saying so.
func printRulesets(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	warn := replayWarner(stderr, o.readFile)
	src, err := openRecordSource(o, warn, stderr)
	if err != nil {
		return err
	}
	defer src.Close()
	src.OnWarning(warn)
	var p ui.RulesetPrinter = ui.NewText(stdout, time.Local)
	if o.json {
		p = ui.NewNDJSON(stdout)
	}
	rec := decode.NewRecording() // a merge's renamed namespaces, --time-shift's times
	printed := 0
	for n := 0; ; n++ {
		if n&1023 == 0 && ctx.Err() != nil {
			return nil
		}
		r, err := src.NextRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if r.Custom == nil || r.Custom.Kind != capture.CustomRuleset {
			continue
		}
		if _, err := rec.TakeRecord(r.Custom); err != nil {
			warn(err)
			continue
		}
		rs := rec.Rulesets()
		if err := p.Ruleset(&rs[len(rs)-1]); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		printed++
	}
	if printed == 0 {
		warn(errors.New("no ruleset snapshot: only recordings of hooktrace --trace -w hold them"))
	}
	return nil
}
