package tui

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/hooktrace/hooktrace/capture"
)

// fakeClock is a Clock that moves only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	c       chan time.Time
	stopped bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), c: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t.c, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// advance moves the clock on and fires the timers that are due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.c <- c.now
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
}

// frameList is a capture.Source over frames at the given offsets from
// fixedNow.
type frameList struct{ at []time.Duration }

func (s *frameList) Next() (capture.Frame, error) {
	if len(s.at) == 0 {
		return capture.Frame{}, io.EOF
	}
	f := capture.Frame{Time: fixedNow.Add(s.at[0]), LinkType: capture.LinkTypeEthernet, Data: []byte{1}, Len: 1}
	s.at = s.at[1:]
	return f, nil
}

func (s *frameList) Close() error { return nil }

// player runs Next in a goroutine, as Feed does, and reports each frame
// it returns and each wait it starts.
type player struct {
	t     *testing.T
	pb    *Playback
	clock *fakeClock
	got   chan time.Duration // frame times, as offsets from fixedNow
	waits chan time.Duration
	end   chan error
}

func newPlayer(t *testing.T, speed int, at ...time.Duration) *player {
	c := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	pl := &player{t: t, clock: c, pb: NewPlayback(&frameList{at: at}, speed, c),
		got: make(chan time.Duration, 100), waits: make(chan time.Duration, 100), end: make(chan error, 1)}
	pl.pb.onWait = func(d time.Duration) { pl.waits <- d }
	go func() {
		for {
			f, err := pl.pb.Next()
			if err != nil {
				pl.end <- err
				return
			}
			pl.got <- f.Time.Sub(fixedNow)
		}
	}()
	t.Cleanup(func() { pl.pb.Close() })
	return pl
}

// guard bounds how long a test waits for the goroutine, so that a bug
// fails the test instead of hanging it; no result depends on it.
const guard = 10 * time.Second

// frame expects the next frame handed on to be at offset want.
func (pl *player) frame(want time.Duration) {
	pl.t.Helper()
	select {
	case got := <-pl.got:
		if got != want {
			pl.t.Fatalf("frame at %v, want %v", got, want)
		}
	case err := <-pl.end:
		select {
		case got := <-pl.got: // sent before the end
			if got != want {
				pl.t.Fatalf("frame at %v, want %v", got, want)
			}
		default:
			pl.t.Fatalf("playback ended (%v), want the frame at %v", err, want)
		}
	case <-time.After(guard):
		pl.t.Fatalf("no frame; want the one at %v", want)
	}
}

// wait expects Next to block for d (0: until a control changes) and no
// frame to have gone meanwhile.
func (pl *player) wait(d time.Duration) {
	pl.t.Helper()
	select {
	case got := <-pl.waits:
		if got != d {
			pl.t.Fatalf("waits %v, want %v", got, d)
		}
	case got := <-pl.got:
		pl.t.Fatalf("the frame at %v went; want a wait of %v", got, d)
	case <-time.After(guard):
		pl.t.Fatalf("no wait; want one of %v", d)
	}
	select {
	case got := <-pl.got:
		pl.t.Fatalf("the frame at %v went while Next waits", got)
	default:
	}
}

// none checks that no frame went. Call it only while nothing can wake
// Next (no timer due, no control changed): then it is not a race.
func (pl *player) none() {
	pl.t.Helper()
	select {
	case got := <-pl.got:
		pl.t.Fatalf("the frame at %v went", got)
	case got := <-pl.waits:
		pl.t.Fatalf("Next woke and waits %v again", got)
	default:
	}
}

const ms = time.Millisecond

func TestPlaybackRealTime(t *testing.T) {
	pl := newPlayer(t, 1, 0, 1000*ms, 3000*ms)
	pl.frame(0) // the first frame plays at once
	pl.wait(1000 * ms)
	pl.clock.advance(999 * ms)
	pl.none() // no timer fired: Next still waits
	pl.clock.advance(1 * ms)
	pl.frame(1000 * ms)
	pl.wait(2000 * ms)
	pl.clock.advance(2000 * ms)
	pl.frame(3000 * ms)
	select {
	case err := <-pl.end:
		if !errors.Is(err, io.EOF) {
			t.Errorf("end: %v", err)
		}
	case <-time.After(guard):
		t.Fatal("no end")
	}
	if st := pl.pb.State(); !st.Ended || st.Time != fixedNow.Add(3000*ms) {
		t.Errorf("state at the end: %+v", st)
	}
}

