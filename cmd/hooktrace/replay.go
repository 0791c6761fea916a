package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/capture/filter"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/ui"
)

// filterSnaplen is the snap length filters are compiled for; it only
// matters for expressions that test lengths, which use the wire length.
const filterSnaplen = 262144

// replay prints every packet of a capture file that passes the filter.
func replay(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	var match *filter.Set
	if o.filter != "" {
		var err error
		match, err = filter.NewSet(o.filter, filterSnaplen)
		if err != nil {
			var se *filter.SyntaxError
			if errors.As(err, &se) {
				return &usageError{msg: err.Error()}
			}
			return fmt.Errorf("compile filter: %w", err)
		}
	}
	src, err := capture.Open(o.readFile)
	if err != nil {
		return err
	}
	defer src.Close()
	if lts := src.LinkTypes(); len(lts) == 1 && !decode.SupportsLinkType(lts[0]) {
		return fmt.Errorf("%s: unknown link type %d: hooktrace reads Ethernet, Linux cooked (SLL, SLL2), raw IP, loopback and NFLOG captures", src.Path(), lts[0])
	}
	out := bufio.NewWriterSize(stdout, 256<<10)
	var printer ui.PacketPrinter
	if o.json {
		printer = ui.NewNDJSON(out)
	} else {
		printer = ui.NewText(out, time.Local)
	}
	err = replayFrames(ctx, src, match, printer, o.count, stderr)
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write output: %w", ferr)
	}
	return err
}

func replayFrames(ctx context.Context, src capture.Source, match *filter.Set, printer ui.PacketPrinter, limit uint64, stderr io.Writer) error {
	dec := decode.NewDecoder()
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
		if err := printer.Packet(n, dec.Decode(f)); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		printed++
		if limit > 0 && printed >= limit {
			return nil
		}
	}
}
