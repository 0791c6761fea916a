package main

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/ui"
)

// The pipeline spreads decoding and formatting over every core while the
// output keeps the input's order: the reading goroutine fills chunks of
// frames, workers decode and print each chunk into its own buffer, and
// the writing goroutine writes the buffers in sequence.

const (
	chunkFrames = 512
	chunkArena  = 512 << 10
	// maxChunks bounds the chunks in flight (four a core otherwise): a
	// replay's chunk holds up to 2.5 MB of sightings beside its arena.
	maxChunks = 32
)

type chunk struct {
	seq    uint64
	frames []capture.Frame
	nums   []uint64 // each frame's number in the input
	hidden []bool   // each frame's: only the stage takes it (addHidden)
	arena  []byte   // the frames' bytes
	texts  []chunkText
	out    bytes.Buffer
	err    error

	chunkRecords // replay of a recording: the frames and records in order
}

func (c *chunk) fits(n int) bool {
	return len(c.frames) < chunkFrames && len(c.entries) < chunkEntries && len(c.arena)+n <= cap(c.arena)
}

func (c *chunk) add(n uint64, f capture.Frame, hidden bool) {
	start := len(c.arena)
	c.arena = append(c.arena, f.Data...)
	f.Data = c.arena[start:len(c.arena):len(c.arena)]
	c.frames = append(c.frames, f)
	c.nums = append(c.nums, n)
	c.hidden = append(c.hidden, hidden)
}

// chunkText is text printed before frame at of a chunk (at len(frames):
// after the last).
type chunkText struct {
	at   int
	text []byte
}

// printerFactory makes one printer per worker, writing into w.
type printerFactory func(w io.Writer) ui.PacketPrinter

// chunkWriter lets a worker's printer write into whichever chunk the
// worker is on.
type chunkWriter struct{ c *chunk }

func (w *chunkWriter) Write(b []byte) (int, error) { return w.c.out.Write(b) }

// pipeline decodes and prints frames in parallel, in order.
type pipeline struct {
	newPrinter printerFactory
	pcapng     *capture.PcapngWriter // written in order by the writer, may be nil
	out        interface{ Write([]byte) (int, error) }

	free      chan *chunk
	work      chan *chunk
	done      chan *chunk
	cur       *chunk
	seq       uint64
	wg        sync.WaitGroup
	writeWG   sync.WaitGroup
	werr      error       // the writer's first error
	failed    atomic.Bool // werr is set: err looks at it without the lock while it is not
	errMu     sync.Mutex
	closeOnce sync.Once

	// ticked: a live capture flushes the partly filled chunk on a tick
	// (flushPending, from another goroutine), so mu guards cur.
	ticked bool
	mu     sync.Mutex

	direct  bool // no workers: add prints and writes at once
	dec     *decode.Decoder
	printer ui.PacketPrinter

	// stage, when set (useStage, on replay), runs on every chunk in
	// order before it is written, in the writer: the journeys are built.
	// The chunks then hold records beside the frames (addRecord), and
	// journeys the stage closed, which finishers assemble and print with
	// newPaths, many chunks at once, before the writer writes them in
	// order (pipeline_records.go).
	stage func(*chunk) error
	// rest gives, after the stage went over the input's last chunk, the
	// journeys still open at its end, up to max at a time (finishRest).
	rest                func(max int) []decode.PendingJourney
	newPaths            func(io.Writer) ui.JourneyPrinter
	finishing, finished chan *chunk
	// noSights: the workers need not read frames and trace events for
	// the stage (it builds no journeys: an ordinary capture).
	noSights atomic.Bool
	// ended: addFinish queued the end of the input (the reader's).
	ended bool
}

