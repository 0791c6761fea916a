package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/gopacket/gopacket"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/capture/filter"
	"github.com/hooktrace/hooktrace/decode"
)

// filterSnaplen is the snap length filters are compiled for; it only
// matters for expressions that test lengths, which use the wire length.
const filterSnaplen = 262144

// replayGCPercent is the collector's target on replay (GOGC, unless the
// user set that): a journey replay allocates fast and keeps a few hundred
// MB live (the journeys open within the window, the chunks in flight),
// which the default of 100 would walk over every few hundred MB
// allocated. At 200, a 1,000,000-frame incident replays about 5% faster
// for about 15% more memory; a plain capture's replay keeps little and
// barely changes.
const replayGCPercent = 200

// replay prints every packet of a capture file that passes the filter,
// and for a recorded incident its trace events and journeys.
func replay(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	var match *filter.Set
	if o.filter != "" {
		var err error
		match, err = filter.NewSet(o.filter, filterSnaplen)
		if err != nil {
			var se *filter.SyntaxError
			if errors.As(err, &se) {
				return &usageError{err: err}
			}
			return fmt.Errorf("compile filter: %w", err)
		}
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		defer debug.SetGCPercent(debug.SetGCPercent(replayGCPercent))
	}
	warn := replayWarner(stderr, o.readFile)
	var pk picking
	if o.writeFile != "" && match != nil && readTwice(o) {
		// What the selected journeys were built from is written too: a
		// first replay finds it.
		picks, err := pickRecords(ctx, o, match)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			warn(fmt.Errorf("interrupted while finding what the journeys were built from: %s is left as it was", o.writeFile))
			return nil
		}
		pk.picks = picks
	}
	src, err := openRecordSource(o, warn, stderr)
	if err != nil {
		return err
	}
	defer src.Close()
	out, err := openOutput(o, stdout)
	if err != nil {
		return err
	}
	err = replayRecords(ctx, o, src, match, out, warn, pk)
	if cerr := out.close(); err == nil {
		err = cerr
	}
	return err
}

// openRecordSource opens the -r files to print: one, or several merged.
func openRecordSource(o *options, warn func(error), stderr io.Writer) (recordSource, error) {
	if merging(o) {
		return openMerge(o, warn, stderr)
	}
	f, err := capture.Open(o.readFile)
	if err != nil {
		return nil, err
	}
	if lts := f.LinkTypes(); len(lts) == 1 && !decode.SupportsLinkType(lts[0]) {
		f.Close()
		return nil, fmt.Errorf("%s: unknown link type %d: hooktrace reads Ethernet, Linux cooked (SLL, SLL2), raw IP, loopback and NFLOG captures", f.Path(), lts[0])
	}
	return f, nil
}

// writeFrames prints and writes the frames of a live capture (which
// passed the kernel's filter already) until it ends, ctx ends, or limit
// packets were written.
func writeFrames(ctx context.Context, src capture.Source, out *output, limit uint64, stderr io.Writer) error {
	check := newFrameCheck(nil, func(err error) { fmt.Fprintf(stderr, "hooktrace: warning: %v\n", err) })
	var n, printed uint64
	for {
		if n&1023 == 0 && ctx.Err() != nil {
			return nil // interrupted: what was printed is flushed by the caller
		}
		f, err := src.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		n++
		if !check.pass(n, f) {
			continue
		}
		if err := out.packet(n, f); err != nil {
			return err
		}
		printed++
		if limit > 0 && printed >= limit {
			return nil
		}
	}
}

// frameCheck says which frames the filter passes (nil: all), and warns
// once per link type about frames hooktrace cannot decode or the filter
// cannot take.
type frameCheck struct {
	match  *filter.Set
	warn   func(error)
	warned map[capture.LinkType]bool
}

func newFrameCheck(match *filter.Set, warn func(error)) *frameCheck {
	return &frameCheck{match: match, warn: warn, warned: map[capture.LinkType]bool{}}
}

// pass checks frame f, the n-th of the input.
func (c *frameCheck) pass(n uint64, f capture.Frame) bool {
	if !decode.SupportsLinkType(f.LinkType) && !c.warned[f.LinkType] {
		c.warned[f.LinkType] = true
		c.warn(fmt.Errorf("packet %d: unknown link type %d; such packets are shown undecoded", n, f.LinkType))
	}
	if c.match == nil {
		return true
	}
	lt, data, wireLen := f.LinkType, f.Data, f.Len
	if lt == capture.LinkTypeNFLOG {
		// libpcap cannot filter NFLOG messages: the filter looks at the
		// packet inside, as a raw IP packet.
		var nf decode.NFLOG
		if nf.DecodeFromBytes(f.Data, gopacket.NilDecodeFeedback) != nil {
			return false
		}
		lt, data = capture.LinkTypeRaw, nf.LayerPayload()
		wireLen = decode.IPLength(data) // NFLOG copies a range: its IP header says how long the packet was
	}
	ok, err := c.match.Match(int(lt), data, wireLen)
	if err != nil && !c.warned[f.LinkType|1<<31] {
		c.warned[f.LinkType|1<<31] = true
		if f.LinkType == capture.LinkTypeNFLOG {
			c.warn(fmt.Errorf("packet %d: NFLOG messages are filtered by the packet they carry, as raw IP: %v; NFLOG messages are skipped", n, err))
		} else {
			c.warn(fmt.Errorf("packet %d: %v; packets of link type %d are skipped", n, err, f.LinkType))
		}
	}
	return ok
}
