package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	tea "charm.land/bubbletea/v2"
	"golang.org/x/term"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/ui/tui"
)

// wantTUI says whether the terminal UI opens: stdout is a terminal and
// no other output (--print, --json, -w) was asked for.
func wantTUI(o *options, stdout io.Writer) bool {
	if o.print || o.json || o.writeFile != "" {
		return false
	}
	f, ok := stdout.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// tuiQueue bounds the batches waiting for the UI (each up to 8192
// frames).
const tuiQueue = 16

// replayTUI opens the terminal UI on a capture file: the file loads in
// the background while the list is already usable, the filter expression
// is the initial display filter.
func replayTUI(ctx context.Context, o *options, stdout *os.File, stderr io.Writer) error {
	if err := tui.CheckFilter(o.filter); err != nil {
		return &usageError{err: err}
	}
	// Warnings wait until the terminal is given back.
	held := &heldLog{}
	defer held.writeTo(stderr)
	src, progress, closeIn, err := openTUISource(o, held)
	if err != nil {
		return err
	}
	defer closeIn()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go holdMemory(ctx)
	batches := make(chan tui.Batch, tuiQueue)
	feedOpt := tui.FeedOptions{Progress: progress}
	back, index, err := openIndex(o)
	if err != nil {
		return err
	}
	if back != nil {
		defer back.Close()
		defer index.Close()
		feedOpt.Index, feedOpt.Offset = index, index.FrameOffset
		if o.count > 0 {
			feedOpt.Index = &countedSource{Source: index, left: o.count}
		}
	}
	pb, journeySrc := startPlayback(o, &feedOpt, src)
	if pb != nil {
		defer pb.Close()
	}
	recs := newFileRecords(journeySrc, o.count, held.warner(src))
	feedOpt.Journeys.IfName = recs.ifName
	go tui.FeedRecords(ctx, recs, batches, feedOpt)

	progOpts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithOutput(stdout)}
	if o.readFile == "-" {
		// Standard input carries the capture: keys come from the terminal.
		tty, err := os.Open("/dev/tty")
		if err != nil {
			return fmt.Errorf("open the terminal for keys: %w", err)
		}
		defer tty.Close()
		progOpts = append(progOpts, tea.WithInput(tty))
	}
	topt := tui.Options{
		Source:  strings.Join(o.readFiles, " + "),
		Batches: batches,
		Color:   os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb",
		Filter:  o.filter,
		Counters: func() []tui.Counter {
			return []tui.Counter{{Name: "messages (shown on quitting)", Value: held.lines()}}
		},
		Playback: pb,
		Incident: recs,
	}
	if back != nil {
		topt.File = back
	}
	// Packets not read again from the file, and a recording's trace
	// events and drops, go to a spool file.
	if spool := openSpool(func(err error) { fmt.Fprintf(held, "hooktrace: %v\n", err) }); spool != nil {
		defer spool.Close()
		topt.Spool = spool
	}
	m := tui.New(topt)
	_, err = tea.NewProgram(m, progOpts...).Run()
	if errors.Is(err, tea.ErrInterrupted) || errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("terminal UI: %w", err)
	}
	return nil
}

// openIndex opens the capture file twice more, when it is an
// uncompressed file: once to list its frames ahead of the journeys, once
// to read shown frames again, so that none is kept in memory. Both are
// nil otherwise.
func openIndex(o *options) (*os.File, *capture.File, error) {
	if o.readFile == "-" || merging(o) {
		return nil, nil, nil
	}
	index, err := capture.Open(o.readFile)
	if err != nil {
		return nil, nil, err
	}
	if index.Compressed() {
		index.Close()
		return nil, nil, nil
	}
	back, err := os.Open(o.readFile)
	if err != nil {
		index.Close()
		return nil, nil, fmt.Errorf("open capture: %w", err)
	}
	return back, index, nil
}

// openCounted opens a capture and reports how many of its (possibly
// compressed) bytes were read, for the progress bar.
func openCounted(path string) (capture.Source, func() (int64, int64), func(), error) {
	src, err := capture.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	if path == "-" {
		return src, nil, func() { src.Close() }, nil
	}
	return src, src.Progress, func() { src.Close() }, nil
}

// countedSource ends a source after a number of frames (-c).
type countedSource struct {
	capture.Source
	left uint64
}

func (c *countedSource) Next() (capture.Frame, error) {
	if c.left == 0 {
		return capture.Frame{}, io.EOF
	}
	c.left--
	return c.Source.Next()
}
