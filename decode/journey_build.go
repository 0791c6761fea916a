package decode

import (
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// JourneyOptions configure a JourneyBuilder. The zero value works.
type JourneyOptions struct {
	// Window: a journey closes once nothing joined it for this long, in
	// event time (default 2 s). Events of one packet further apart than
	// this are not joined.
	Window time.Duration
	// MaxOpen bounds the open journeys (default 65536): beyond it the
	// oldest is closed early, and counted as evicted.
	MaxOpen int
	// IfName names an interface index of a namespace (NFLOG and kernel
	// drops carry indexes); nil leaves them as indexes.
	IfName func(netns string, index uint32) string
	// Route asks how the kernel routes a packet in a namespace; nil (a
	// replay) leaves the route steps out. The builder calls it when a
	// journey closes.
	Route func(netns string, q nflog.RouteQuery) (nflog.RouteDecision, bool)
	// Unassembled: closed journeys wait, unassembled, for ClosedPending,
	// so that the taker assembles them, on goroutines of its own.
	// (Closed and Flush assemble the ones waiting.)
	Unassembled bool
}

// JourneyStats count what a JourneyBuilder did.
type JourneyStats struct {
	Open      int    // journeys open now
	Closed    uint64 // journeys closed (evicted ones included)
	Evicted   uint64 // journeys closed early because MaxOpen was reached
	Events    uint64 // records taken
	Unmatched uint64 // records that joined no journey (a trace event without headers whose packet was not seen, a kernel drop of another packet)
}

// JourneyBuilder groups packets, trace events, NFLOG messages and kernel
// drops into one journey per packet. It is pure: it does no I/O (apart
// from the optional Route function it is given), keeps no goroutine, and
// goes by the records' own times, so the same records in the same order
// give the same journeys. Records should come in roughly time order;
// those of one packet may come out of order within the Window.
type JourneyBuilder struct {
	opt   JourneyOptions
	nopen int // journeys open now
	byFP  map[uint64]fpEntry
	// ambiguousAt: when each ambiguous entry of byFP became so; olderOf:
	// the journey each entry that was taken over was taken from.
	ambiguousAt map[uint64]time.Time
	olderOf     map[uint64]jref
	byTrace     map[traceID]*jstate
	byReset     map[uint64]*jstate
	queue       []jref     // open journeys (and some closed ones) in the order they started, so by id
	wheel       []idleSlot // open journeys by the time of their latest record (journey_idle.go)
	// spareSlots: the lists of slots the wheel passed, emptied, for new
	// slots.
	spareSlots [][]jref
	idle       []*jstate // closeIdle's, reused
	spare      []*jstate // closed journeys' states, for new journeys
	// early holds kernel drops that came before any other record of
	// their packet (the drop probe is faster than the capture), by
	// fingerprint, until the packet's journey starts or the window ends.
	early   map[uint64][]obs
	now     time.Time // the latest record time seen
	scanned time.Time // when idle journeys were last looked for
	closed  []*Journey
	nextID  uint64
	pool    *obsPool         // observation slices of closed journeys, emptied, for new ones
	steps   StepTable        // what AddPacket, AddTrace and AddDrop's steps say, each once
	pending []PendingJourney // closed, unassembled (JourneyOptions.Unassembled)
	// pendingUsed: how much of pending the last ClosedPending returned.
	pendingUsed int
	obsHint     int         // observations of the journeys closed lately (a running mean, times 16)
	eps         []Endpoints // the slab observations' endpoints are kept in now (keepEP)
	packets     uint64      // AddPacket calls so far
	traces      uint64      // AddTrace calls so far
	drops       uint64      // AddDrop calls so far
	stats       JourneyStats
}

// fpEntry finds a journey by a packet's fingerprint; outer says the
// fingerprint is of the tunnel packet carrying it. An ambiguous entry
// (two open journeys gave the same fingerprint: tunnel packets of the
// same size between the same hosts, say) names none (js nil) and finds
// nothing; when it became so is in the builder's ambiguousAt. (An entry
// is kept small: the index holds tens of thousands, looked up at random.)
type fpEntry struct {
	js    *jstate
	outer bool
	// taken: js took the fingerprint over from an older journey (a
	// packet alike seen again), which the builder's olderOf names while
	// it is open. Live, frames come after the trace events and drops of
	// the packets that follow them (they wait out the capture's
	// reordering), so a frame goes to the older one when that did not
	// see its packet where the frame was made, nor lose it before (join,
	// inOrder); trace events and drops go to the newest.
	taken bool
}

// inOrder returns the journeys fp's entry e names, oldest first: first
// is nil unless an older one is still open.
func (b *JourneyBuilder) inOrder(fp uint64, e fpEntry) (first, second *jstate) {
	if e.taken {
		if r := b.olderOf[fp]; r.js != nil && r.open() {
			first = r.js
		}
	}
	return first, e.js
}

// ambiguous says whether the entry names no journey: two gave its
// fingerprint.
func (e *fpEntry) ambiguous() bool { return e.js == nil }

// setFP makes e fingerprint fp's entry in place of old.
func (b *JourneyBuilder) setFP(fp uint64, old, e fpEntry) {
	b.forgetFP(fp, old)
	b.byFP[fp] = e
}

// forgetFP forgets what the builder keeps beside fp's entry old (when
// it became ambiguous, the journey it was taken over from), as the entry
// is replaced or deleted.
func (b *JourneyBuilder) forgetFP(fp uint64, old fpEntry) {
	switch {
	case old.ambiguous():
		delete(b.ambiguousAt, fp)
	case old.taken:
		delete(b.olderOf, fp)
	}
}

// jref names a journey in the queue and the idle wheel, which may still
// name it after it closed: its state is then reused for another journey,
// with another id.
type jref struct {
	js *jstate
	id uint64
}

// open says whether the journey named is still open.
func (r jref) open() bool { return r.js.open && r.js.id == r.id }

// jstate is an open journey.
type jstate struct {
	id     uint64
	open   bool  // not closed or merged into another yet
	filed  bool  // in the idle wheel, under slot
	slot   int64 // the wheel slot of last
	obs    []obs
	fps    []uint64
	traces []traceID
	resets []uint64
	// Room for the first fingerprints, trace id and reset key, which
	// most journeys have no more of: the lists start in it (newState),
	// so closing a journey finds them where its state is rather than in
	// three arrays of their own.
	fpRoom     [2]uint64
	traceRoom  [1]traceID
	resetRoom  [1]uint64
	first      time.Time
	last       time.Time
	frame      capture.Frame // first sighting, copied
	frameKT    bool          // frame's time is the kernel's
	frameIP    firstIP       // what frame's innermost IP packet shows
	ep         *Endpoints    // the endpoints kept last for its observations
	incomplete bool
	selected   bool     // a selected frame joined (Sighting.Select)
	quiet      []uint64 // trace events (AddTrace numbers) that joined without a step of their own
}

// obs is one observation of the packet, before ordering: its step is
// at, netns, iface and detail with what step points to (which
// observations alike share: fullStep puts them together). Its place in a
// namespace's path is its step's (stepWhat.rank and prio).
type obs struct {
	at    time.Time
	netns string
	iface string
	step  *stepWhat
	// ep is the packet's endpoints as this observation saw them, nil
	// when it showed none. Once added to a journey, it points into the
	// builder's endpoint slabs (keepEP), never changed.
	ep    *Endpoints
	x     *obsExtra // what few observations have; nil: none
	num   uint64    // the number of the record (AddPacket, AddTrace or AddDrop call) it came from, of kind from
	mark  uint32
	from  obsSource // which kind of record it came from; 0: none
	proto uint8     // transport protocol of ep
	outer bool      // seen as (or in) the tunnel packet
	ttl   uint8     // the packet's TTL or hop limit, from the headers the record showed (0: none)
}

// obsExtra is what few observations have, kept apart so that the many
// others are smaller (a journey's observations are read cold when it is
// assembled). An observation's arrival order is its place in its
// journey's list.
type obsExtra struct {
	tunnel tunnelView // a sighting that showed both the packet and its tunnel packet; name "": none
	detail string     // a few words more, for the reader (an ICMP error's type and sender...)
}

// tun returns the tunnel packet the sighting showed along with the
// packet, nil when none.
func (o *obs) tun() *tunnelView {
	if o.x == nil || o.x.tunnel.name == "" {
		return nil
	}
	return &o.x.tunnel
}

// detail returns the observation's few words more, "" when none.
func (o *obs) detail() string {
	if o.x == nil {
		return ""
	}
	return o.x.detail
}

// extra returns what few observations have, for setting: a copy of
// o's own, which the copies of o made before share.
func (o *obs) extra() *obsExtra {
	var x obsExtra
	if o.x != nil {
		x = *o.x
	}
	o.x = &x
	return o.x
}

// kernelTime says whether the observation's time is the kernel's
// (frames, NFLOG, kernel drops), not hooktrace's receive time.
func (o *obs) kernelTime() bool { return o.from == fromPacket || o.from == fromDrop }

// obsSource is the kind of record an observation came from.
type obsSource uint8

const (
	fromPacket obsSource = iota + 1 // a frame or NFLOG message (AddPacket)
	fromTrace                       // a trace event (AddTrace)
	fromDrop                        // a kernel drop (AddDrop)
)

// NewJourneyBuilder returns an empty builder.
func NewJourneyBuilder(opt JourneyOptions) *JourneyBuilder {
	if opt.Window <= 0 {
		opt.Window = 2 * time.Second
	}
	if opt.MaxOpen <= 0 {
		opt.MaxOpen = 65536
	}
	return &JourneyBuilder{
		opt: opt, byFP: map[uint64]fpEntry{}, ambiguousAt: map[uint64]time.Time{}, olderOf: map[uint64]jref{},
		byTrace: map[traceID]*jstate{}, byReset: map[uint64]*jstate{}, early: map[uint64][]obs{}, pool: &obsPool{},
	}
}

// Stats returns the builder's counters.
func (b *JourneyBuilder) Stats() JourneyStats {
	s := b.stats
	s.Open = b.nopen
	return s
}

// Closed returns the journeys closed since the last call, oldest first.
func (b *JourneyBuilder) Closed() []*Journey {
	for i := range b.pending {
		b.closed = append(b.closed, b.pending[i].Assemble())
	}
	clear(b.pending[:max(len(b.pending), b.pendingUsed)])
	b.pending, b.pendingUsed = b.pending[:0], 0
	c := b.closed
	b.closed = nil
	return c
}

// Flush closes every open journey (at the end of the input) and returns
// all closed journeys not yet taken.
func (b *JourneyBuilder) Flush() []*Journey {
	b.closeAll()
	return b.Closed()
}

// FlushPending is Flush for a builder with JourneyOptions.Unassembled:
// the journeys come unassembled.
func (b *JourneyBuilder) FlushPending() []PendingJourney {
	b.closeAll()
	return b.ClosedPending()
}

// FlushPendingSome is FlushPending a part at a time: it closes up to n
// of the journeys still open (the first started first) and returns them
// with those closed before. Call it until it returns none; then every
// journey is closed, as after FlushPending. The journeys go out in the
// same order as FlushPending's, without a slice of all of them at once
// (a replay's end closed twenty thousand into one).
func (b *JourneyBuilder) FlushPendingSome(n int) []PendingJourney {
	i, closed := 0, 0
	for ; i < len(b.queue) && closed < n; i++ {
		if r := b.queue[i]; r.open() {
			b.close(r.js)
			closed++
		}
	}
	clear(b.queue[:i])
	b.queue = b.queue[i:]
	if len(b.queue) == 0 {
		b.closeAll()
	}
	return b.ClosedPending()
}

func (b *JourneyBuilder) closeAll() {
	for _, r := range b.queue {
		if r.open() {
			b.close(r.js)
		}
	}
	clear(b.queue)
	b.queue = b.queue[:0]
	clear(b.wheel)
	b.wheel = b.wheel[:0]
	for fp, early := range b.early {
		delete(b.early, fp)
		b.stats.Unmatched += uint64(len(early))
	}
}

// AddRecorded gives the builder what a hooktrace record held: a trace
// event, a kernel drop, or a loss of events.
func (b *JourneyBuilder) AddRecorded(r Recorded) {
	switch {
	case r.Trace != nil:
		b.AddTrace(r.Trace)
	case r.Drop != nil:
		b.AddDrop(r.Drop)
	case r.Loss != nil:
		b.MarkLoss(r.Loss.Netns, r.Loss.Time)
	}
}

// MarkLoss notes that the kernel lost events of namespace netns ("" for
// all) at time at: journeys open then are marked incomplete.
func (b *JourneyBuilder) MarkLoss(netns string, at time.Time) {
	for _, r := range b.queue {
		if js := r.js; r.open() && (netns == "" || js.seen(netns)) && !js.last.Before(at.Add(-b.opt.Window)) {
			js.incomplete = true
		}
	}
}

func (js *jstate) seen(netns string) bool {
	for i := range js.obs {
		if js.obs[i].netns == netns {
			return true
		}
	}
	return false
}

// advance moves event time on with a record and closes the journeys idle
// for longer than the window.
func (b *JourneyBuilder) advance(t time.Time) {
	b.stats.Events++
	if t.After(b.now) {
		b.now = t
	}
	if b.now.Sub(b.scanned) < b.opt.Window/idleSlots {
		return
	}
	b.closeIdle()
}

// Advance tells the builder that time has reached t even though no record
// came (a live source that went quiet): the journeys idle for longer than
// the window close.
func (b *JourneyBuilder) Advance(t time.Time) {
	if t.After(b.now) {
		b.now = t
	}
	b.closeIdle()
}

// find returns the open journey a fingerprint names, if it was seen
// within the window.
func (b *JourneyBuilder) find(fp uint64, t time.Time) (fpEntry, bool) {
	e, ok := b.byFP[fp]
	if !ok || e.ambiguous() {
		return e, false
	}
	if d := t.Sub(e.js.last); d > b.opt.Window || d < -b.opt.Window {
		return e, false
	}
	return e, true
}

// start opens a journey.
func (b *JourneyBuilder) start(t time.Time) *jstate {
	if b.nopen >= b.opt.MaxOpen {
		// The oldest journey still open goes first: the queue is in the
		// order journeys started; closed ones are skipped as they come
		// up, so finding it costs O(1) on average, not a scan.
		for len(b.queue) > 0 {
			oldest := b.queue[0]
			b.queue[0] = jref{}
			b.queue = b.queue[1:]
			if oldest.open() {
				b.stats.Evicted++
				b.close(oldest.js)
				break
			}
		}
	}
	b.nextID++
	js := b.newState()
	*js = jstate{id: b.nextID, open: true, first: t, last: t, obs: b.newObs(), fps: js.fps[:0], traces: js.traces[:0], resets: js.resets[:0]}
	b.nopen++
	b.touch(js)
	if len(b.queue) > 4*b.nopen+64 {
		// Drop the closed journeys the queue still names.
		live := b.queue[:0]
		for _, q := range b.queue {
			if q.open() {
				live = append(live, q)
			}
		}
		clear(b.queue[len(live):])
		b.queue = live
	}
	b.queue = append(b.queue, jref{js, js.id})
	return js
}

// newState returns a closed journey's state to reuse, or a new one.
func (b *JourneyBuilder) newState() *jstate {
	if n := len(b.spare); n > 0 {
		js := b.spare[n-1]
		b.spare[n-1] = nil
		b.spare = b.spare[:n-1]
		return js
	}
	js := &jstate{}
	js.fps, js.traces, js.resets = js.fpRoom[:0], js.traceRoom[:0], js.resetRoom[:0]
	return js
}

// spareState keeps a journey's state, closed or merged into another, for
// a new journey. Nothing but the queue and the idle wheel may name it
// still, and they tell it by its id.
func (b *JourneyBuilder) spareState(js *jstate) {
	if len(b.spare) < b.obsKept() {
		js.frame, js.frameIP, js.quiet, js.ep = capture.Frame{}, firstIP{}, nil, nil // the closed journey has them (and its endpoints slab)
		b.spare = append(b.spare, js)
	}
}

// index registers a fingerprint of the journey; again says the journey
// holding it saw its packet where js's was just seen, so it holds it no
// more.
func (b *JourneyBuilder) index(js *jstate, fp uint64, outer, again bool) {
	if fp == 0 {
		return
	}
	e, ok := b.byFP[fp]
	var older jref
	switch {
	case ok && e.js == js:
		return
	case again: // js takes it over
		if ok && e.js != nil {
			older = jref{e.js, e.js.id}
		}
	case ok && e.ambiguous():
		if js.last.Sub(b.ambiguousAt[fp]) <= b.opt.Window {
			return
		}
	case ok:
		if e.js.open && js.last.Sub(e.js.last) <= b.opt.Window {
			if outer && e.js.onlyHeaders() {
				// A journey that knew only this tunnel packet (trace events
				// in the underlay, which show no inner packet) is this
				// packet's: one journey.
				b.merge(js, e.js)
				return
			}
			// Two packets in the window with one fingerprint: it tells
			// neither apart any more.
			b.setFP(fp, e, fpEntry{})
			b.ambiguousAt[fp] = js.last
			return
		}
	}
	if ok {
		b.setFP(fp, e, fpEntry{js: js, outer: outer, taken: older.js != nil})
	} else {
		b.byFP[fp] = fpEntry{js: js, outer: outer, taken: older.js != nil}
	}
	if older.js != nil {
		b.olderOf[fp] = older
	}
	js.fps = append(js.fps, fp)
	if early, ok := b.early[fp]; ok {
		// A packet is freed once: a drop like one taken already waits
		// for the next journey.
		later := early[:0]
		for _, o := range early {
			o.outer = outer
			if js.droppedAt(&o, outer) {
				later = append(later, o)
				continue
			}
			b.add(js, &o, o.ep)
		}
		if len(later) == 0 {
			delete(b.early, fp)
		} else {
			b.early[fp] = later
		}
	}
}

// sawAt says whether the journey has a bare sighting of its packet
// (not in a tunnel packet) made where o was (a frame on the same device
// going the same way, or hooktrace's NFLOG copy entering or leaving the
// same hook), with the same TTL: a packet is seen there only once. (A
// user's NFLOG rule may log it twice: two rules with one prefix.)
func (js *jstate) sawAt(o *obs) bool {
	if o.from != fromPacket || o.step.Kind != StepCapture && o.step.Kind != StepHook {
		return false
	}
	for i := range js.obs {
		p := &js.obs[i]
		if p.from == fromPacket && p.ttl == o.ttl && !p.outer && p.iface == o.iface && p.netns == o.netns && sameStep(p.step, o.step) {
			return true
		}
	}
	return false
}

// stoppedBefore says whether the journey's packet was dropped (a kernel
// drop, or a rule or policy's drop verdict, whose time is when hooktrace
// got it: no earlier than the drop) before t: no frame of it is made
// after that.
func (js *jstate) stoppedBefore(t time.Time) bool {
	for i := range js.obs {
		p := &js.obs[i]
		if p.step.drops() && p.at.Before(t) {
			return true
		}
	}
	return false
}

// copyGap: copies of one packet (a bridge floods one to each port,
// multicast sent locally is looped back) reach a chain, or are dropped,
// within microseconds of each other; a packet sent again, not sooner
// than this after the first.
const copyGap = 10 * time.Millisecond

// tracedAt says whether the journey has the trace event that showed
// its packet's headers (ttl, as the tunnel packet or not: outer) in the
// base chain of trace event s (its table, chain and hook, in its
// namespace, on its device), under another trace id and at least
// copyGap before: a packet enters a base chain once, but for copies and
// re-injection (NFQUEUE's repeat, under its own trace id).
func (js *jstate) tracedAt(s *Sighting, ttl uint8, outer bool) bool {
	if slices.Contains(js.traces, s.traceID) {
		return false
	}
	for i := range js.obs {
		p := &js.obs[i]
		if p.from == fromTrace && p.ttl != 0 && p.ttl == ttl && p.outer == outer && p.netns == s.netns && p.iface == s.iface &&
			s.time.Sub(p.at) >= copyGap &&
			p.step.Chain == s.step.Chain && p.step.Table == s.step.Table && p.step.Family == s.step.Family && p.step.Hook == s.step.Hook {
			return true
		}
	}
	return false
}

// droppedAt says whether the journey has a kernel drop like o (the same
// namespace, reason, place in the kernel and TTL, as the tunnel packet
// or not: outer) at least copyGap before: a packet is freed once (its
// copies, each).
func (js *jstate) droppedAt(o *obs, outer bool) bool {
	for i := range js.obs {
		p := &js.obs[i]
		if p.from == fromDrop && p.ttl == o.ttl && p.outer == outer && p.netns == o.netns && o.at.Sub(p.at) >= copyGap &&
			sameStep(p.step, o.step) {
			return true
		}
	}
	return false
}

// onlyHeaders says whether a journey knows its packet only from trace
// events' header snapshots (no frame and no NFLOG copy showed more).
func (js *jstate) onlyHeaders() bool {
	for i := range js.obs {
		if js.obs[i].step.Kind != StepRule && js.obs[i].step.Kind != StepPolicy {
			return false
		}
	}
	return true
}

// merge moves journey from into into, as observations of into's tunnel
// packet, and points everything that found from at into.
func (b *JourneyBuilder) merge(into, from *jstate) {
	from.open = false
	b.nopen--
	for _, o := range from.obs {
		o.outer = true
		b.add(into, &o, o.ep)
	}
	for _, fp := range from.fps {
		if e, ok := b.byFP[fp]; ok && e.js == from {
			b.setFP(fp, e, fpEntry{js: into, outer: true})
			into.fps = append(into.fps, fp)
		}
	}
	for _, k := range from.traces {
		if b.byTrace[k] == from {
			b.byTrace[k] = into
			into.traces = append(into.traces, k)
		}
	}
	for _, k := range from.resets {
		if b.byReset[k] == from {
			b.byReset[k] = into
			into.resets = append(into.resets, k)
		}
	}
	into.incomplete = into.incomplete || from.incomplete
	into.selected = into.selected || from.selected
	into.quiet = append(into.quiet, from.quiet...)
	b.freeObs(from.obs)
	from.obs = nil
	b.spareState(from)
}

// newObs returns an empty slice for a journey's observations: one a
// closed journey left, or a new one.
func (b *JourneyBuilder) newObs() []obs {
	if o := b.pool.get(); o != nil {
		return o
	}
	// Half again as many as journeys lately had, so that a journey
	// rarely grows it (and the slice, kept for another, rarely needs to).
	return make([]obs, 0, max(minKeptObs, (b.obsHint+15)/16*3/2))
}

// freeObs keeps a closed journey's observation slice for a new journey.
func (b *JourneyBuilder) freeObs(o []obs) {
	b.pool.put(o, nil, b.obsKept())
}

// epSlab is how many endpoints a slab of keepEP holds.
const epSlab = 1024

// keepEP returns a copy of *ep that stays as it is: journey js's last
// one when equal (a packet's observations mostly see the same
// endpoints), else a new one in the builder's slab (js nil: always). A
// slab is never written again once full, so the observations of closed
// journeys can be read on other goroutines; it goes when none points
// into it.
func (b *JourneyBuilder) keepEP(js *jstate, ep *Endpoints) *Endpoints {
	if js != nil && js.ep != nil && (js.ep == ep || *js.ep == *ep) {
		return js.ep
	}
	if len(b.eps) == cap(b.eps) {
		b.eps = make([]Endpoints, 0, epSlab)
	}
	b.eps = append(b.eps, *ep)
	kept := &b.eps[len(b.eps)-1]
	if js != nil {
		js.ep = kept
	}
	return kept
}

// obsKept is how many free observation slices the pool keeps: as many as
// journeys are open, and at least 2048.
func (b *JourneyBuilder) obsKept() int { return max(2048, b.nopen) }

// add records an observation (a copy of o, which it completes) that saw
// the packet's endpoints as ep (nil: none; kept as a copy).
func (b *JourneyBuilder) add(js *jstate, o *obs, ep *Endpoints) {
	o.ep = nil
	if ep != nil {
		o.ep = b.keepEP(js, ep)
	}
	if o.at.After(js.last) {
		js.last = o.at
		b.touch(js)
	}
	if o.at.Before(js.first) {
		js.first = o.at
	}
	js.obs = append(js.obs, *o)
}

// AddPacket takes a decoded frame: a capture from a device, or an NFLOG
// message (LINKTYPE_NFLOG). Frames that carry no IP packet are ignored.
// p is not kept: what the journey needs is copied.
func (b *JourneyBuilder) AddPacket(p *Packet) { b.addPacket(p, false) }

// AddSelectedPacket is AddPacket for a frame a filter selected: its
// journey is Selected.
func (b *JourneyBuilder) AddSelectedPacket(p *Packet) { b.addPacket(p, true) }

func (b *JourneyBuilder) addPacket(p *Packet, selected bool) {
	var s Sighting
	s.ReadPacket(p, &b.steps)
	s.selected = selected
	b.AddSighting(&s)
}

// tunnelView is the tunnel packet a sighting showed around the packet.
type tunnelView struct {
	name  string // vxlan, geneve, ...
	vni   uint32
	outer Endpoints
}

// packetView is what a decoded frame shows of the IP packet it carries:
// the innermost one (the journey's packet), the outermost (its tunnel
// packet, when depth > 0) and the tunnel.
type packetView struct {
	inner, outer ipView
	tunnel       string
	depth        int32
	vni          uint32
}

// readPacket finds the IP packets of a decoded frame (after an NFLOG
// header, if any). ok is false when it carries none, or when a tunnel
// packet carries no IP packet (ARP inside VXLAN): no journey for those.
func readPacket(p *Packet) (pv packetView, ok bool) {
	f := p.Frame
	var haveInner, haveOuter bool
	for i := range p.Layers {
		l := &p.Layers[i]
		if l.Quoted {
			break
		}
		if l.Tunnel != TunnelNone && l.Tunnel != TunnelICMP && pv.tunnel == "" {
			pv.tunnel = l.Tunnel.String()
		}
		switch v := l.dl.(type) {
		case *vxlanLayer:
			pv.vni = v.VNI
		case *geneveLayer:
			pv.vni = v.VNI
		}
		if (l.Proto != ProtoIPv4 && l.Proto != ProtoIPv6) || l.Err != nil {
			continue
		}
		off, _ := l.Span(f.Data)
		v, ok := readIP(f.Data[off:])
		if !ok {
			continue
		}
		if !haveOuter {
			pv.outer, haveOuter = v, true
		}
		pv.inner, haveInner, pv.depth = v, true, int32(l.Depth)
	}
	if !haveInner || pv.tunnel != "" && pv.depth == 0 {
		return pv, false
	}
	return pv, true
}

// join finds (or starts) the journey of a sighting of a packet, a
// device capture or an NFLOG copy: by the packet's fingerprint, else by
// its tunnel packet's; it indexes both, marks the observation as of the
// tunnel packet when there is one, and the journey as Selected when the
// sighting is. ok is false when the sighting was an ICMP error or a reset
// answering a known packet: it was added to that packet's journey
// instead.
func (b *JourneyBuilder) join(s *Sighting, o *obs) (*jstate, bool) {
	pv := &s.pv
	v, t := &pv.inner, o.at
	if v.quoted != nil && b.linkError(v, o) {
		return nil, false
	}
	if s.answer != 0 {
		if js, ok := b.byReset[s.answer]; ok {
			b.linkReset(js, v, o)
			return nil, false
		}
	}
	encap := pv.depth > 0
	// A journey that saw its packet, bare, where this bare one was seen
	// is another packet's with the same fingerprint (a datagram sent
	// again, QUIC packets alike in their first bytes): this one starts
	// its own, and the fingerprint names it from now on; a sighting the
	// journey it took the fingerprint over from can still have goes to
	// that one (fpEntry.taken). (Packets alike inside tunnel packets are
	// left as they were: which of them a decapsulated sighting is, only
	// the order of records could tell. So are sightings that do not say
	// where they were made.)
	e, byInner := b.find(v.fp, t)
	again := false
	if byInner && !encap && s.placed() {
		switch first, second := b.inOrder(v.fp, e); {
		case first != nil && !first.sawAt(o) && !first.stoppedBefore(o.at):
			e.js = first
		case second.sawAt(o):
			again = true
		}
	}
	byInner = byInner && !again
	found, byOuter := byInner, false
	if !found && encap {
		e, byOuter = b.find(pv.outer.fp, t)
		found = byOuter
	}
	js := e.js
	if !found {
		js = b.start(t)
	}
	if !byInner { // found by it, it is indexed already
		b.index(js, v.fp, false, again)
	}
	if encap {
		o.extra().tunnel, o.outer = tunnelView{name: pv.tunnel, vni: pv.vni, outer: pv.outer.ep}, true
		if !byOuter {
			b.index(js, pv.outer.fp, true, false)
		}
	}
	b.indexReset(js, s.reset, again)
	js.selected = js.selected || s.selected
	return js, true
}

// indexReset lets the TCP reset that answers a segment find its
// journey, by the key nextResetKey gave (0: none); again says js's
// segment was sent again (join), so a reset answers it rather than the
// one sent before.
func (b *JourneyBuilder) indexReset(js *jstate, k uint64, again bool) {
	if k == 0 || slices.Contains(js.resets, k) { // another sighting of the same segment
		return
	}
	if _, ok := b.byReset[k]; !ok || again {
		b.byReset[k] = js
		js.resets = append(js.resets, k)
	}
}

// linkError adds an ICMP error to the journey of the packet it quotes;
// false when that packet is not known.
func (b *JourneyBuilder) linkError(v *ipView, o *obs) bool {
	q, ok := readIP(v.quoted)
	if !ok {
		return false
	}
	e, ok := b.find(q.fp, o.at)
	if !ok {
		return false
	}
	js := e.js
	if js.hasError(o.netns) {
		return true // the same error seen again, on another device
	}
	o.step = b.steps.withKind(o.step, StepICMPError)
	o.extra().detail = icmpErrorName(v.proto, v.icmpType, v.icmpCode) + " from " + v.ep.Src.Addr().String()
	b.add(js, o, nil)
	return true
}

// linkReset adds a TCP reset to the journey of the segment it answers.
func (b *JourneyBuilder) linkReset(js *jstate, v *ipView, o *obs) {
	if js.hasError(o.netns) {
		return
	}
	o.step = b.steps.withKind(o.step, StepReset)
	o.extra().detail = "TCP reset from " + v.ep.Src.String()
	b.add(js, o, nil)
}

func (js *jstate) hasError(netns string) bool {
	for i := range js.obs {
		k := js.obs[i].step.Kind
		if (k == StepICMPError || k == StepReset) && js.obs[i].netns == netns {
			return true
		}
	}
	return false
}

// AddTrace takes an nf_tables trace event or an iptables-legacy TRACE
// line. The first event of each base chain carries the packet's headers
// and finds (or starts) its journey; the events after it follow by the
// trace id, per namespace.
func (b *JourneyBuilder) AddTrace(ev *TraceEvent) {
	var s Sighting
	s.ReadTrace(ev, &b.steps)
	b.AddSighting(&s)
}

// lastOuter says whether the journey's latest observation in a namespace
// was of its tunnel packet.
func (js *jstate) lastOuter(netns string) bool {
	for i := len(js.obs) - 1; i >= 0; i-- {
		if js.obs[i].netns == netns {
			return js.obs[i].outer
		}
	}
	return false
}

// AddDrop takes a packet the kernel dropped. A drop with the packet's
// headers joins that packet's journey; a drop the tracefs fallback
// reported (no headers) joins the journey last seen in its namespace
// within 100 ms, as a probable match. Drops of packets no journey holds
// are ignored.
func (b *JourneyBuilder) AddDrop(d *KernelDrop) {
	b.drops++
	b.advance(d.Time)
	o := obs{at: d.Time, netns: d.Netns, step: b.steps.get(&stepWhat{Kind: StepDrop, Reason: d.Reason, Location: d.Location}), num: b.drops - 1, from: fromDrop}
	if b.opt.IfName != nil && d.Ifindex != 0 {
		o.iface = b.opt.IfName(d.Netns, d.Ifindex)
	}
	var js *jstate
	var ep *Endpoints
	if d.Network != nil {
		v, ok := readIP(d.Network)
		if !ok {
			b.stats.Unmatched++
			return
		}
		ep, o.proto, o.ttl = &v.ep, v.proto, v.ttl
		e, found := b.find(v.fp, d.Time)
		if found && e.js.droppedAt(&o, e.outer) {
			// A packet is freed once: a drop like one the newest journey
			// of the fingerprint has is another packet's, whose frame
			// has not come yet (live, frames wait out the capture's
			// reordering). It waits for its journey.
			found = false
		}
		if !found {
			if len(b.early) < b.opt.MaxOpen {
				o.ep = b.keepEP(nil, ep)
				b.early[v.fp] = append(b.early[v.fp], o)
			} else {
				b.stats.Unmatched++
			}
			return
		}
		js, o.outer = e.js, e.outer
	} else {
		for _, r := range b.queue {
			if c := r.js; r.open() && c.seen(d.Netns) && d.Time.Sub(c.last) < 100*time.Millisecond && d.Time.Sub(c.last) > -100*time.Millisecond &&
				(js == nil || c.last.After(js.last)) {
				js = c
			}
		}
		if js == nil {
			b.stats.Unmatched++
			return
		}
		o.extra().detail = "probable"
	}
	b.add(js, &o, ep)
}

// close ends a journey: it leaves the indexes, and is assembled now,
// or later by its taker (JourneyOptions.Unassembled).
func (b *JourneyBuilder) close(js *jstate) {
	js.open = false
	b.nopen--
	for _, fp := range js.fps {
		if e, ok := b.byFP[fp]; ok && e.js == js {
			if older, _ := b.inOrder(fp, e); older != nil {
				b.setFP(fp, e, fpEntry{js: older, outer: e.outer}) // it is the older one's again
			} else {
				b.forgetFP(fp, e)
				delete(b.byFP, fp)
			}
		}
	}
	if len(b.byFP) > 4*b.nopen+1024 { // ambiguous entries expire
		for fp, at := range b.ambiguousAt {
			if b.now.Sub(at) > b.opt.Window {
				if e, ok := b.byFP[fp]; ok && e.ambiguous() {
					delete(b.byFP, fp)
				}
				delete(b.ambiguousAt, fp)
			}
		}
	}
	for _, k := range js.traces {
		if b.byTrace[k] == js {
			delete(b.byTrace, k)
		}
	}
	for _, k := range js.resets {
		if b.byReset[k] == js {
			delete(b.byReset, k)
		}
	}
	b.stats.Closed++
	pj := PendingJourney{id: js.id, first: js.first, last: js.last, frame: js.frame, frameIP: js.frameIP, incomplete: js.incomplete, selected: js.selected,
		obs: js.obs, quiet: js.quiet, route: b.opt.Route, pool: b.pool, keep: b.obsKept()}
	b.obsHint = min(b.obsHint+len(js.obs)-b.obsHint/16, 64*16)
	js.obs = nil
	b.spareState(js)
	if b.opt.Unassembled {
		b.pending = append(b.pending, pj)
		return
	}
	b.closed = append(b.closed, pj.Assemble())
}

func protoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "icmpv6"
	case 132:
		return "sctp"
	}
	return "ip proto " + string(AppendUint(nil, uint64(p)))
}

// stripCounters drops the values of a rule's counter ("counter packets 3
// bytes 180" becomes "counter"): they change with every packet and say
// nothing about why this one was judged.
func stripCounters(rule string) string {
	i := strings.Index(rule, "counter packets ")
	if i < 0 {
		return rule
	}
	rest := rule[i+len("counter packets "):]
	// The first three words after it, as strings.Fields splits them
	// (without making the list of all).
	f0, more := firstField(rest)
	f1, more := firstField(more)
	f2, _ := firstField(more)
	if f2 == "" || f1 != "bytes" {
		return rule
	}
	after := strings.TrimPrefix(rest, f0)
	after = strings.TrimPrefix(strings.TrimLeft(after, " "), "bytes")
	after = strings.TrimPrefix(strings.TrimLeft(after, " "), f2)
	return rule[:i] + "counter" + stripCounters(after)
}

// firstField returns the first word of s, split as strings.Fields
// splits, and what follows it; "" when s has none.
func firstField(s string) (word, rest string) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	end := strings.IndexFunc(s, unicode.IsSpace)
	if end < 0 {
		return s, ""
	}
	return s[:end], s[end:]
}
