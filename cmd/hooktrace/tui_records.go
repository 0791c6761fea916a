package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/ui/tui"
)

// recordReader is a source that also reads hooktrace's records beside the
// frames (a capture.File).
type recordReader interface {
	NextRecord() (capture.Record, error)
}

// fileRecords is the terminal UI's source for a capture file: its frames
// and, for a recorded incident (`--trace -w`), the trace events, kernel
// drops and losses its hooktrace records hold, in file order, read as
// replay to text or NDJSON reads them (decode.Recording). It gives the
// UI's saves the recording's interface names and rulesets
// (tui.IncidentContext).
type fileRecords struct {
	src     capture.Source
	rr      recordReader // src's records; nil: src has frames only
	warn    func(error)
	limited bool   // -c was given
	left    uint64 // frames still to read, with -c
	frame   capture.Frame

	// rec is written by the feed's goroutine (NextRecord), which reads it
	// without the lock; the UI's goroutine reads it with the lock.
	mu  sync.Mutex
	rec *decode.Recording
}

// newFileRecords reads src, at most limit frames (0: all).
func newFileRecords(src capture.Source, limit uint64, warn func(error)) *fileRecords {
	r := &fileRecords{src: src, rec: decode.NewRecording(), warn: warn, limited: limit > 0, left: limit}
	r.rr, _ = src.(recordReader)
	return r
}

// NextRecord returns the next frame, trace event, drop or loss; interface
// names and rulesets are kept by the Recording, and a record that cannot
// be decoded is skipped with a warning.
func (r *fileRecords) NextRecord() (tui.Record, error) {
	if r.limited && r.left == 0 {
		return tui.Record{}, io.EOF
	}
	if r.rr == nil {
		f, err := r.src.Next()
		if err != nil {
			return tui.Record{}, err
		}
		r.left--
		r.frame = f
		return tui.Record{Frame: &r.frame}, nil
	}
	for {
		c, err := r.rr.NextRecord()
		if err != nil {
			return tui.Record{}, err
		}
		if c.Custom == nil {
			r.left--
			r.frame = c.Frame
			r.rec.FillIndex(&r.frame)
			return tui.Record{Frame: &r.frame}, nil
		}
		// A merge's time shift and renames apply.
		got, ok, err := decode.ParseRecorded(c.Custom)
		if !ok { // an interface name or a ruleset: the recording keeps it
			r.mu.Lock()
			got, err = r.rec.TakeRecord(c.Custom)
			r.mu.Unlock()
		}
		switch {
		case err != nil:
			r.warn(err)
		case got.Trace != nil:
			return tui.Record{Trace: got.Trace}, nil
		case got.Drop != nil:
			return tui.Record{Drop: got.Drop}, nil
		case got.Loss != nil:
			return tui.Record{Loss: got.Loss}, nil
		}
	}
}

// ifName names an interface index as the recording named it, for the
// journeys on the feed's goroutine.
func (r *fileRecords) ifName(netns string, index uint32) string { return r.rec.IfName(netns, index) }

// IfName names an interface index as the recording named it so far, for
// the UI's saves.
func (r *fileRecords) IfName(netns string, index uint32) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec.IfName(netns, index)
}

// Rulesets returns the ruleset snapshots of a namespace the recording
// held so far, for the UI's saves.
func (r *fileRecords) Rulesets(netns string) ([]decode.RulesetSnapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []decode.RulesetSnapshot
	for _, rs := range r.rec.Rulesets() {
		if rs.Netns == netns {
			out = append(out, rs)
		}
	}
	return out, nil
}

// warner returns a function that holds a warning about src, up to
// maxReplayWarnings of them.
func (h *heldLog) warner(src capture.Source) func(error) {
	n := 0
	warn := func(err error) {
		n++
		switch {
		case n <= maxReplayWarnings:
			fmt.Fprintf(h, "hooktrace: warning: %v\n", err)
		case n == maxReplayWarnings+1:
			fmt.Fprintf(h, "hooktrace: warning: further warnings are left out\n")
		}
	}
	if f, ok := src.(*capture.File); ok {
		f.OnWarning(warn)
	}
	return warn
}
