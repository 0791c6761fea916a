package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/ui"
)

// On replay of a recording, chunks hold hooktrace's records beside the
// frames, in input order. The workers decode both, print them (trace
// events are printed there, as packets are), and read from each what
// the journey builder needs (decode.Sighting); the stage, in the writer,
// joins the sightings into journeys over each chunk in order, noting
// after which record each journey closed; finishers assemble and print
// the closed journeys of several chunks at once; a last writer puts
// each journey's text after the record that closed it. Only joining is
// done one chunk after another, and the output is the same as one
// goroutine doing everything in input order.

// chunkEntries bounds the frames and records of a chunk.
const chunkEntries = 2048

// chunkRecords is what a chunk holds of a replay's records.
type chunkRecords struct {
	// entries lists the chunk's frames and records in input order: i >= 0
	// is frame i, i < 0 record -i-1.
	entries []int32
	recs    []chunkRecord
	// When sighted, sights[i] is what frame i showed the journey
	// builder, and tsights what the trace events did.
	sights, tsights []decode.Sighting
	sighted         bool
	// events holds the trace events the workers decode (a record's got
	// points into it), reused from chunk to chunk.
	events []decode.TraceEvent
	// marks[k] is the length of the chunk's output after entry k.
	marks []int32
	// journeys the stage closed: at is the entry they follow. The
	// finishers print them into jout, journey k ending at jmarks[k].
	journeys []chunkJourney
	jout     textBuffer
	jmarks   []int32
	// cut lists, in order, the entries whose text the stage leaves out
	// (trace events of packets a filter rejects).
	cut []int
}

type chunkJourney struct {
	at int // -1: before the chunk's entries (a chunk of the journeys left at the end holds none)
	pj decode.PendingJourney
}

// chunkRecord is a hooktrace record, or text to print as it is.
type chunkRecord struct {
	custom capture.CustomRecord // its Payload in the chunk's arena
	text   []byte               // text instead of a record, in the arena
	got    decode.Recorded      // the trace event, drop or loss it holds (the worker decodes it)
	parsed bool                 // got or err is set
	sight  int32                // a trace event's sighting in tsights, when the chunk is sighted
	err    error                // why it could not be decoded
	finish bool                 // the end of the input: the stage flushes what is left
}

func (r *chunkRecords) reset() {
	r.entries, r.marks, r.jmarks = r.entries[:0], r.marks[:0], r.jmarks[:0]
	clear(r.journeys)
	r.journeys = r.journeys[:0]
	clear(r.recs)
	r.recs = r.recs[:0]
	// sights and tsights are written over before they are read: not
	// cleared (they are large), they keep old records' strings a while.
	r.sights, r.tsights, r.sighted = r.sights[:0], r.tsights[:0], false
	r.events = r.events[:0]
	r.cut = r.cut[:0]
	r.jout.b = r.jout.b[:0]
}

// useStage makes the pipeline build journeys with stage on every chunk
// in order, in the writer; the journeys it closes are assembled and
// printed with printers newPaths makes, as the chunk is finished, and
// written after the record that closed them. Call it before anything is
// queued.
func (p *pipeline) useStage(stage func(*chunk) error, rest func(max int) []decode.PendingJourney, newPaths func(io.Writer) ui.JourneyPrinter) {
	if p.direct {
		return
	}
	p.stage, p.rest, p.newPaths = stage, rest, newPaths
	p.finishing, p.finished = make(chan *chunk, cap(p.free)), make(chan *chunk, cap(p.free))
	var finishers sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		finishers.Add(1)
		go func() {
			defer finishers.Done()
			p.finisher()
		}()
	}
	p.writeWG.Add(2)
	go func() {
		defer p.writeWG.Done()
		finishers.Wait()
		close(p.finished)
	}()
	go func() {
		defer p.writeWG.Done()
		p.writeFinished()
	}()
}

// restJourneys is how many of the journeys still open at the end of the
// input a chunk takes (finishRest): the last chunk alone would take
// thousands, their text in one buffer of tens of MB, finished by two
// goroutines while the others wait.
const restJourneys = 512