func newPipeline(out interface{ Write([]byte) (int, error) }, pcapng *capture.PcapngWriter, newPrinter printerFactory) *pipeline {
	workers := runtime.GOMAXPROCS(0)
	if workers == 1 {
		// One core: work in the caller, without copying frames or handing
		// them between goroutines.
		p := &pipeline{pcapng: pcapng, out: out, direct: true, dec: decode.NewDecoder()}
		if newPrinter != nil {
			p.printer = newPrinter(out)
		}
		return p
	}
	n := min(4*workers, maxChunks)
	p := &pipeline{
		newPrinter: newPrinter, pcapng: pcapng, out: out,
		free: make(chan *chunk, n), work: make(chan *chunk, n), done: make(chan *chunk, n),
	}
	for i := 0; i < n; i++ {
		p.free <- &chunk{frames: make([]capture.Frame, 0, chunkFrames), nums: make([]uint64, 0, chunkFrames), arena: make([]byte, 0, chunkArena)}
	}
	for i := 0; i < workers; i++ {
		p.wg.Add(1)
		go p.worker()
	}
	p.writeWG.Add(1)
	go p.writer()
	return p
}

// add queues one frame, copying its bytes. It returns the writer's error,
// if any, so the caller stops reading.
func (p *pipeline) add(n uint64, f capture.Frame) error {
	if p.direct {
		return p.addDirect(n, f)
	}
	return p.addFrame(n, f, false)
}

func (p *pipeline) addFrame(n uint64, f capture.Frame, hidden bool) error {
	if p.ticked {
		p.mu.Lock()
		defer p.mu.Unlock()
	}
	if p.ended {
		return errQueuedAfterEnd
	}
	if p.cur != nil && !p.cur.fits(len(f.Data)) {
		p.flush()
	}
	if p.cur == nil {
		p.cur = <-p.free
	}
	if len(f.Data) > cap(p.cur.arena) {
		p.cur.arena = make([]byte, 0, len(f.Data))
	}
	p.cur.add(n, f, hidden)
	if p.stage != nil {
		p.cur.entries = append(p.cur.entries, int32(len(p.cur.frames)-1))
	}
	return p.err()
}

// addHidden queues frame n (copied) that the pipeline neither prints nor
// writes, for the stage only: on replay with a filter, a frame the filter
// did not pass still joins its packet's journey. For a pipeline with a
// stage.
func (p *pipeline) addHidden(n uint64, f capture.Frame) error {
	if p.stage == nil || p.direct {
		return nil
	}
	return p.addFrame(n, f, true)
}

// text queues text (copied) to be printed after the frames added so far
// and before those added next.
func (p *pipeline) text(b []byte) error {
	if p.direct {
		if _, err := p.out.Write(b); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		return nil
	}
	if p.ticked {
		p.mu.Lock()
		defer p.mu.Unlock()
	}
	if p.stage != nil {
		return p.addText(b)
	}
	if p.cur == nil {
		p.cur = <-p.free
	}
	p.cur.texts = append(p.cur.texts, chunkText{at: len(p.cur.frames), text: bytes.Clone(b)})
	return p.err()
}

func (p *pipeline) flush() {
	// A recording's chunk may hold records and no frame (the filter
	// matched none of its packets): it goes too.
	if p.cur == nil || len(p.cur.frames)+len(p.cur.texts)+len(p.cur.entries) == 0 {
		return
	}
	p.cur.seq = p.seq
	p.seq++
	p.work <- p.cur
	p.cur = nil
}

// flushPending hands the partly filled chunk to the workers, so that a
// live capture's packets are printed within a tick of arriving rather
// than when a chunk fills. Only for a pipeline with ticked set.
func (p *pipeline) flushPending() {
	if p.direct {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flush()
}

// close waits for everything queued to be written. Later calls only
// return the error.
func (p *pipeline) close() error {
	if p.direct {
		return p.err()
	}
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.flush()
		p.mu.Unlock()
		close(p.work)
		p.wg.Wait()
		close(p.done)
		p.writeWG.Wait()
	})
	return p.err()
}

// err returns the writer's first error. The reading goroutine asks for
// each frame and record.
func (p *pipeline) err() error {
	if !p.failed.Load() {
		return nil
	}
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.werr
}

// setErr keeps the writer's first error.
func (p *pipeline) setErr(err error) {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if p.werr == nil {
		p.werr = err
	}
	p.failed.Store(true)
}

