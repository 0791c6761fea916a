package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/capture/filter"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/ui"
)

// maxHeldJourneys bounds the journeys a replay holds back until the file
// shows it is an incident (a hooktrace record or an NFLOG message); past
// it, the file is taken for an ordinary capture and no journey is built.
const maxHeldJourneys = 256

// maxReplayWarnings bounds the warnings about skipped records.
const maxReplayWarnings = 20

// replayJourneys rebuilds, on replay, the journeys a live `--trace` run
// showed: frames, trace records and kernel drops go to a JourneyBuilder
// in file order, and each journey is printed as it closes, between the
// packets, as live. Without routing (Route is nil), journeys show what was
// recorded. Journeys are printed only for files that are incidents: a
// hooktrace recording, or a capture of NFLOG messages (tcpdump -i
// nflog:N); until one of their records comes, closed journeys are held.
type replayJourneys struct {
	b       *decode.JourneyBuilder
	dec     *decode.Decoder
	rec     *decode.Recording // interface names, and the records decoded
	traces  ui.TracePrinter
	paths   ui.JourneyPrinter
	buf     bytes.Buffer
	pipe    *pipeline
	held    []decode.PendingJourney
	show    bool // the file is an incident: print journeys
	off     bool // an ordinary capture: no journeys
	records uint64
	// staged: the journeys are the pipeline's stage (pipeline_records.go),
	// in the writer; journey text goes into the chunk it is on (cur),
	// after entry at. Otherwise the reading goroutine feeds them, and
	// their text goes to the pipeline.
	staged bool
	cur    *chunk
	at     int
	warn   func(error)
	// save, with -w and no filter, writes the frames and records again,
	// in order, through the recorder's writer: a merge or a time-shifted
	// file stays a recording.
	save     *ui.IncidentWriter
	savePath string
	// With -w and a filter (replay_picks.go): picker notes, on the first
	// replay, what the journeys the filter selects were built from;
	// picks says, on the replay that writes, what to write.
	picker *journeyPicker
	picks  *recordPicks
	// traceSel, with a filter, says which trace events are printed.
	traceSel *traceSelector
	// flushing: staged, the input ended and journeys may be open still,
	// which moreJourneys closes a part at a time.
	flushing bool
}

func newReplayJourneys(o *options, out *output, warn func(error), pk picking) *replayJourneys {
	r := &replayJourneys{dec: decode.NewDecoder(), rec: decode.NewRecording(), pipe: out.pipe, warn: warn, picker: pk.picker, picks: pk.picks}
	r.b = decode.NewJourneyBuilder(decode.JourneyOptions{IfName: r.rec.IfName, Unassembled: true})
	switch {
	case o.journeys && o.json:
		r.paths, r.show = ui.NewNDJSON(&r.buf), true // asked for: journeys from any capture
	case o.journeys:
		r.paths, r.show = ui.NewText(&r.buf, time.Local), true
	case o.json:
		p := ui.NewNDJSON(&r.buf)
		r.traces, r.paths = p, p
	case o.print || o.writeFile == "":
		p := ui.NewText(&r.buf, time.Local)
		r.traces, r.paths = p, p
	}
	if r.picker != nil {
		r.paths = r.picker // the first replay of -w with a filter prints nothing
	}
	r.paths = selectJourneys(o, r.paths)
	if o.filter != "" && r.traces != nil {
		if match, err := filter.NewSet(o.filter, filterSnaplen); err == nil { // else not met: replay compiled it already
			r.traceSel = newTraceSelector(match, warn)
		}
	}
	return r
}

// frame feeds frame n of the input, and what it showed the journey
// builder when a worker read that already (s, else nil); selected says
// the filter passed it (or there is none).
func (r *replayJourneys) frame(f *capture.Frame, n uint64, s *decode.Sighting, selected bool) error {
	if r.save != nil && (selected || r.picks.frame(n)) {
		if err := r.save.Frame(f); err != nil {
			return fmt.Errorf("write %s: %w", r.savePath, err)
		}
	}
	if f.LinkType == capture.LinkTypeNFLOG {
		r.show = true
	}
	if r.off {
		return nil
	}
	r.picker.tookFrame(n)
	switch {
	case s != nil:
		if selected {
			s.Select()
		}
		r.b.AddSighting(s)
	case selected:
		r.b.AddSelectedPacket(r.dec.Decode(*f))
	default:
		r.b.AddPacket(r.dec.Decode(*f))
	}
	if !r.show && r.b.Stats().Open+len(r.held) > maxHeldJourneys {
		r.giveUp() // an ordinary capture: keep replay as fast and small as ever
		return nil
	}
	return r.emit(r.b.ClosedPending())
}

