package decode

import (
	"bytes"
	"slices"
	"sync"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// PendingJourney is a journey the builder closed and has not assembled
// (JourneyOptions.Unassembled): its observations as they came. Assemble
// puts them in path order and decides the outcome; it needs nothing of
// the builder but what the pending journey holds, so pending journeys
// can be assembled on other goroutines, many at once.
type PendingJourney struct {
	id          uint64
	first, last time.Time
	frame       capture.Frame
	frameIP     firstIP
	incomplete  bool
	selected    bool
	obs         []obs
	quiet       []uint64
	route       func(netns string, q nflog.RouteQuery) (nflog.RouteDecision, bool)
	pool        *obsPool
	keep        int // how many free observation slices the pool keeps
}

// Frame returns the journey's first sighting (Journey.Frame), before it
// is assembled.
func (pj *PendingJourney) Frame() capture.Frame { return pj.frame }

// Assemble makes the journey: its observations are put in path order,
// NAT and tunnel steps inserted, routes asked (JourneyOptions.Route), and
// the outcome decided. Call it, or AssembleInto, once.
func (pj *PendingJourney) Assemble() *Journey {
	j := &Journey{order: &obsOrder{alone: true}}
	pj.AssembleInto(j)
	j.order = nil // a journey kept (the UI keeps them) keeps no scratch
	return j
}

// AssembleInto is Assemble into j, whose lists (steps, packet, trace and
// drop numbers) it reuses: for a taker that is done with one journey
// (printed it) before it assembles the next. j's first sighting is the
// builder's copy, valid until the next AssembleInto into j.
func (pj *PendingJourney) AssembleInto(j *Journey) {
	steps, nums, order, held := j.Steps[:0], j.nums[:0], j.order, j.frame
	if order == nil {
		order = &obsOrder{}
	}
	*j = Journey{ID: pj.id, First: pj.first, Last: pj.last, Frame: pj.frame, Incomplete: pj.incomplete, Selected: pj.selected, order: order}
	// The first sighting is in a buffer of the builder's pool. A journey
	// assembled alone (Assemble) is kept, so it gets a copy of its own and
	// the buffer goes back below; else j holds the buffer until the next
	// journey is assembled into it, which gives it back then.
	back := pj.frame.Data
	if order.alone {
		j.Frame.Data = bytes.Clone(back)
	} else {
		j.frame, back = back, held
	}
	visits := order.put(pj.obs)
	if pj.route != nil {
		addRoutes(visits, pj.route)
	}
	j.Steps = pathSteps(visits, steps)
	for _, v := range visits {
		for _, o := range v.obs {
			if o.ep != nil && !o.outer && !j.Flow.Src.IsValid() {
				j.Flow = *o.ep
			}
		}
	}
	var np, nt, nd int
	for i := range pj.obs {
		o := &pj.obs[i]
		if o.ep != nil && !o.outer && o.proto != 0 && j.Proto == "" {
			j.Proto = protoName(o.proto)
		}
		switch o.from {
		case fromPacket:
			np++
		case fromTrace:
			nt++
		case fromDrop:
			nd++
		}
	}
	// One array for the three lists.
	nums = slices.Grow(nums, np+nt+len(pj.quiet)+nd)
	j.nums = nums
	for i := range pj.obs {
		if o := &pj.obs[i]; o.from == fromPacket {
			nums = append(nums, o.num)
		}
	}
	j.Packets, nums = sortedSet(nums), nums[len(nums):]
	for i := range pj.obs {
		if o := &pj.obs[i]; o.from == fromTrace {
			nums = append(nums, o.num)
		}
	}
	nums = append(nums, pj.quiet...)
	j.Traces, nums = sortedSet(nums), nums[len(nums):]
	for i := range pj.obs {
		if o := &pj.obs[i]; o.from == fromDrop {
			nums = append(nums, o.num)
		}
	}
	j.Drops = sortedSet(nums)
	if v := pj.frameIP; j.Proto == "" && v.read {
		// Seen only inside tunnel packets: the first sighting's innermost
		// packet says.
		j.Proto = protoName(v.proto)
		if !j.Flow.Src.IsValid() {
			j.Flow = v.ep
		}
	}
	decideOutcome(j, visits)
	order.forget()
	order.giveBack(pj.pool, pj.obs, back, pj.keep) // nothing of the journey (or the one before) points into them any more
	pj.obs, pj.frame.Data = nil, nil
}

// sortedSet sorts ns and drops repeats; nil when empty.
func sortedSet(ns []uint64) []uint64 {
	if len(ns) == 0 {
		return nil
	}
	slices.Sort(ns)
	return slices.Clip(slices.Compact(ns))
}

// ClosedPending returns the journeys closed since the last call, oldest
// first, unassembled (JourneyOptions.Unassembled). The slice is the
// builder's: it holds them until the builder's next call.
func (b *JourneyBuilder) ClosedPending() []PendingJourney {
	p := b.pending
	if b.pendingUsed > len(p) {
		clear(p[len(p):b.pendingUsed]) // what the last call returned
	}
	b.pendingUsed = len(p)
	b.pending = p[:0]
	return p
}

// obsPool keeps closed journeys' observation slices for new journeys (a
// journey's observations grow it a few times: most of the builder's
// allocations, and of the collector's work, were these). Pending
// journeys give theirs back from the goroutines that assemble them.
type obsPool struct {
	mu   sync.Mutex
	free [][]obs
	// bytes keeps the buffers that held journeys' first sightings, by
	// size class (frameClass).
	bytes [frameClasses][][]byte
}

// A journey's first sighting is copied into a buffer of one of
// frameClasses sizes, minFrameBuf bytes and doubling. Buffers go back to
// the pool when the journey is assembled, as its observation slice
// does: the copies were a third of a replay's allocations, and made the
// heap, and the page faults of growing it, twice as large. Larger frames
// get buffers the pool does not keep.
const (
	minFrameBuf  = 128
	frameClasses = 5 // 128 to 2048 bytes
)

// frameClass returns the class of the buffers for frames of n bytes; -1
// when n is larger than the largest.
func frameClass(n int) int {
	c := 0
	for size := minFrameBuf; size < n; size <<= 1 {
		if c++; c == frameClasses {
			return -1
		}
	}
	return c
}

// keptClass returns the class of buffer b when the pool keeps it: b was
// made by getBytes; else -1.
func keptClass(b []byte) int {
	c := frameClass(cap(b))
	if c < 0 || minFrameBuf<<c != cap(b) {
		return -1
	}
	return c
}

// getBytes returns an empty buffer that holds n bytes: one a journey
// left, or a new one.
func (p *obsPool) getBytes(n int) []byte {
	c := frameClass(n)
	if c < 0 {
		return make([]byte, 0, n)
	}
	p.mu.Lock()
	if free := p.bytes[c]; len(free) > 0 {
		b := free[len(free)-1]
		free[len(free)-1] = nil
		p.bytes[c] = free[:len(free)-1]
		p.mu.Unlock()
		return b
	}
	p.mu.Unlock()
	return make([]byte, 0, minFrameBuf<<c)
}

// putBytes keeps the buffers bs (of kept classes), unless keep of their
// class are kept already; p.mu is held.
func (p *obsPool) putBytes(bs [][]byte, keep int) {
	for _, b := range bs {
		if c := keptClass(b); c >= 0 && len(p.bytes[c]) < keep {
			p.bytes[c] = append(p.bytes[c], b[:0])
		}
	}
}

func (p *obsPool) get() []obs {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.free)
	if n == 0 {
		return nil
	}
	o := p.free[n-1]
	p.free = p.free[:n-1]
	return o
}

