package decode

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestUnassembledSameJourneys: a builder that leaves closed journeys
// unassembled (their taker assembles them, in any order, on other
// goroutines) gives the same journeys as one that assembles them as they
// close, with sightings read apart from the builder; and Closed, Flush
// and ClosedPending may be mixed on it.
func TestUnassembledSameJourneys(t *testing.T) {
	frames, traces := mixedStream(400)
	dec := NewDecoder()
	whole := NewJourneyBuilder(JourneyOptions{})
	var want []*Journey
	feedMixed(whole, dec, frames, traces, func() { want = append(want, whole.Closed()...) })
	want = append(want, whole.Flush()...)

	parts := NewJourneyBuilder(JourneyOptions{Unassembled: true})
	var pending []PendingJourney
	var got []*Journey
	take := func(k int) {
		switch k % 3 { // every way of taking them, in turn
		case 0:
			pending = append(pending, parts.ClosedPending()...)
		case 1:
			got = append(got, assembleAll(pending)...)
			pending = nil
			got = append(got, parts.Closed()...)
		case 2:
			pending = append(pending, parts.ClosedPending()...)
		}
	}
	ti := 0
	var steps StepTable
	for i, f := range frames {
		var s Sighting
		s.ReadPacket(dec.Decode(f), &steps)
		parts.AddSighting(&s)
		if i%5 == 4 {
			for _, ev := range traces[ti : ti+2] {
				var s Sighting
				s.ReadTrace(&ev, &steps)
				parts.AddSighting(&s)
			}
			ti += 2
		}
		take(i)
	}
	got = append(got, assembleAll(pending)...)
	got = append(got, assembleAll(parts.FlushPending())...)
	if len(got) != len(want) || len(want) < 400 {
		t.Fatalf("%d journeys, want %d (at least 400)", len(got), len(want))
	}
	for i := range want {
		w, _ := json.Marshal(want[i])
		g, _ := json.Marshal(got[i])
		if string(w) != string(g) {
			t.Fatalf("journey %d differs:\n got %s\nwant %s", i, g, w)
		}
	}
}

// assembleAll assembles pending journeys, the last first (the order a
// taker assembles them in does not matter).
func assembleAll(ps []PendingJourney) []*Journey {
	out := make([]*Journey, len(ps))
	for i := len(ps) - 1; i >= 0; i-- {
		out[i] = ps[i].Assemble()
	}
	return out
}

// TestClosedPendingAfterClosed: taking journeys with Closed between two
// ClosedPending calls (which reuses its slice) loses none and does not
// fail.
func TestClosedPendingAfterClosed(t *testing.T) {
	frames, _ := mixedStream(4)
	dec := NewDecoder()
	b := NewJourneyBuilder(JourneyOptions{Unassembled: true})
	add := func(p int, at time.Duration) {
		for _, f := range frames[p*5 : p*5+5] {
			f.Time = t0.Add(at + f.Time.Sub(frames[p*5].Time))
			b.AddPacket(dec.Decode(f))
		}
	}
	add(0, 0)
	add(1, 100*time.Millisecond)
	add(2, 3*time.Second) // closes 0 and 1
	if n := len(b.ClosedPending()); n != 2 {
		t.Fatalf("%d pending after the first two closed, want 2", n)
	}
	if n := len(b.Closed()); n != 0 {
		t.Fatalf("Closed gave %d, want none", n)
	}
	add(3, 6*time.Second) // closes 2
	if n := len(b.ClosedPending()); n != 1 {
		t.Fatalf("%d pending after the third closed, want 1", n)
	}
	if n := len(b.Flush()); n != 1 {
		t.Fatalf("Flush gave %d, want the last", n)
	}
}

// TestJourneyFrameBuffersReused: the buffers that hold closed journeys'
// first sightings go back to the builder for new journeys once
// assembled, and a journey Assemble gives (which a taker keeps) has bytes
// of its own: later journeys, copied into the same buffers, leave them
// as they were.
func TestJourneyFrameBuffersReused(t *testing.T) {
	frames, traces := mixedStream(3000)
	dec := NewDecoder()
	b := NewJourneyBuilder(JourneyOptions{Unassembled: true, Window: time.Millisecond})
	var kept []*Journey
	var into Journey
	check := func(j *Journey) {
		t.Helper()
		if len(j.Packets) == 0 || !bytes.Equal(j.Frame.Data, frames[j.Packets[0]].Data) {
			t.Fatalf("journey %d: first sighting %x, want packet %v's", j.ID, j.Frame.Data, j.Packets)
		}
	}
	reused := 0
	seen := map[*byte]bool{}
	feedMixed(b, dec, frames, traces, func() {
		for _, pj := range b.ClosedPending() {
			if buf := pj.Frame().Data; len(buf) > 0 {
				if seen[&buf[:1][0]] {
					reused++
				}
				seen[&buf[:1][0]] = true
			}
			if pj.id%2 == 0 {
				kept = append(kept, pj.Assemble())
				continue
			}
			pj.AssembleInto(&into)
			check(&into)
		}
	})
	for _, pj := range b.FlushPending() {
		kept = append(kept, pj.Assemble())
	}
	if reused < 1000 {
		t.Fatalf("%d journeys reused a buffer another had, want most of 3000", reused)
	}
	for _, j := range kept {
		check(j)
	}
}

// TestFlushPendingSome: closing the journeys left at the end a few at a
// time gives the journeys FlushPending does, in its order, and the same
// counts.
func TestFlushPendingSome(t *testing.T) {
	frames, traces := mixedStream(300)
	dec := NewDecoder()
	all, some := NewJourneyBuilder(JourneyOptions{Unassembled: true}), NewJourneyBuilder(JourneyOptions{Unassembled: true})
	var want, got []*Journey
	feedMixed(all, dec, frames, traces, nil)
	feedMixed(some, dec, frames, traces, nil)
	for _, pj := range all.FlushPending() {
		want = append(want, pj.Assemble())
	}
	calls := 0
	for js := some.FlushPendingSome(7); len(js) > 0; js = some.FlushPendingSome(7) {
		if calls++; len(js) > 7 {
			t.Fatalf("call %d gave %d journeys, want at most 7", calls, len(js))
		}
		for _, pj := range js {
			got = append(got, pj.Assemble())
		}
	}
	if len(want) != 300 || len(got) != len(want) || calls != (300+6)/7 {
		t.Fatalf("%d journeys in %d calls, want %d (300 in 43)", len(got), calls, len(want))
	}
	for i := range want {
		w, _ := json.Marshal(want[i])
		g, _ := json.Marshal(got[i])
		if string(w) != string(g) {
			t.Fatalf("journey %d differs:\n got %s\nwant %s", i, g, w)
		}
	}
	if a, s := all.Stats(), some.Stats(); a != s {
		t.Fatalf("stats %+v, want %+v", s, a)
	}
}
