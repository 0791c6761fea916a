package tui

import (
	"io"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/hooktrace/hooktrace/capture"
)

// speeds are the playback speeds the keys step through, slowest first;
// 0 is as fast as the file can be read.
var speeds = []int{1, 2, 10, 0}

// speedRank orders speeds: 0, as fast as possible, is the fastest.
func speedRank(s int) int {
	if s == 0 {
		return math.MaxInt
	}
	return s
}

// Clock is the wall clock a Playback waits on; tests give a fake one.
type Clock interface {
	Now() time.Time
	// Timer returns a channel that receives once d has passed, and a
	// function that stops the timer.
	Timer(d time.Duration) (<-chan time.Time, func() bool)
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Playback is a capture.Source that hands on the frames of another as
// they happened: each frame waits until its time since the previous one,
// divided by the speed, has passed. It can be paused, stepped one frame
// at a time, and sped up or slowed down while it runs. Its methods are
// safe for concurrent use: FeedRecords' goroutine calls Next (through
// the caller's record source), the model's keys call the controls.
//
// The playback clock is where in the capture's time the playback is. It
// runs at the speed from anchorT, which it read at anchorW on the wall
// clock, and stands at held while paused or as fast as possible.
type Playback struct {
	src   capture.Source
	clock Clock

	mu       sync.Mutex
	speed    int
	paused   bool
	steps    int  // frames a step released that Next has not handed on
	stepped  bool // paused by a step
	ended    bool // the source ended
	held     time.Time
	last     time.Time // the time of the last frame handed on
	waiting  time.Time // the time of the frame Next holds back, if any
	anchored bool
	anchorT  time.Time
	anchorW  time.Time
	wake     chan struct{} // a control changed
	closed   chan struct{}
	once     sync.Once
	// onWait, for tests, is called before Next blocks, with how long it
	// will wait (0: until a control changes).
	onWait func(time.Duration)
}

// NewPlayback paces src at speed (0: as fast as possible), on clock (nil:
// the wall clock). FeedRecords lists a frame when it sends its batch:
// give it MaxFrames 1 so that each frame is listed as soon as it is due.
func NewPlayback(src capture.Source, speed int, clock Clock) *Playback {
	if clock == nil {
		clock = wallClock{}
	}
	return &Playback{src: src, clock: clock, speed: max(0, speed),
		wake: make(chan struct{}, 1), closed: make(chan struct{})}
}

// Next returns the next frame once it is due. After Close it returns
// io.EOF.
func (p *Playback) Next() (capture.Frame, error) {
	f, err := p.src.Next()
	if err != nil {
		p.mu.Lock()
		p.ended = true
		p.mu.Unlock()
		return f, err
	}
	if !p.hold(f.Time) {
		return capture.Frame{}, io.EOF
	}
	return f, nil
}

// NextRecord is Next for a source that also reads hooktrace's records
// beside the frames (a capture.File): the frames are paced, the other
// records handed on at once. Of another source it gives the frames.
func (p *Playback) NextRecord() (capture.Record, error) {
	rr, ok := p.src.(interface {
		NextRecord() (capture.Record, error)
	})
	if !ok {
		f, err := p.Next()
		return capture.Record{Frame: f}, err
	}
	r, err := rr.NextRecord()
	switch {
	case err != nil:
		p.mu.Lock()
		p.ended = true
		p.mu.Unlock()
		return r, err
	case r.Custom != nil:
		return r, nil
	case !p.hold(r.Frame.Time):
		return capture.Record{}, io.EOF
	}
	return r, nil
}

// Close stops the playback: a Next that waits returns io.EOF. The source
// it paces is its opener's to close.
func (p *Playback) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

// hold waits until a frame of time t is due, and records it as played;
// false when the playback was closed first.
func (p *Playback) hold(t time.Time) bool {
	for {
		p.mu.Lock()
		// A wake sent before now is for a change due() sees: only
		// changes made after it unlocks wake the select below.
		select {
		case <-p.wake:
		default:
		}
		due, wait := p.due(t)
		if due {
			p.play(t)
			p.mu.Unlock()
			return true
		}
		p.waiting = t
		p.mu.Unlock()
		var timer <-chan time.Time
		stop := func() bool { return false }
		if wait > 0 {
			timer, stop = p.clock.Timer(wait)
		}
		if p.onWait != nil {
			p.onWait(wait)
		}
		select {
		case <-timer:
		case <-p.wake:
		case <-p.closed:
			stop()
			return false
		}
		stop()
	}
}

// running says whether the playback clock runs. p.mu is held.
func (p *Playback) running() bool { return !p.paused && p.speed > 0 }

// due says whether a frame of time t may go now, or how long to wait
// (0: until a control changes). p.mu is held.
func (p *Playback) due(t time.Time) (bool, time.Duration) {
	switch {
	case p.paused && p.steps > 0:
		p.steps--
		return true, 0
	case p.paused:
		return false, 0
	case p.speed == 0:
		return true, 0
	}
	now := p.clock.Now()
	if !p.anchored {
		// The first frame plays at once.
		p.anchorT, p.anchorW, p.anchored = t, now, true
	}
	wait := t.Sub(p.anchorT)/time.Duration(p.speed) - now.Sub(p.anchorW)
	if wait <= 0 {
		return true, 0
	}
	return false, wait
}

// play records a frame of time t as handed on. p.mu is held.
func (p *Playback) play(t time.Time) {
	if t.Before(p.last) {
		// Time went back (merged or reordered frames): go on from here.
		p.anchorT, p.anchorW = t, p.clock.Now()
	}
	if !p.running() {
		p.held = t
	}
	p.last, p.waiting = t, time.Time{}
}

// position is the playback clock. p.mu is held.
func (p *Playback) position() time.Time {
	if !p.running() || !p.anchored {
		return p.held
	}
	t := p.anchorT.Add(p.clock.Now().Sub(p.anchorW) * time.Duration(p.speed))
	if !p.waiting.IsZero() && t.After(p.waiting) {
		t = p.waiting
	}
	return t
}

// change applies a change of the controls: the playback clock goes on
// from where it is. p.mu is held; change unlocks it.
func (p *Playback) change(apply func()) {
	p.held = p.position()
	apply()
	p.anchorT, p.anchorW, p.anchored = p.held, p.clock.Now(), !p.held.IsZero()
	// Wake a Next that waits, to look at the controls again.
	select {
	case p.wake <- struct{}{}:
	default:
	}
	p.mu.Unlock()
}

// SetSpeed sets the speed: 1 real time, 2 twice as fast, 0 as fast as
// possible.
func (p *Playback) SetSpeed(speed int) {
	p.mu.Lock()
	p.change(func() { p.speed = max(0, speed) })
}

// Faster goes to the next faster speed of x1, x2, x10 and as fast as
// possible, and returns the speed set; the fastest stays.
func (p *Playback) Faster() int {
	p.mu.Lock()
	s := p.speed
	for _, v := range speeds {
		if speedRank(v) > speedRank(s) {
			s = v
			break
		}
	}
	p.change(func() { p.speed = s })
	return s
}

// Slower goes to the next slower speed, and returns the speed set; x1
// stays.
func (p *Playback) Slower() int {
	p.mu.Lock()
	s := p.speed
	for i := len(speeds) - 1; i >= 0; i-- {
		if speedRank(speeds[i]) < speedRank(s) {
			s = speeds[i]
			break
		}
	}
	p.change(func() { p.speed = s })
	return s
}

// SetPaused pauses or resumes the playback. The playback clock stands
// while paused: resumed, it goes on from where it stood.
func (p *Playback) SetPaused(paused bool) {
	p.mu.Lock()
	p.change(func() { p.paused, p.stepped, p.steps = paused, false, 0 })
}

// TogglePause pauses a playback that runs and resumes a paused one; it
// returns whether it is paused now.
func (p *Playback) TogglePause() bool {
	p.mu.Lock()
	paused := !p.paused
	p.change(func() { p.paused, p.stepped, p.steps = paused, false, 0 })
	return paused
}

// Step pauses the playback and lets one more frame go.
func (p *Playback) Step() {
	p.mu.Lock()
	p.change(func() { p.paused, p.stepped = true, true; p.steps++ })
}

// PlaybackState is what the status bar shows of a playback.
type PlaybackState struct {
	Speed   int       // 0: as fast as possible
	Paused  bool      // paused, by a key or by a step
	Stepped bool      // paused by a step
	Ended   bool      // the source ended: nothing is left to pace
	Time    time.Time // the playback clock; zero before the first frame
}

// State returns the playback's state.
func (p *Playback) State() PlaybackState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PlaybackState{Speed: p.speed, Paused: p.paused, Stepped: p.stepped, Ended: p.ended, Time: p.position()}
}

// playbackKey acts on a playback key: P pauses or resumes, . steps, <
// and > change the speed.
func (m *Model) playbackKey(s string) {
	pb := m.opt.Playback
	switch {
	case pb == nil:
		m.setMessage("playback: open the file with --speed 1 to play it back in time")
		return
	case !m.loading:
		m.setMessage("playback: the whole file is loaded")
		return
	}
	switch s {
	case "P":
		pb.TogglePause()
	case ".":
		pb.Step()
	case "<":
		pb.Slower()
	case ">":
		pb.Faster()
	}
}

// playbackStatus is the playback's part of the status bar while it runs:
// the speed ("x2", "max"), "paused" or "step", and the playback clock.
func (m *Model) playbackStatus() string {
	pb := m.opt.Playback
	if pb == nil || !m.loading {
		return ""
	}
	st := pb.State()
	s := "max"
	if st.Speed > 0 {
		s = "x" + strconv.Itoa(st.Speed)
	}
	switch {
	case st.Stepped:
		s = "step " + s
	case st.Paused:
		s = "paused " + s
	}
	if !st.Time.IsZero() {
		s += " " + st.Time.In(m.opt.Location).Format("15:04:05.000000")
	}
	return s
}
