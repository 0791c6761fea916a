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
// no other output (--print, --json, --journeys, -w) was asked for.
func wantTUI(o *options, stdout io.Writer) bool {
	if o.print || o.json || o.journeys || o.writeFile != "" {
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
	// Warnings wait until the terminal is given back: they are written
	// last, once the feed that gives most of them ended.
	held := &heldLog{}
	defer held.writeTo(stderr)
	rs, err := openReplaySource(o, held)
	if err != nil {
		return err
	}
	defer rs.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go holdMemory(ctx)
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
	batches := make(chan tui.Batch, tuiQueue)
	topt := tui.Options{
		Source:  strings.Join(o.readFiles, " + "),
		Batches: batches,
		Color:   os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb",
		Filter:  o.filter,
		Counters: func() []tui.Counter {
			return []tui.Counter{{Name: "messages (shown on quitting)", Value: held.lines()}}
		},
		Playback: rs.pb,
		Incident: rs.recs,
	}
	if rs.back != nil {
		topt.File = rs.back
	}
	// Packets not read again from the file, and a recording's trace
	// events and drops, go to a spool file.
	if spool := openSpool(func(err error) { fmt.Fprintf(held, "hooktrace: %v\n", err) }); spool != nil {
		defer spool.Close()
		topt.Spool = spool
	}
	rs.feed(ctx, batches)
	defer rs.stop()
	_, err = tea.NewProgram(tui.New(topt), progOpts...).Run()
	if errors.Is(err, tea.ErrInterrupted) || errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("terminal UI: %w", err)
	}
	return nil
}

// replaySource is what the terminal UI's feed reads a capture file
// through: the file or the merged files; for an uncompressed file, the
// index that lists its frames ahead and the file the shown frames are
// read again from; the pacing of --speed. stop ends the feed and waits
// for it; close then closes what it read, in the reverse order of
// opening.
type replaySource struct {
	o       *options
	closeIn func()
	index   *capture.File // nil: no index
	back    *os.File      // nil: no index
	pb      *tui.Playback // nil: as fast as possible
	recs    *fileRecords
	feedOpt tui.FeedOptions
	cancel  context.CancelFunc
	fed     chan struct{} // closed when the feed returned; nil before it started
	inUse   bool          // the feed was left reading standard input
}

// openReplaySource opens the -r files; warnings go to held.
func openReplaySource(o *options, held *heldLog) (*replaySource, error) {
	src, progress, closeIn, err := openTUISource(o, held)
	if err != nil {
		return nil, err
	}
	r := &replaySource{o: o, closeIn: closeIn, feedOpt: tui.FeedOptions{Progress: progress}}
	if r.back, r.index, err = openIndex(o); err != nil {
		closeIn()
		return nil, err
	}
	if r.index != nil {
		r.feedOpt.Index, r.feedOpt.Offset = r.index, r.index.FrameOffset
		if o.count > 0 {
			r.feedOpt.Index = &countedSource{Source: r.index, left: o.count}
		}
	}
	var journeySrc capture.Source
	r.pb, journeySrc = startPlayback(o, &r.feedOpt, src)
	r.recs = newFileRecords(journeySrc, o.count, held.warner(src))
	r.feedOpt.Journeys.IfName = r.recs.ifName
	return r, nil
}

// feed starts the feed's goroutine, which sends the UI's batches.
func (r *replaySource) feed(ctx context.Context, batches chan<- tui.Batch) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.fed = make(chan struct{})
	go func() {
		defer close(r.fed)
		tui.FeedRecords(ctx, r.recs, batches, r.feedOpt)
	}()
}

// stop ends the feed and waits for it (and so for its indexer): it may
// wait to send a batch the UI no longer takes, or for the playback. A
// read of standard input nothing interrupts: that feed is left to the
// process's exit, and standard input open under it.
func (r *replaySource) stop() {
	if r.fed == nil {
		return
	}
	r.cancel()
	if r.pb != nil {
		r.pb.Close()
	}
	select {
	case <-r.fed:
	default:
		if r.o.readFile == "-" {
			r.inUse = true
			return
		}
		<-r.fed
	}
}

// close stops the feed, then closes what it read.
func (r *replaySource) close() {
	r.stop()
	if r.pb != nil {
		r.pb.Close()
	}
	if r.back != nil {
		r.back.Close()
		r.index.Close()
	}
	if !r.inUse {
		r.closeIn()
	}
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
