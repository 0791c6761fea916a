package decode

import (
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
	frameIP     ipView
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
// (printed it) before it assembles the next.
func (pj *PendingJourney) AssembleInto(j *Journey) {
	steps, nums, order := j.Steps[:0], j.nums[:0], j.order
	if order == nil {
		order = &obsOrder{}
	}
	*j = Journey{ID: pj.id, First: pj.first, Last: pj.last, Frame: pj.frame, Incomplete: pj.incomplete, Selected: pj.selected, order: order}
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
	if v := pj.frameIP; j.Proto == "" && v.fp != 0 {
		// Seen only inside tunnel packets: the first sighting's innermost
		// packet says.
		j.Proto = protoName(v.proto)
		if !j.Flow.Src.IsValid() {
			j.Flow = v.ep
		}
	}
	decideOutcome(j, visits)
	order.forget()
	order.giveBack(pj.pool, pj.obs, pj.keep) // nothing of the journey points into them any more
	pj.obs = nil
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
// kept already.
func (p *obsPool) put(o []obs, keep int) {
	if !keptObs(o) {
		return
	}
	clear(o)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < keep {
		p.free = append(p.free, o[:0])
	}
}

// putAll keeps the slices of os, emptied already, as put does.
func (p *obsPool) putAll(os [][]obs, keep int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := min(len(os), max(0, keep-len(p.free)))
	p.free = append(p.free, os[:n]...)
}

// giveBackBatch is how many observation slices an assembler gathers
// before it gives them to the pool at once: the pool's lock, taken for
// each journey by the goroutines assembling and the builder's, cost
// more than the rest of giving them back.
const giveBackBatch = 32

// giveBack gathers a journey's observations, emptied, for pool, and
// gives the pool what it gathered when there is a batch (or the slices
// are another builder's).
func (ord *obsOrder) giveBack(pool *obsPool, o []obs, keep int) {
	if ord.alone {
		pool.put(o, keep)
		return
	}
	if !keptObs(o) {
		return
	}
	clear(o)
	if ord.pool != pool {
		ord.giveBackAll()
		ord.pool = pool
	}
	ord.free, ord.keep = append(ord.free, o[:0]), keep
	if len(ord.free) >= giveBackBatch {
		ord.giveBackAll()
	}
}

// giveBackAll gives the pool the observation slices gathered.
func (ord *obsOrder) giveBackAll() {
	if len(ord.free) > 0 && ord.pool != nil {
		ord.pool.putAll(ord.free, ord.keep)
	}
	clear(ord.free)
	ord.free = ord.free[:0]
}