func TestPlaybackSpeedPauseStep(t *testing.T) {
	pl := newPlayer(t, 1, 0, 1000*ms, 3000*ms, 4000*ms, 4500*ms, 6000*ms, 6100*ms)
	pl.frame(0)
	pl.wait(1000 * ms)
	pl.clock.advance(1000 * ms)
	pl.frame(1000 * ms)
	pl.wait(2000 * ms)

	// x2: the 2 s to the next frame take 1 s, counted from the change.
	pl.clock.advance(400 * ms)
	if st := pl.pb.State(); st.Time != fixedNow.Add(1400*ms) {
		t.Errorf("playback clock %v, want +1.4s", st.Time.Sub(fixedNow))
	}
	pl.pb.SetSpeed(2)
	pl.wait(800 * ms) // 1.6 s of capture time left, at x2
	pl.clock.advance(300 * ms)
	if st := pl.pb.State(); st.Speed != 2 || st.Time != fixedNow.Add(2000*ms) {
		t.Errorf("state at x2: speed %d, clock %v, want 2, +2s", st.Speed, st.Time.Sub(fixedNow))
	}
	pl.clock.advance(500 * ms)
	pl.frame(3000 * ms)
	pl.wait(500 * ms)

	// Paused: no frame goes, however long the wait.
	pl.pb.SetPaused(true)
	pl.wait(0)
	pl.clock.advance(time.Hour)
	pl.none()
	if st := pl.pb.State(); !st.Paused || st.Stepped || st.Time != fixedNow.Add(3000*ms) {
		t.Errorf("paused: %+v", st)
	}

	// A step lets exactly one frame go, at once, and stays paused.
	pl.pb.Step()
	pl.frame(4000 * ms)
	pl.wait(0)
	pl.none()
	if st := pl.pb.State(); !st.Paused || !st.Stepped {
		t.Errorf("stepped: %+v", st)
	}
	pl.pb.Step()
	pl.frame(4500 * ms)
	pl.wait(0)

	// Resumed: on from the last frame's time; the pause does not count.
	pl.pb.SetPaused(false)
	pl.wait(750 * ms) // 1.5 s at x2
	pl.clock.advance(750 * ms)
	pl.frame(6000 * ms)

	// A step while playing pauses and lets one frame go.
	pl.wait(50 * ms)
	pl.pb.Step()
	pl.frame(6100 * ms)
	if st := pl.pb.State(); !st.Paused || !st.Stepped {
		t.Errorf("stepped while playing: %+v", st)
	}
}

func TestPlaybackMaxAndClose(t *testing.T) {
	pl := newPlayer(t, 1, 0, time.Hour, 2*time.Hour)
	pl.frame(0)
	pl.wait(time.Hour)
	pl.pb.SetSpeed(0) // as fast as possible: no more waits
	pl.frame(time.Hour)
	pl.frame(2 * time.Hour)
	if st := pl.pb.State(); st.Speed != 0 || st.Time != fixedNow.Add(2*time.Hour) {
		t.Errorf("state: %+v", st)
	}

	pl = newPlayer(t, 1, 0, time.Hour)
	pl.frame(0)
	pl.wait(time.Hour)
	pl.pb.Close()
	select {
	case err := <-pl.end:
		if !errors.Is(err, io.EOF) {
			t.Errorf("after Close: %v", err)
		}
	case <-time.After(guard):
		t.Fatal("Close did not end a waiting Next")
	}
}

func TestPlaybackTimeGoesBack(t *testing.T) {
	// Merged files can go back in time: play on from there.
	pl := newPlayer(t, 1, 0, 2000*ms, 1000*ms, 1500*ms)
	pl.frame(0)
	pl.wait(2000 * ms)
	pl.clock.advance(2000 * ms)
	pl.frame(2000 * ms)
	pl.frame(1000 * ms) // earlier: at once
	pl.wait(500 * ms)
	pl.clock.advance(500 * ms)
	pl.frame(1500 * ms)
}

