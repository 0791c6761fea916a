package main

import (
	"fmt"
	"io"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/ui"
)

// On replay of a recording, chunks hold hooktrace's records beside the
// frames, in input order: the workers decode and print both (trace
// events are printed there, as packets are); the stage builds the
// journeys over each chunk in order, noting after which record each
// closed; render prints them, and the writer puts each journey's text
// after that record. Journey building so runs beside reading, printing
// and writing, and the output is the same as one goroutine doing
// everything in input order.

// chunkEntries bounds the frames and records of a chunk.
const chunkEntries = 2048

// chunkRecords is what a chunk holds of a replay's records.
type chunkRecords struct {
	// entries lists the chunk's frames and records in input order: i >= 0
	// is frame i, i < 0 record -i-1.
	entries []int32
	recs    []chunkRecord
	// marks[k] is the length of the chunk's output after entry k.
	marks []int32
	// journeys the stage closed: at is the entry they follow.
	journeys []chunkJourney
}

type chunkJourney struct {
	at int
	j  *decode.Journey
}

// chunkRecord is a hooktrace record, or text to print as it is.
type chunkRecord struct {
	custom capture.CustomRecord // its Payload in the chunk's arena
	text   []byte               // text instead of a record, in the arena
	got    decode.Recorded      // the trace event, drop or loss it holds (the worker decodes it)
	parsed bool                 // got or err is set
	err    error                // why it could not be decoded
	finish bool                 // the end of the input: the stage flushes what is left
}

func (r *chunkRecords) reset() {
	r.entries, r.marks = r.entries[:0], r.marks[:0]
	clear(r.journeys)
	r.journeys = r.journeys[:0]
	clear(r.recs)
	r.recs = r.recs[:0]
}

// useStage makes the pipeline build journeys with stage on every chunk
// in order, in a goroutine of its own; the journeys it closes are
// printed with render as the chunk is written, after the record that
// closed them. Call it before anything is queued.
func (p *pipeline) useStage(stage func(*chunk) error, render func(io.Writer, *decode.Journey) error) {
	if p.direct {
		return
	}
	p.stage, p.render = stage, render
	p.staged, p.rendered = make(chan *chunk, cap(p.free)), make(chan *chunk, cap(p.free))
	p.writeWG.Add(2)
	go func() {
		defer p.writeWG.Done()
		for c := range p.staged {
			if c.err == nil && p.err() == nil {
				c.err = p.stage(c)
			}
			p.rendered <- c
		}
		close(p.rendered)
	}()
	go func() {
		defer p.writeWG.Done()
		for c := range p.rendered {
			p.write(c)
			p.recycle(c)
		}
	}()
}

// addRecord queues a hooktrace record (copied) in order with the frames;
// for a pipeline with a stage only.
func (p *pipeline) addRecord(c *capture.CustomRecord) error {
	return p.addChunkRecord(chunkRecord{custom: *c}, c.Payload)
}

// addFinish marks the end of the input for the stage.
func (p *pipeline) addFinish() error {
	return p.addChunkRecord(chunkRecord{finish: true}, nil)
}

// addText queues text (copied) in order with the frames.
func (p *pipeline) addText(b []byte) error {
	return p.addChunkRecord(chunkRecord{}, b)
}

func (p *pipeline) addChunkRecord(r chunkRecord, data []byte) error {
	if p.ticked {
		p.mu.Lock()
		defer p.mu.Unlock()
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
// trace events, drops and losses for the stage, and prints the trace
// events.
func (c *chunk) work(dec *decode.Decoder, printer ui.PacketPrinter, tracer ui.TracePrinter) {
	for _, e := range c.entries {
		if c.err == nil {
			c.err = c.workEntry(e, dec, printer, tracer)
		}
		c.marks = append(c.marks, int32(c.out.Len()))
	}
}

func (c *chunk) workEntry(e int32, dec *decode.Decoder, printer ui.PacketPrinter, tracer ui.TracePrinter) error {
	if e >= 0 {
		if printer == nil {
			return nil
		}
		return printer.Packet(c.nums[e], dec.Decode(c.frames[e]))
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
	r.got, ok, r.err = decode.ParseRecorded(&r.custom)
	r.parsed = ok
	if ok && r.err == nil && r.got.Trace != nil && tracer != nil {
		return tracer.Trace(r.got.Trace)
	}
	return nil
}

// writeInterleaved writes the chunk's output with the journeys the stage
// closed, printed by render, after the entries that closed them.
func (c *chunk) writeInterleaved(w io.Writer, render func(io.Writer, *decode.Journey) error) error {
	out := c.out.Bytes()
	from := 0
	for _, cj := range c.journeys {
		to := int(c.marks[cj.at])
		if _, err := w.Write(out[from:to]); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		if err := render(w, cj.j); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		from = to
	}
	if _, err := w.Write(out[from:]); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