// giveUp stops building journeys for an ordinary capture, and frees what
// was held for them.
func (r *replayJourneys) giveUp() {
	r.off, r.held = true, nil
	// Records that come later (a recording merged after an ordinary
	// capture) still make their journeys: a builder as the first.
	r.b = decode.NewJourneyBuilder(decode.JourneyOptions{IfName: r.rec.IfName, Unassembled: true})
	r.picker.restart()
	if r.pipe != nil {
		r.pipe.noSights.Store(true) // the workers need not read frames for it any more
	}
}

// custom takes a hooktrace record; a record that cannot be decoded is
// skipped with a warning.
func (r *replayJourneys) custom(c *capture.CustomRecord) error {
	got, err := r.rec.TakeRecord(c)
	if err == nil && got.Trace != nil && r.traces != nil && (r.traceSel == nil || r.traceSel.pass(got.Trace)) {
		if err := r.print(func() error { return r.traces.Trace(got.Trace) }); err != nil {
			return err
		}
	}
	return r.take(c.Kind, got, nil, err)
}

// take gives the builder what a record of that kind held, or the
// sighting a worker read from its trace event (s, else nil); a record
// that could not be decoded is skipped with a warning.
func (r *replayJourneys) take(kind capture.CustomKind, got decode.Recorded, s *decode.Sighting, err error) error {
	r.show = true
	r.records++
	if err != nil {
		r.warn(err)
		return nil
	}
	if err := r.keep(kind, got); err != nil {
		return err
	}
	if r.paths == nil {
		return nil
	}
	r.picker.tookRecord(got, r.records)
	if s != nil {
		r.b.AddSighting(s)
	} else {
		r.b.AddRecorded(got)
	}
	return r.emit(r.b.ClosedPending())
}

// keep writes a record of that kind into the -w file, if any: what it
// held, as the recording (decode.Recording) read it, so with the
// namespaces a merge renamed and the times --time-shift moved. Interface
// names are written before the frames and drops that need them.
func (r *replayJourneys) keep(kind capture.CustomKind, got decode.Recorded) error {
	if r.save == nil || !r.picks.record(got, r.records) {
		return nil
	}
	err := r.save.Recorded(got)
	if rs := r.rec.Rulesets(); err == nil && kind == capture.CustomRuleset && len(rs) > 0 {
		err = r.save.Ruleset(&rs[len(rs)-1])
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", r.savePath, err)
	}
	return nil
}