// finishRest hands the finishers, after the input's last chunk (its
// sequence number seq), the journeys the stage left to print after it,
// in chunks of their own numbered after it. After any other chunk, the
// stage left none. (The chunk with addFinish's record is the last the
// reader queues: nothing can be added after it, errQueuedAfterEnd.)
func (p *pipeline) finishRest(seq uint64) {
	for {
		js := p.rest(restJourneys)
		if len(js) == 0 {
			return
		}
		c := <-p.free // the chunks before are written and recycled meanwhile: last went to the finishers
		seq++
		c.seq = seq
		c.journeys = slices.Grow(c.journeys, len(js))
		for _, pj := range js {
			c.journeys = append(c.journeys, chunkJourney{at: -1, pj: pj})
		}
		p.finishing <- c
	}
}

// splitJourneys is how many journeys a chunk takes before its finisher
// has a helper do half of them (a record after a gap in time closes
// every journey open: thousands, which one goroutine would finish alone
// while the other cores wait).
const splitJourneys = 2048

// finisher assembles and prints the journeys of the chunks the stage
// went over.
func (p *pipeline) finisher() {
	own := p.newJourneyFinisher()
	var helper *journeyFinisher
	perJourney := 2048 // bytes of text a journey took lately (a running mean)
	for c := range p.finishing {
		// Room for the chunk's journey text at once: a chunk that takes
		// many journeys would otherwise grow its buffer a dozen times.
		from := len(c.jout.b)
		c.jout.b = slices.Grow(c.jout.b, len(c.journeys)*perJourney*9/8)
		print := c.err == nil
		js := c.journeys
		var err error
		if len(js) < splitJourneys || runtime.GOMAXPROCS(0) == 1 {
			err = own.run(js, &c.jout, &c.jmarks, print)
		} else {
			if helper == nil {
				helper = p.newJourneyFinisher()
			}
			half := len(js) / 2
			helper.out.b = slices.Grow(helper.out.b[:0], (len(js)-half)*perJourney*9/8)
			helper.marks = helper.marks[:0]
			var herr error
			done := make(chan struct{})
			go func() {
				defer close(done)
				herr = helper.run(js[half:], &helper.out, &helper.marks, print)
			}()
			err = own.run(js[:half], &c.jout, &c.jmarks, print)
			<-done
			base := int32(len(c.jout.b))
			c.jout.b = append(c.jout.b, helper.out.b...)
			for _, m := range helper.marks {
				c.jmarks = append(c.jmarks, base+m)
			}
			if err == nil {
				err = herr
			}
		}
		if err != nil && c.err == nil {
			c.err = err
		}
		if n := len(js); n > 0 {
			perJourney = (perJourney*7 + (len(c.jout.b)-from)/n) / 8
		}
		p.finished <- c
	}
}

// journeyFinisher assembles journeys and prints them into a buffer.
type journeyFinisher struct {
	w     journeyWriter
	paths ui.JourneyPrinter
	j     decode.Journey // printed before the next is assembled into it
	// run's, printing NDJSON: the packet members of the journeys,
	// journey k's ending at packetEnds[k].
	packets    []byte
	packetEnds []int
	// A helper's text and where each journey's ends in it.
	out   textBuffer
	marks []int32
}

func (p *pipeline) newJourneyFinisher() *journeyFinisher {
	f := &journeyFinisher{}
	if p.newPaths != nil {
		f.paths = p.newPaths(&f.w)
	}
	return f
}

// run assembles js and, with print, prints them into out, noting in
// marks where each one's text ends. Printing NDJSON (without a filter),
// the journeys' packets are decoded and written first, one after another
// (keeping the decoder's memory in cache: 3% of a replay's time), and
// each journey is written around its packet.
func (f *journeyFinisher) run(js []chunkJourney, out *textBuffer, marks *[]int32, print bool) error {
	f.w.b = out
	nd, _ := f.paths.(*ui.NDJSON)
	if nd != nil && print {
		f.packets, f.packetEnds = f.packets[:0], f.packetEnds[:0]
		for k := range js {
			if fr := js[k].pj.Frame(); len(fr.Data) > 0 {
				f.packets = nd.PacketMember(f.packets, fr)
			}
			f.packetEnds = append(f.packetEnds, len(f.packets))
		}
	}
	var err error
	from := 0 // where journey k's packet member starts in f.packets
	for k := range js {
		js[k].pj.AssembleInto(&f.j)
		switch {
		case !print || err != nil || f.paths == nil:
		case nd != nil:
			var packet []byte // nil: a journey with no first frame has no packet member
			if to := f.packetEnds[k]; to > from {
				packet, from = f.packets[from:to], to
			}
			out.b = nd.AppendJourneyWithPacket(out.b, &f.j, packet)
		default:
			if perr := f.paths.Journey(&f.j); perr != nil {
				err = fmt.Errorf("write output: %w", perr)
			}
		}
		*marks = append(*marks, int32(len(out.b)))
	}
	return err
}