// minKeptObs is the smallest observation slice the pool keeps: a journey
// given a smaller one would grow it at once.
const minKeptObs = 8

// keptObs says whether the pool keeps an observation slice of o's
// size.
func keptObs(o []obs) bool { return cap(o) >= minKeptObs && cap(o) <= 64 }

// put keeps o, emptied, unless it is too small, too large, or keep are
// kept already, and the frame buffer data (nil: none) as putBytes does.
func (p *obsPool) put(o []obs, data []byte, keep int) {
	kept := keptObs(o)
	if kept {
		clear(o)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if kept && len(p.free) < keep {
		p.free = append(p.free, o[:0])
	}
	if data != nil {
		p.putBytes([][]byte{data}, keep)
	}
}

// putAll keeps the slices of os, emptied already, as put does, and the
// frame buffers bs.
func (p *obsPool) putAll(os [][]obs, bs [][]byte, keep int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := min(len(os), max(0, keep-len(p.free)))
	p.free = append(p.free, os[:n]...)
	p.putBytes(bs, keep)
}

// giveBackBatch is how many observation slices an assembler gathers
// before it gives them to the pool at once: the pool's lock, taken for
// each journey by the goroutines assembling and the builder's, cost
// more than the rest of giving them back.
const giveBackBatch = 32

// giveBack gathers a journey's observations, emptied, and its frame
// buffer (nil: none), for pool, and gives the pool what it gathered when
// there is a batch (or they are another builder's).
func (ord *obsOrder) giveBack(pool *obsPool, o []obs, data []byte, keep int) {
	if ord.alone {
		pool.put(o, data, keep)
		return
	}
	kept, keptData := keptObs(o), keptClass(data) >= 0
	if !kept && !keptData {
		return
	}
	if ord.pool != pool {
		ord.giveBackAll()
		ord.pool = pool
	}
	ord.keep = keep
	if kept {
		clear(o)
		ord.free = append(ord.free, o[:0])
	}
	if keptData {
		ord.freeBytes = append(ord.freeBytes, data)
	}
	if len(ord.free) >= giveBackBatch || len(ord.freeBytes) >= giveBackBatch {
		ord.giveBackAll()
	}
}

// giveBackAll gives the pool the observation slices and frame buffers
// gathered.
func (ord *obsOrder) giveBackAll() {
	if (len(ord.free) > 0 || len(ord.freeBytes) > 0) && ord.pool != nil {
		ord.pool.putAll(ord.free, ord.freeBytes, ord.keep)
	}
	clear(ord.free)
	ord.free = ord.free[:0]
	clear(ord.freeBytes)
	ord.freeBytes = ord.freeBytes[:0]
}