func TestPlaybackSpeedKeys(t *testing.T) {
	pb := NewPlayback(&frameList{}, 1, &fakeClock{})
	for _, want := range []int{2, 10, 0, 0} {
		if got := pb.Faster(); got != want {
			t.Errorf("faster: %d, want %d", got, want)
		}
	}
	for _, want := range []int{10, 2, 1, 1} {
		if got := pb.Slower(); got != want {
			t.Errorf("slower: %d, want %d", got, want)
		}
	}
	pb.SetSpeed(5) // from --speed 5
	if got := pb.Faster(); got != 10 {
		t.Errorf("faster from x5: %d", got)
	}
	pb.SetSpeed(5)
	if got := pb.Slower(); got != 2 {
		t.Errorf("slower from x5: %d", got)
	}
}

// TestPlaybackKeys drives the playback keys and reads the status bar.
func TestPlaybackKeys(t *testing.T) {
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	pb := NewPlayback(&frameList{at: []time.Duration{1500 * ms, 2500 * ms}}, 1, clock)
	if _, err := pb.Next(); err != nil { // the first frame plays at once
		t.Fatal(err)
	}
	ch := make(chan Batch, 1)
	m := New(Options{Source: "test", Batches: ch, Location: time.UTC, Now: func() time.Time { return fixedNow }, Playback: pb})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	status := func() string {
		lines := strings.Split(screen(m), "\n")
		return lines[len(lines)-2]
	}
	for _, step := range []struct{ key, want string }{
		{"", "│ x1 12:00:01.500000 │"},
		{">", "│ x2 12:00:01.500000 │"},
		{"P", "│ paused x2 12:00:01.500000 │"},
		{"P", "│ x2 12:00:01.500000 │"},
		{">", "│ x10 12:00:01.500000 │"},
		{">", "│ max 12:00:01.500000 │"},
		{">", "│ max 12:00:01.500000 │"},
		{"<", "│ x10 12:00:01.500000 │"},
		{".", "│ step x10 12:00:01.500000 │"},
		{"<", "│ step x2 12:00:01.500000 │"},
		{"<", "│ step x1 12:00:01.500000 │"},
		{"<", "│ step x1 12:00:01.500000 │"},
		{"P", "│ x1 12:00:01.500000 │"},
	} {
		if step.key != "" {
			keys(m, step.key)
		}
		if s := status(); !strings.Contains(s, step.want) {
			t.Errorf("after %q the status bar is %q, want %q in it", step.key, s, step.want)
		}
	}
	// The playback clock runs between frames.
	clock.advance(250 * ms)
	if s := status(); !strings.Contains(s, "│ x1 12:00:01.750000 │") {
		t.Errorf("the playback clock did not run: %q", s)
	}
	// Once the file is loaded, playback is over.
	ch <- Batch{Done: true}
	m.Update(tickMsg(time.Now()))
	keys(m, "P")
	if s := status(); strings.Contains(s, "x1") || !strings.Contains(s, "whole file is loaded") || pb.State().Paused {
		t.Errorf("after the end: %q, %+v", s, pb.State())
	}
	// Without a playback, the keys say how to get one.
	m = newTestModel(100, 30, make(chan Batch))
	keys(m, ".")
	if !strings.Contains(status(), "--speed") {
		t.Errorf("no playback: %q", status())
	}
}

