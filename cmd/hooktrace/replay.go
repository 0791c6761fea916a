package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/capture/filter"
	"github.com/hooktrace/hooktrace/decode"
)

// filterSnaplen is the snap length filters are compiled for; it only
// matters for expressions that test lengths, which use the wire length.
const filterSnaplen = 262144

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
	var src recordSource
	warn := replayWarner(stderr, o.readFile)
	if merging(o) {
		m, err := openMerge(o, warn, stderr)
		if err != nil {
			return err
		}
		src = m
	} else {
		f, err := capture.Open(o.readFile)
		if err != nil {
			return err
		}
		if lts := f.LinkTypes(); len(lts) == 1 && !decode.SupportsLinkType(lts[0]) {
			f.Close()
			return fmt.Errorf("%s: unknown link type %d: hooktrace reads Ethernet, Linux cooked (SLL, SLL2), raw IP, loopback and NFLOG captures", f.Path(), lts[0])
		}
		src = f
	}
	defer src.Close()
	out, err := openOutput(o, stdout)
	if err != nil {
		return err
	}
	err = replayRecords(ctx, o, src, match, out, warn)
	if cerr := out.close(); err == nil {
		err = cerr
	}
	return err
}

// writeFrames prints and writes the frames of src that pass match (nil:
// all) until the source ends, ctx ends, or limit packets were written.
func writeFrames(ctx context.Context, src capture.Source, match *filter.Set, out *output, limit uint64, stderr io.Writer) error {
	warned := map[capture.LinkType]bool{}
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
		if !decode.SupportsLinkType(f.LinkType) && !warned[f.LinkType] {
			warned[f.LinkType] = true
			fmt.Fprintf(stderr, "hooktrace: warning: packet %d: unknown link type %d; such packets are shown undecoded\n", n, f.LinkType)
		}
		if match != nil {
			ok, err := match.Match(int(f.LinkType), f.Data, f.Len)
			if err != nil && !warned[f.LinkType|1<<31] {
				warned[f.LinkType|1<<31] = true
				fmt.Fprintf(stderr, "hooktrace: warning: packet %d: %v; packets of link type %d are skipped\n", n, err, f.LinkType)
			}
			if !ok {
				continue
			}
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
