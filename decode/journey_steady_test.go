package decode

import (
	"testing"
	"time"
)

// BenchmarkJourneySteady feeds the mixed stream of BenchmarkJourneyAssembly
// spread over 8 s of event time (a packet every 400 µs), so that journeys
// close while others open, as in a long recording, and reports records
// per second.
func BenchmarkJourneySteady(b *testing.B) {
	frames, traces := mixedStream(20000)
	const gap = 400 * time.Microsecond
	for i := range frames {
		p := i / 5
		frames[i].Time = t0.Add(time.Duration(p)*gap + time.Duration(i%5)*time.Microsecond)
	}
	for i := range traces {
		traces[i].Time = t0.Add(time.Duration(i/2)*gap + 30*time.Microsecond)
	}
	dec := NewDecoder()
	b.ReportAllocs()
	records := 0
	for b.Loop() {
		jb := NewJourneyBuilder(JourneyOptions{})
		feedMixed(jb, dec, frames, traces, func() { jb.Closed() })
		jb.Flush()
		records += len(frames) + len(traces)
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}