func (p *pipeline) worker() {
	defer p.wg.Done()
	dec := decode.NewDecoder()
	var recs decode.RecordParser
	var steps decode.StepTable
	var cw chunkWriter
	var printer ui.PacketPrinter
	if p.newPrinter != nil {
		printer = p.newPrinter(&cw)
	}
	tracer, _ := printer.(ui.TracePrinter)
	for c := range p.work {
		if p.stage != nil { // set before the first chunk was queued
			cw.c = c
			c.work(dec, &recs, &steps, printer, tracer, !p.noSights.Load())
			p.done <- c
			continue
		}
		cw.c = c
		texts, frames := c.texts, c.frames
		if printer == nil {
			frames = nil // only the texts are printed
		}
		for i, f := range frames {
			for len(texts) > 0 && texts[0].at == i {
				c.out.Write(texts[0].text)
				texts = texts[1:]
			}
			if err := printer.Packet(c.nums[i], dec.Decode(f)); err != nil {
				c.err = err
				break
			}
		}
		for _, t := range texts {
			c.out.Write(t.text)
		}
		p.done <- c
	}
}

// writer writes chunks in sequence and recycles them; with a stage, it
// runs the stage on them in sequence and hands them to the finishers.
func (p *pipeline) writer() {
	defer p.writeWG.Done()
	stageFailed := false // the stage stops at its first error (the writer learns of it later)
	inOrder(p.done, func(c *chunk) {
		if p.stage != nil {
			if c.err == nil && p.err() == nil && !stageFailed {
				c.err = p.stage(c)
				stageFailed = c.err != nil
			}
			seq := c.seq // c is recycled once finished and written: not read after this
			p.finishing <- c
			p.finishRest(seq)
			return
		}
		p.write(c)
		p.recycle(c)
	})
	if p.stage != nil {
		close(p.finishing)
	}
}

// inOrder calls each on the chunks from in in sequence (seq 0, 1, ...),
// holding those that come early, until in is closed.
func inOrder(in <-chan *chunk, each func(*chunk)) {
	pending := map[uint64]*chunk{}
	next := uint64(0)
	for c := range in {
		pending[c.seq] = c
		for {
			c, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			each(c)
		}
	}
}

func (p *pipeline) recycle(c *chunk) {
	c.frames, c.nums, c.hidden, c.arena, c.texts, c.err = c.frames[:0], c.nums[:0], c.hidden[:0], c.arena[:0], c.texts[:0], nil
	c.chunkRecords.reset()
	c.out.Reset()
	p.free <- c
}

func (p *pipeline) write(c *chunk) {
	if p.err() != nil {
		return
	}
	err := c.err
	if err == nil && p.pcapng != nil {
		for i, f := range c.frames {
			if c.hidden[i] {
				continue // for the stage only
			}
			if err = p.pcapng.WritePacket(f); err != nil {
				err = fmt.Errorf("write pcapng: %w", err)
				break
			}
		}
	}
	if err == nil && (len(c.journeys) > 0 || len(c.cut) > 0) {
		err = c.writeInterleaved(p.out)
	} else if err == nil && c.out.Len() > 0 {
		if _, werr := p.out.Write(c.out.Bytes()); werr != nil {
			err = fmt.Errorf("write output: %w", werr)
		}
	}
	if err != nil {
		p.setErr(err)
	}
}

// addDirect prints and writes one frame in the caller.
func (p *pipeline) addDirect(n uint64, f capture.Frame) error {
	if err := p.err(); err != nil {
		return err
	}
	var err error
	if p.pcapng != nil {
		if werr := p.pcapng.WritePacket(f); werr != nil {
			err = fmt.Errorf("write pcapng: %w", werr)
		}
	}
	if err == nil && p.printer != nil {
		if perr := p.printer.Packet(n, p.dec.Decode(f)); perr != nil {
			err = fmt.Errorf("write output: %w", perr)
		}
	}
	if err != nil {
		p.setErr(err)
	}
	return err
}