// journeyWriter lets a finisher's printer write into whichever buffer
// it is on.
type journeyWriter struct{ b *textBuffer }

func (w *journeyWriter) Write(b []byte) (int, error) { return w.b.Write(b) }

// textBuffer is text appended to in place: a finisher appends NDJSON
// journey records to it directly (ui.NDJSON.AppendJourneyWithPacket),
// which saves copying each from the printer's buffer; other printers
// write to it.
type textBuffer struct{ b []byte }

func (t *textBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	return len(p), nil
}

// writeFinished writes finished chunks in sequence and recycles them.
func (p *pipeline) writeFinished() {
	inOrder(p.finished, func(c *chunk) {
		p.write(c)
		p.recycle(c)
	})
}

// addRecord queues a hooktrace record (copied) in order with the frames;
// for a pipeline with a stage only.
func (p *pipeline) addRecord(c *capture.CustomRecord) error {
	return p.addChunkRecord(chunkRecord{custom: *c}, c.Payload)
}

// addFinish marks the end of the input for the stage.
func (p *pipeline) addFinish() error {
	err := p.addChunkRecord(chunkRecord{finish: true}, nil)
	p.ended = true
	return err
}

// errQueuedAfterEnd: something was queued after addFinish. The chunks
// of the journeys left at the end are numbered after the last chunk
// (finishRest): a chunk queued later would take one of their numbers.
var errQueuedAfterEnd = errors.New("internal error: output queued after the end of the input")

// addText queues text (copied) in order with the frames.
func (p *pipeline) addText(b []byte) error {
	return p.addChunkRecord(chunkRecord{}, b)
}

func (p *pipeline) addChunkRecord(r chunkRecord, data []byte) error {
	if p.ticked {
		p.mu.Lock()
		defer p.mu.Unlock()
	}
	if p.ended {
		return errQueuedAfterEnd
	}
	if p.cur != nil && (len(p.cur.entries) >= chunkEntries || len(p.cur.arena)+len(data) > cap(p.cur.arena)) {
		p.flush()
	}
	if p.cur == nil {
		p.cur = <-p.free
	}
	c := p.cur
	if len(data) > cap(c.arena)-len(c.arena) {
		// Larger than a chunk's arena (a big ruleset): a copy of its own.
		data = append([]byte(nil), data...)
	} else {
		start := len(c.arena)
		c.arena = append(c.arena, data...)
		data = c.arena[start:len(c.arena):len(c.arena)]
	}
	switch {
	case r.custom.Kind != 0:
		r.custom.Payload = data
	case !r.finish:
		r.text = data
	}
	c.recs = append(c.recs, r)
	c.entries = append(c.entries, int32(-len(c.recs)))
	return p.err()
}

// work prints a chunk's frames and records in order; it decodes the
// trace events, drops and losses for the stage, prints the trace events,
// and, when sight is set, reads the frames and trace events for the
// journey builder.
func (c *chunk) work(dec *decode.Decoder, recs *decode.RecordParser, steps *decode.StepTable, printer ui.PacketPrinter, tracer ui.TracePrinter, sight bool) {
	c.sighted = sight
	if sight {
		if n := len(c.frames); cap(c.sights) < n {
			c.sights = make([]decode.Sighting, n, chunkFrames)
		} else {
			c.sights = c.sights[:n]
		}
	}
	for _, e := range c.entries {
		if c.err == nil {
			c.err = c.workEntry(e, dec, recs, steps, printer, tracer)
		}
		c.marks = append(c.marks, int32(c.out.Len()))
	}
}

