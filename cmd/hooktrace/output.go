package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/ui"
)

// version names this build in the files it writes.
const version = "hooktrace 0.2"

// output is where packets go: a printer on stdout, a pcapng file, or both,
// fed through the parallel pipeline.
type output struct {
	out       *bufio.Writer
	shared    *lockedWriter // out, shared by the packet pipeline and trace printing
	traces    ui.TracePrinter
	paths     ui.JourneyPrinter // journeys, when tracing
	tap       *journeys         // takes every packet for journeys, when tracing
	wantStats bool              // print the final stats record (--json, not --journeys)
	pipe      *pipeline
	file      *os.File
	fileBuf   *bufio.Writer
	pcapng    *capture.PcapngWriter
}

// openOutput sets up what the options ask for. Without -w, packets are
// printed as text unless --json; with -w, only when asked.
func openOutput(o *options, stdout io.Writer) (*output, error) {
	out := &output{out: bufio.NewWriterSize(stdout, 256<<10), wantStats: o.json && !o.journeys}
	out.shared = &lockedWriter{w: out.out}
	var newPrinter printerFactory
	switch {
	case o.explain != nil || o.journeys: // journeys only
		if o.json {
			out.paths = ui.NewNDJSON(out.shared)
		} else {
			out.paths = ui.NewText(out.shared, time.Local)
		}
	case o.json:
		newPrinter = func(w io.Writer) ui.PacketPrinter { return ui.NewNDJSON(w) }
		out.traces = ui.NewNDJSON(out.shared)
		out.paths = ui.NewNDJSON(out.shared)
	case o.print || o.writeFile == "":
		newPrinter = func(w io.Writer) ui.PacketPrinter { return ui.NewText(w, time.Local) }
		out.traces = ui.NewText(out.shared, time.Local)
		out.paths = ui.NewText(out.shared, time.Local)
	}
	if o.writeFile != "" {
		f, err := os.Create(o.writeFile)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", o.writeFile, err)
		}
		out.file = f
		out.fileBuf = bufio.NewWriterSize(f, 1<<20)
		var host capture.Host
		if o.readFile == "" {
			host = capture.LocalHost() // a recording says where it was made, for merging
		}
		out.pcapng, err = capture.NewPcapngWriterHost(out.fileBuf, version, host)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("write %s: %w", o.writeFile, err)
		}
	}
	out.pipe = newPipeline(out.shared, out.pcapng, newPrinter)
	return out, nil
}

// packet queues packet number n for printing and writing.
func (o *output) packet(n uint64, f capture.Frame) error {
	if o.tap != nil {
		o.tap.frame(f)
	}
	return o.pipe.add(n, f)
}

// finish waits until every queued packet is printed and written.
func (o *output) finish() error {
	return o.pipe.close()
}

// stats writes the final stats record in --json mode; call after finish.
func (o *output) stats(stats []capture.InterfaceStats, traces []ui.TraceCounts) error {
	if !o.wantStats {
		return nil
	}
	if err := ui.NewNDJSON(o.shared).Stats(stats, traces); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// close finishes the pipeline if needed and flushes everything; the
// first error wins.
func (o *output) close() error {
	err := o.pipe.close()
	o.shared.mu.Lock() // a flusher may still be ticking
	ferr := o.out.Flush()
	o.shared.mu.Unlock()
	if ferr != nil && err == nil {
		err = fmt.Errorf("write output: %w", ferr)
	}
	if o.file != nil {
		if ferr := o.pcapng.Flush(); ferr != nil && err == nil { // under the writer's lock: the journeys flush it on a tick
			err = fmt.Errorf("write %s: %w", o.file.Name(), ferr)
		}
		if cerr := o.file.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", o.file.Name(), cerr)
		}
	}
	return err
}

// lockedWriter serialises whole writes from several goroutines: each
// printer writes one record per call.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// flushEvery flushes the shared output on a tick until the returned
// function is called, so that a live capture's lines appear as packets
// come rather than when a buffer fills.
func (o *output) flushEvery(d time.Duration) (stop func()) {
	o.pipe.ticked = true
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				o.pipe.flushPending()
				o.shared.mu.Lock()
				o.out.Flush()
				o.shared.mu.Unlock()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}