// TestPlaybackStepShowsOnePacket plays vxlan.pcap through Feed into the
// model at x1 on a fake clock: paused, nothing comes; a step lists
// exactly one more packet; resumed, the packets come as they happened.
func TestPlaybackStepShowsOnePacket(t *testing.T) {
	src, err := capture.Open("../../fixtures/vxlan.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	pb := NewPlayback(src, 1, clock)
	waits := make(chan time.Duration, 100)
	pb.onWait = func(d time.Duration) { waits <- d }
	ch := make(chan Batch, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer pb.Close()
	// One frame per batch: a paced frame is listed as soon as it is due.
	go Feed(ctx, pb, ch, FeedOptions{MaxFrames: 1})
	m := New(Options{Source: "test", Batches: ch, Location: time.UTC, Now: func() time.Time { return fixedNow }, Playback: pb})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})

	// waitThen expects Next to hold the next frame back for d; by then
	// the frames before it are in the channel.
	waitThen := func(d time.Duration, rows int) {
		t.Helper()
		select {
		case got := <-waits:
			if got != d {
				t.Fatalf("waits %v, want %v", got, d)
			}
		case <-time.After(guard):
			t.Fatalf("Next does not wait")
		}
		m.Update(tickMsg(time.Now()))
		if n := len(m.st.rows); n != rows {
			t.Fatalf("%d packets listed, want %d", n, rows)
		}
	}
	gap := 1250 * time.Microsecond // between the fixture's packets
	waitThen(gap, 1)
	clock.advance(gap)
	waitThen(gap, 2)

	keys(m, "P")
	waitThen(0, 2)
	clock.advance(time.Hour)
	m.Update(tickMsg(time.Now()))
	if n := len(m.st.rows); n != 2 {
		t.Fatalf("paused: %d packets", n)
	}
	keys(m, ".")
	waitThen(0, 3)
	keys(m, ".")
	waitThen(0, 4)
	if s := screen(m); !strings.Contains(s, "step x1 12:00:00.003750") {
		t.Errorf("status bar after two steps:\n%s", s)
	}

	keys(m, ">") // x2, still paused
	waitThen(0, 4)
	keys(m, "P") // resumed: the next gap takes half as long
	waitThen(gap/2, 4)
	clock.advance(gap / 2)
	waitThen(gap/2, 5)
	keys(m, ">", ">") // as fast as possible: the rest at once
	for deadline := time.Now().Add(guard); m.loading; {
		if time.Now().After(deadline) {
			t.Fatal("loading did not end")
		}
		m.Update(tickMsg(time.Now()))
	}
	if n := len(m.st.rows); n != 14 {
		t.Errorf("%d packets at the end, want 14", n)
	}
}

// recordFrames is a source of frames and, before each, a hooktrace
// record, as a recording's capture.File reads them.
type recordFrames struct {
	frameList
	custom bool // the next read is the record
}

func (s *recordFrames) NextRecord() (capture.Record, error) {
	if len(s.at) > 0 && !s.custom {
		s.custom = true
		return capture.Record{Custom: &capture.CustomRecord{Time: fixedNow.Add(s.at[0])}}, nil
	}
	s.custom = false
	f, err := s.Next()
	return capture.Record{Frame: f}, err
}

func TestPlaybackRecords(t *testing.T) {
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	pb := NewPlayback(&recordFrames{frameList: frameList{at: []time.Duration{0, time.Second}}}, 1, clock)
	waits := make(chan time.Duration, 10)
	pb.onWait = func(d time.Duration) { waits <- d }
	read := func() capture.Record {
		t.Helper()
		r, err := pb.NextRecord()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := read(); r.Custom == nil {
		t.Fatal("the first record is not the custom one")
	}
	if r := read(); r.Custom != nil || !r.Frame.Time.Equal(fixedNow) {
		t.Fatalf("second record %+v", r)
	}
	if r := read(); r.Custom == nil { // records are not paced
		t.Fatal("the third record is not the custom one")
	}
	got := make(chan capture.Record, 1)
	go func() {
		r, _ := pb.NextRecord()
		got <- r
	}()
	if d := <-waits; d != time.Second {
		t.Fatalf("frame waits %v", d)
	}
	clock.advance(time.Second)
	select {
	case r := <-got:
		if !r.Frame.Time.Equal(fixedNow.Add(time.Second)) {
			t.Errorf("frame %+v", r)
		}
	case <-time.After(guard):
		t.Fatal("the frame did not come")
	}
	if _, err := pb.NextRecord(); !errors.Is(err, io.EOF) || !pb.State().Ended {
		t.Errorf("end: %v, %+v", err, pb.State())
	}
}