func (c *chunk) workEntry(e int32, dec *decode.Decoder, recs *decode.RecordParser, steps *decode.StepTable, printer ui.PacketPrinter, tracer ui.TracePrinter) error {
	if e >= 0 {
		shown := printer != nil && !c.hidden[e] // else nothing prints it
		if !shown && !c.sighted {
			return nil
		}
		if !shown && c.sights[e].ReadFrame(c.frames[e], steps) {
			return nil // read without decoding it
		}
		pkt := dec.Decode(c.frames[e])
		if c.sighted {
			c.sights[e].ReadPacket(pkt, steps)
		}
		if !shown {
			return nil
		}
		return printer.Packet(c.nums[e], pkt)
	}
	r := &c.recs[-e-1]
	if r.finish {
		return nil
	}
	if r.text != nil {
		_, err := c.out.Write(r.text)
		return err
	}
	var ok bool
	var ev *decode.TraceEvent
	if r.custom.Kind == capture.CustomTrace {
		if len(c.events) == cap(c.events) {
			// A new array: the records decoded so far point into the old one.
			c.events = make([]decode.TraceEvent, 0, max(64, 2*cap(c.events)))
		}
		c.events = c.events[:len(c.events)+1]
		ev = &c.events[len(c.events)-1]
	}
	r.got, ok, r.err = recs.ParseInto(&r.custom, ev) // into the chunk's arena, as long as the chunk lives
	r.parsed = ok
	if !ok || r.err != nil || r.got.Trace == nil {
		return nil
	}
	if c.sighted {
		r.sight = int32(len(c.tsights))
		if len(c.tsights) < cap(c.tsights) {
			c.tsights = c.tsights[:len(c.tsights)+1] // an earlier chunk's: ReadTrace reuses its buffer
		} else {
			c.tsights = append(c.tsights, decode.Sighting{})
		}
		c.tsights[len(c.tsights)-1].ReadTrace(r.got.Trace, steps)
	}
	if tracer != nil {
		return tracer.Trace(r.got.Trace)
	}
	return nil
}

// writeInterleaved writes the chunk's output, but for the text of the
// entries the stage cut, with the text of the journeys the stage closed
// after the entries that closed them.
func (c *chunk) writeInterleaved(w io.Writer) error {
	p := pieces{w: w, bufs: [2][]byte{c.out.Bytes(), c.jout.b}}
	from, jfrom, cut := 0, 0, 0
	for k, cj := range c.journeys {
		to, jto := 0, int(c.jmarks[k])
		if cj.at >= 0 {
			to = int(c.marks[cj.at])
		}
		c.addUncut(&p, from, to, &cut)
		p.add(1, jfrom, jto)
		from, jfrom = to, jto
	}
	c.addUncut(&p, from, c.out.Len(), &cut)
	return p.flush()
}

// addUncut adds the chunk's output from byte from to byte to, but for
// the text of the entries cut, from c.cut[*next] on (entries end on
// marks, so a cut entry's text is wholly in or out of the range).
func (c *chunk) addUncut(p *pieces, from, to int, next *int) {
	for ; *next < len(c.cut); *next++ {
		k := c.cut[*next]
		start, end := 0, int(c.marks[k])
		if k > 0 {
			start = int(c.marks[k-1])
		}
		if start >= to {
			break
		}
		p.add(0, from, start)
		from = end
	}
	p.add(0, from, to)
}

// pieces writes pieces of two buffers (a chunk's output and its journeys'
// text) in the order added, joining a piece to the one before when it
// goes on from it in the same buffer: the journeys a chunk's records
// closed one after another, with nothing printed between them (the
// journeys alone), go out in one write, not one or two each.
type pieces struct {
	w        io.Writer
	bufs     [2][]byte
	buf      int // the buffer of the piece not written yet, from byte from to byte to
	from, to int
	err      error
}

func (p *pieces) add(buf, from, to int) {
	switch {
	case from >= to:
		return
	case p.from < p.to && p.buf == buf && p.to == from:
		p.to = to
		return
	}
	p.flush()
	p.buf, p.from, p.to = buf, from, to
}

// flush writes the piece not written yet, and returns the first error.
func (p *pieces) flush() error {
	if p.from < p.to && p.err == nil {
		if _, err := p.w.Write(p.bufs[p.buf][p.from:p.to]); err != nil {
			p.err = fmt.Errorf("write output: %w", err)
		}
	}
	p.from, p.to = 0, 0
	return p.err
}