// print runs a printer into the buffer and queues its text in order with
// the packets.
func (r *replayJourneys) print(fn func() error) error {
	r.buf.Reset()
	if err := fn(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return r.pipe.text(r.buf.Bytes())
}

// journeyPrinters makes the printers of the journeys the stage closed,
// one for each of the pipeline's finishers (or the first replay's picker
// for all).
func journeyPrinters(o *options, picker *journeyPicker) func(io.Writer) ui.JourneyPrinter {
	return func(w io.Writer) ui.JourneyPrinter {
		switch {
		case picker != nil:
			return selectJourneys(o, picker)
		case o.json:
			return selectJourneys(o, ui.NewNDJSON(w))
		}
		return selectJourneys(o, ui.NewText(w, time.Local))
	}
}

// selectJourneys returns p, or with a filter, p printing only the
// journeys it selects (journeySelector).
func selectJourneys(o *options, p ui.JourneyPrinter) ui.JourneyPrinter {
	if o.filter == "" || p == nil {
		return p
	}
	match, err := filter.NewSet(o.filter, filterSnaplen)
	if err != nil {
		return p // not met: replay compiled it already
	}
	return &journeySelector{p: p, match: match, dec: decode.NewDecoder()}
}

// journeySelector prints, on replay with a filter, the journeys of the
// packets the filter selects: those a frame it passed joined (an NFLOG
// message's packet counts), those of packets only trace events showed
// whose header snapshot it passes, and those whose first frame carries,
// in a tunnel, a packet it passes (as explain selects). Every frame and
// record joins the journeys, so that a journey shown has all the file
// holds of it. It is for one goroutine.
type journeySelector struct {
	p     ui.JourneyPrinter
	match *filter.Set
	dec   *decode.Decoder
}

func (s *journeySelector) Journey(j *decode.Journey) error {
	if j.Selected || s.selects(j) {
		return s.p.Journey(j)
	}
	return nil
}

// selects says whether the filter passes the packet of a journey no
// frame it passed joined.
func (s *journeySelector) selects(j *decode.Journey) bool {
	f := j.Frame
	if len(j.Packets) == 0 { // the header snapshot of a trace event, as long as its IP header says (as trace lines are judged)
		if ok, _ := s.match.Match(int(f.LinkType), f.Data, f.Len); ok {
			return true
		}
	}
	// The journey's own packet, when the frame carries it in a tunnel,
	// as raw IP.
	in, depth := innermostIP(s.dec, f)
	if in == nil || depth == 0 {
		return false
	}
	ok, _ := s.match.Match(int(capture.LinkTypeRaw), in, len(in))
	return ok
}

// stage builds the journeys over a chunk's frames and records, in order;
// it is the pipeline's stage, in the writer. The workers decoded the
// trace events, drops and losses, and printed the packets and trace
// events.
func (r *replayJourneys) stage(c *chunk) error {
	r.cur = c
	defer func() { r.cur = nil }()
	for k, e := range c.entries {
		r.at = k
		var err error
		switch {
		case e >= 0 && c.sighted:
			err = r.frame(&c.frames[e], c.nums[e], &c.sights[e], !c.hidden[e])
		case e >= 0:
			err = r.frame(&c.frames[e], c.nums[e], nil, !c.hidden[e])
		case c.recs[-e-1].finish:
			err = r.finish()
		case c.recs[-e-1].text == nil:
			rec := &c.recs[-e-1]
			if r.traceSel != nil && rec.parsed && rec.err == nil && rec.got.Trace != nil && !r.traceSel.pass(rec.got.Trace) {
				c.cut = append(c.cut, k) // a worker printed it: the writer leaves it out
			}
			switch {
			case rec.parsed && rec.err == nil && rec.got.Trace != nil && c.sighted:
				err = r.take(rec.custom.Kind, rec.got, &c.tsights[rec.sight], nil)
			case rec.parsed:
				err = r.take(rec.custom.Kind, rec.got, nil, rec.err)
			default:
				got, terr := r.rec.TakeRecord(&rec.custom)
				err = r.take(rec.custom.Kind, got, nil, terr)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// emit prints closed journeys, or holds them while the file has not shown
// it is an incident.
func (r *replayJourneys) emit(js []decode.PendingJourney) error {
	if !r.show {
		r.held = append(r.held, js...)
		if len(r.held) > maxHeldJourneys {
			r.giveUp()
		}
		return nil
	}
	if len(r.held) > 0 {
		js, r.held = append(r.held, js...), nil
	}
	if r.paths == nil {
		return nil // nothing prints journeys
	}
	if r.staged {
		r.cur.journeys = slices.Grow(r.cur.journeys, len(js))
	}
	for i := range js {
		if r.staged {
			r.cur.journeys = append(r.cur.journeys, chunkJourney{at: r.at, pj: js[i]}) // the finishers print them
			continue
		}
		j := js[i].Assemble()
		if err := r.print(func() error { return r.paths.Journey(j) }); err != nil {
			return err
		}
	}
	return nil
}

// finish closes the journeys still open and prints them.
func (r *replayJourneys) finish() error {
	if r.off && !r.show {
		return nil // an ordinary capture: nothing was built since
	}
	if r.staged && r.show && r.paths != nil {
		// The last chunk takes as many as a chunk of their own would
		// (after those held, emit's); the rest follow it in chunks of
		// their own (pipeline.finishRest).
		r.flushing = true
		return r.emit(r.b.FlushPendingSome(restJourneys))
	}
	return r.emit(r.b.FlushPending())
}

// moreJourneys closes and returns up to max of the journeys left to
// print after the input's end (finish), for the pipeline (finishRest);
// nil when none are left.
func (r *replayJourneys) moreJourneys(max int) []decode.PendingJourney {
	if !r.flushing {
		return nil
	}
	js := r.b.FlushPendingSome(max)
	if len(js) == 0 {
		r.flushing = false
	}
	return js
}

// replayRecords prints the frames of src that pass match (nil: all), with
// the trace records and the journeys, until the source ends, ctx ends or
// limit packets were printed. A damaged file gives what was complete
// before the damage, journeys included, then the error.
//
// With -w and a filter, pk says what to write of a recording (pickRecords).
func replayRecords(ctx context.Context, o *options, src recordSource, match *filter.Set, out *output, warn func(error), pk picking) error {
	src.OnWarning(warn)
	j := newReplayJourneys(o, out, warn, pk)
	if j.paths == nil {
		// Nothing prints journeys (-w alone): none are built.
		j.off = true
		out.pipe.noSights.Store(true)
	}
	if out.pcapng != nil && (match == nil || pk.picks != nil) {
		// The replay writes the frames and records, in order; the
		// pipeline writes none. (With a filter on standard input, the
		// pipeline writes the packets it passes, and no record: which
		// records belong to them is known only once their journeys
		// close, and the input cannot be read again.)
		j.save, j.savePath = ui.NewIncidentWriter(out.pcapng, j.rec.IfName), o.writeFile
		out.pipe.pcapng = nil
	}
	if !out.pipe.direct {
		// Journeys are built and printed beside reading and printing.
		j.staged = true
		out.pipe.useStage(j.stage, j.moreJourneys, journeyPrinters(o, pk.picker))
	}
	err := readRecords(ctx, src, match, out, o.count, j, warn)
	var ferr error
	if j.staged {
		ferr = out.pipe.addFinish() // the stage closes the journeys left after the last record
	} else {
		ferr = j.finish()
	}
	if err == nil {
		err = ferr
	}
	return err
}

func readRecords(ctx context.Context, src recordSource, match *filter.Set, out *output, limit uint64, j *replayJourneys, warn func(error)) error {
	check := newFrameCheck(match, warn)
	names := j.rec // interface names for the frames' indexes
	if j.staged {
		names = decode.NewRecording() // the stage keeps its own, in its goroutine
	}
	var n, printed uint64
	warnedRecords := false
	for {
		if n&1023 == 0 && ctx.Err() != nil {
			return nil // interrupted: what was printed is flushed by the caller
		}
		rec, err := src.NextRecord()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if rec.Custom != nil && out.pcapng != nil && j.save == nil && !warnedRecords {
			warnedRecords = true
			warn(errors.New("-w with a filter on standard input or a pipe writes the packets it keeps only, without the recording's trace events, kernel drops, interface names and rulesets: keeping those of their journeys reads the input twice (from a file, -w with a filter keeps them)"))
		}
		if c := rec.Custom; c != nil && j.staged {
			if c.Kind == capture.CustomInterface {
				names.TakeRecord(c) // an error is the stage's to tell
			}
			if err := out.pipe.addRecord(c); err != nil {
				return err
			}
			continue
		}
		if rec.Custom != nil {
			if err := j.custom(rec.Custom); err != nil {
				return err
			}
			continue
		}
		f := rec.Frame
		names.FillIndex(&f)
		n++
		if !check.pass(n, f) {
			// Not printed or written, it still joins its packet's journey.
			switch {
			case j.staged && (!out.pipe.noSights.Load() || j.picks != nil):
				if err := out.pipe.addHidden(n, f); err != nil {
					return err
				}
			case !j.staged && (!j.off || j.picks != nil):
				if err := j.frame(&f, n, nil, false); err != nil {
					return err
				}
			}
			continue
		}
		if err := out.packet(n, f); err != nil {
			return err
		}
		if j.staged {
			// the stage takes it from the pipeline
		} else if err := j.frame(&f, n, nil, true); err != nil {
			return err
		}
		printed++
		if limit > 0 && printed >= limit {
			return nil
		}
	}
}
