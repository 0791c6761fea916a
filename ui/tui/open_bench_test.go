package tui

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/fixtures/synth"
)

var (
	bigOnce sync.Once
	bigPath string
	bigErr  error
)

// benchDirs are the directories benchmarks wrote their captures into:
// TestMain removes them.
var benchDirs []string

// TestMain runs the tests and benchmarks, then removes what the
// benchmarks wrote (hundreds of megabytes).
func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range benchDirs {
		if d != "" {
			os.RemoveAll(d)
		}
	}
	os.Exit(code)
}

// bigCapture writes the 1,000,000-packet benchmark capture once per run
// (HOOKTRACE_BIG names an existing one instead).
func bigCapture(b *testing.B) string {
	bigOnce.Do(func() {
		if p := os.Getenv("HOOKTRACE_BIG"); p != "" {
			bigPath = p
			return
		}
		dir, err := os.MkdirTemp("", "hooktrace-big")
		benchDirs = append(benchDirs, dir)
		if err != nil {
			bigErr = err
			return
		}
		bigPath = filepath.Join(dir, "big.pcap")
		f, err := os.Create(bigPath)
		if err != nil {
			bigErr = err
			return
		}
		defer f.Close()
		bigErr = synth.WriteLarge(f, 1_000_000, 1)
	})
	if bigErr != nil {
		b.Fatal(bigErr)
	}
	return bigPath
}

// BenchmarkOpenMillion opens the 1,000,000-packet capture as the
// terminal UI does and reports when the first screen could be drawn and
// when the whole file was indexed.
func BenchmarkOpenMillion(b *testing.B) {
	path := bigCapture(b)
	for b.Loop() {
		start := time.Now()
		src, err := capture.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		back, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		idx, err := capture.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		ch := make(chan Batch, 16)
		ctx, cancel := context.WithCancel(context.Background())
		go Feed(ctx, src, ch, FeedOptions{Index: idx, Offset: idx.FrameOffset})
		m := New(Options{Batches: ch, File: back})
		// As the program runs it: a drain at once, then one per tick.
		var first, listed time.Duration
		for m.Update(tickMsg(time.Now())); ; m.Update(tickMsg(time.Now())) {
			_ = m.View()
			if first == 0 && len(m.st.rows) > 0 {
				first = time.Since(start)
			}
			if listed == 0 && len(m.st.rows) == 1_000_000 {
				listed = time.Since(start)
			}
			if !m.loading {
				break
			}
			time.Sleep(tickInterval)
		}
		all := time.Since(start)
		start = time.Now()
		f, err := compileFilter("tcp[13] & 2 != 0 or greater 120")
		if err != nil {
			b.Fatal(err)
		}
		m.setFilter(f)
		filtered := time.Since(start)
		if m.st.readErr != nil {
			b.Fatal(m.st.readErr)
		}
		cancel()
		src.Close()
		idx.Close()
		back.Close()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak := ms.HeapInuse
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "MiB-live")
		b.ReportMetric(float64(ms.Sys)/(1<<20), "MiB-sys")
		ms.HeapInuse = peak
		b.ReportMetric(first.Seconds(), "s-first")
		b.ReportMetric(listed.Seconds(), "s-listed")
		b.ReportMetric(all.Seconds(), "s-journeys")
		b.ReportMetric(filtered.Seconds(), "s-filter")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap")
		b.ReportMetric(float64(len(m.st.rows)), "rows")
	}
}

var (
	incidentOnce sync.Once
	incidentPath string
	incidentErr  error
)

// bigIncident writes a 1,000,000-frame recorded incident once per run
// (fixtures/gen -incident; HOOKTRACE_INCIDENT names an existing one
// instead).
func bigIncident(b *testing.B) string {
	incidentOnce.Do(func() {
		if p := os.Getenv("HOOKTRACE_INCIDENT"); p != "" {
			incidentPath = p
			return
		}
		dir, err := os.MkdirTemp("", "hooktrace-incident")
		benchDirs = append(benchDirs, dir)
		if err != nil {
			incidentErr = err
			return
		}
		incidentPath = filepath.Join(dir, "incident.pcapng")
		f, err := os.Create(incidentPath)
		if err != nil {
			incidentErr = err
			return
		}
		defer f.Close()
		incidentErr = synth.WriteIncident(f, 1_000_000, 1)
	})
	if incidentErr != nil {
		b.Fatal(incidentErr)
	}
	return incidentPath
}

// BenchmarkOpenIncident opens a 1,000,000-frame recorded incident as
// hooktrace -r does in the terminal UI (frames listed ahead and read
// again from the file, trace events and drops kept in a spool file) and
// reports the memory the model holds once loaded, the heap's peak
// (sampled on the ticks), the spool's size and the load time.
func BenchmarkOpenIncident(b *testing.B) {
	path := bigIncident(b)
	for b.Loop() {
		start := time.Now()
		f, err := capture.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		src := &recordingSource{f: f, rec: decode.NewRecording()}
		idx, err := capture.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		back, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		spool, err := os.CreateTemp("", "hooktrace-bench-spool")
		if err != nil {
			b.Fatal(err)
		}
		os.Remove(spool.Name())
		ch := make(chan Batch, 16)
		ctx, cancel := context.WithCancel(context.Background())
		go FeedRecords(ctx, src, ch, FeedOptions{Index: idx, Offset: idx.FrameOffset, Journeys: decode.JourneyOptions{IfName: src.rec.IfName}})
		m := New(Options{Batches: ch, File: back, Spool: spool, Incident: src})
		var peak uint64
		var ms runtime.MemStats
		for m.Update(tickMsg(time.Now())); m.loading; m.Update(tickMsg(time.Now())) {
			_ = m.View()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			time.Sleep(tickInterval)
		}
		all := time.Since(start)
		if m.loadErr != nil || m.st.readErr != nil {
			b.Fatal(m.loadErr, m.st.readErr)
		}
		cancel()
		f.Close()
		idx.Close()
		back.Close()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "MiB-live")
		b.ReportMetric(float64(peak)/(1<<20), "MiB-peakheap")
		b.ReportMetric(float64(m.st.spool.written+int64(len(m.st.spool.buf)))/(1<<20), "MiB-spool")
		b.ReportMetric(all.Seconds(), "s-journeys")
		b.ReportMetric(float64(len(m.st.rows)), "rows")
		b.ReportMetric(float64(len(m.st.kinds.traces)), "traces")
		b.ReportMetric(float64(len(m.st.kinds.drops)), "drops")
		runtime.KeepAlive(m)
		spool.Close()
	}
}
