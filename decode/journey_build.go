package decode

import (
	"bytes"
	"slices"
	"sort"
	"strings"
	"time"

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
	opt     JourneyOptions
	open    map[*jstate]struct{}
	byFP    map[uint64]fpEntry
	byTrace map[traceKey]*jstate
	byReset map[uint64]*jstate
	queue   []*jstate // open journeys (and some closed ones) in the order they started
	// early holds kernel drops that came before any other record of
	// their packet (the drop probe is faster than the capture), by
	// fingerprint, until the packet's journey starts or the window ends.
	early   map[uint64][]obs
	now     time.Time // the latest record time seen
	scanned time.Time // when idle journeys were last looked for
	closed  []*Journey
	nextID  uint64
	seq     int
	obsFree [][]obs // observation slices of closed journeys, emptied, for new ones
	obsHint int     // observations of the journeys closed lately (a running mean, times 16)
	packets uint64  // AddPacket calls so far
	traces  uint64  // AddTrace calls so far
	drops   uint64  // AddDrop calls so far
	stats   JourneyStats
	dec     *Decoder
}

// fpEntry finds a journey by a packet's fingerprint; outer says the
// fingerprint is of the tunnel packet carrying it. An ambiguous entry
// (two open journeys gave the same fingerprint: tunnel packets of the
// same size between the same hosts, say) finds nothing.
type fpEntry struct {
	js        *jstate
	outer     bool
	ambiguous bool
	at        time.Time
}

// jstate is an open journey.
type jstate struct {
	id         uint64
	obs        []obs
	fps        []uint64
	traces     []traceKey
	resets     []uint64
	first      time.Time
	last       time.Time
	frame      capture.Frame // first sighting, copied
	frameKT    bool          // frame's time is the kernel's
	incomplete bool
	quiet      []uint64 // trace events (AddTrace numbers) that joined without a step of their own
}

// obs is one observation of the packet, before ordering.
type obs struct {
	step  Step
	ep    Endpoints
	hasEP bool
	outer bool        // seen as (or in) the tunnel packet
	tun   *tunnelView // a sighting that showed both the packet and its tunnel packet
	rank  int         // place in a namespace's path (see rankOf)
	prio  int64       // order within a hook
	seq   int         // arrival order
	kt    bool        // Time is the kernel's (frames, NFLOG), not hooktrace's receive time
	pkt   uint64      // 1 + the number of the packet (AddPacket call) it came from; 0: none
	trc   uint64      // 1 + the number of the trace event (AddTrace call) it came from; 0: none
	drp   uint64      // 1 + the number of the kernel drop (AddDrop call) it came from; 0: none
	mark  uint32
	proto uint8 // transport protocol of ep
}

// NewJourneyBuilder returns an empty builder.
func NewJourneyBuilder(opt JourneyOptions) *JourneyBuilder {
	if opt.Window <= 0 {
		opt.Window = 2 * time.Second
	}
	if opt.MaxOpen <= 0 {
		opt.MaxOpen = 65536
	}
	return &JourneyBuilder{
		opt: opt, open: map[*jstate]struct{}{}, byFP: map[uint64]fpEntry{},
		byTrace: map[traceKey]*jstate{}, byReset: map[uint64]*jstate{}, early: map[uint64][]obs{}, dec: NewDecoder(),
	}
}

// Stats returns the builder's counters.
func (b *JourneyBuilder) Stats() JourneyStats {
	s := b.stats
	s.Open = len(b.open)
	return s
}

// Closed returns the journeys closed since the last call, oldest first.
func (b *JourneyBuilder) Closed() []*Journey {
	c := b.closed
	b.closed = nil
	return c
}

// Flush closes every open journey (at the end of the input) and returns
// all closed journeys not yet taken.
func (b *JourneyBuilder) Flush() []*Journey {
	var all []*jstate
	for js := range b.open {
		all = append(all, js)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
	for _, js := range all {
		b.close(js)
	}
	for fp, early := range b.early {
		delete(b.early, fp)
		b.stats.Unmatched += uint64(len(early))
	}
	return b.Closed()
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
	for js := range b.open {
		if (netns == "" || js.seen(netns)) && !js.last.Before(at.Add(-b.opt.Window)) {
			js.incomplete = true
		}
	}
}

func (js *jstate) seen(netns string) bool {
	for i := range js.obs {
		if js.obs[i].step.Netns == netns {
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
	if b.now.Sub(b.scanned) < b.opt.Window/4 {
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

func (b *JourneyBuilder) closeIdle() {
	b.scanned = b.now
	for fp, early := range b.early {
		if b.now.Sub(early[len(early)-1].step.Time) > b.opt.Window {
			delete(b.early, fp)
			b.stats.Unmatched += uint64(len(early))
		}
	}
	var idle []*jstate
	for js := range b.open {
		if b.now.Sub(js.last) > b.opt.Window {
			idle = append(idle, js)
		}
	}
	sort.Slice(idle, func(i, j int) bool { return idle[i].id < idle[j].id })
	for _, js := range idle {
		b.close(js)
	}
}

// find returns the open journey a fingerprint names, if it was seen
// within the window.
func (b *JourneyBuilder) find(fp uint64, t time.Time) (fpEntry, bool) {
	e, ok := b.byFP[fp]
	if !ok || e.ambiguous {
		return e, false
	}
	if d := t.Sub(e.js.last); d > b.opt.Window || d < -b.opt.Window {
		return e, false
	}
	return e, true
}

// start opens a journey.
func (b *JourneyBuilder) start(t time.Time) *jstate {
	if len(b.open) >= b.opt.MaxOpen {
		// The oldest journey still open goes first: the queue is in the
		// order journeys started; closed ones are skipped as they come
		// up, so finding it costs O(1) on average, not a scan.
		for len(b.queue) > 0 {
			oldest := b.queue[0]
			b.queue[0] = nil
			b.queue = b.queue[1:]
			if _, open := b.open[oldest]; open {
				b.stats.Evicted++
				b.close(oldest)
				break
			}
		}
	}
	b.nextID++
	js := &jstate{id: b.nextID, first: t, last: t, obs: b.newObs()}
	b.open[js] = struct{}{}
	if len(b.queue) > 4*len(b.open)+64 {
		// Drop the closed journeys the queue still names.
		live := b.queue[:0]
		for _, q := range b.queue {
			if _, open := b.open[q]; open {
				live = append(live, q)
			}
		}
		clear(b.queue[len(live):])
		b.queue = live
	}
	b.queue = append(b.queue, js)
	return js
}

// index registers a fingerprint of the journey.
func (b *JourneyBuilder) index(js *jstate, fp uint64, outer bool) {
	if fp == 0 {
		return
	}
	e, ok := b.byFP[fp]
	switch {
	case ok && e.js == js:
		return
	case ok && e.ambiguous:
		if js.last.Sub(e.at) <= b.opt.Window {
			return
		}
	case ok:
		if _, open := b.open[e.js]; open && js.last.Sub(e.js.last) <= b.opt.Window {
			if outer && e.js.onlyHeaders() {
				// A journey that knew only this tunnel packet (trace events
				// in the underlay, which show no inner packet) is this
				// packet's: one journey.
				b.merge(js, e.js)
				return
			}
			// Two packets in the window with one fingerprint: it tells
			// neither apart any more.
			b.byFP[fp] = fpEntry{ambiguous: true, at: js.last}
			return
		}
	}
	b.byFP[fp] = fpEntry{js: js, outer: outer}
	js.fps = append(js.fps, fp)
	if early, ok := b.early[fp]; ok {
		delete(b.early, fp)
		for _, o := range early {
			o.outer = outer
			b.add(js, o)
		}
	}
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
	delete(b.open, from)
	for _, o := range from.obs {
		o.outer = true
		b.add(into, o)
	}
	for _, fp := range from.fps {
		if e, ok := b.byFP[fp]; ok && e.js == from {
			b.byFP[fp] = fpEntry{js: into, outer: true}
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
	into.quiet = append(into.quiet, from.quiet...)
	b.freeObs(from.obs)
	from.obs = nil
}

// newObs returns an empty slice for a journey's observations: one a
// closed journey left, or a new one.
func (b *JourneyBuilder) newObs() []obs {
	if n := len(b.obsFree); n > 0 {
		o := b.obsFree[n-1]
		b.obsFree = b.obsFree[:n-1]
		return o
	}
	return make([]obs, 0, max(1, (b.obsHint+15)/16)) // as many as journeys lately had: no regrowing
}

// freeObs keeps a closed journey's observation slice for a new journey
// (a journey's observations grow it a few times: most of the builder's
// allocations, and of the collector's work, were these).
func (b *JourneyBuilder) freeObs(o []obs) {
	if cap(o) == 0 || cap(o) > 64 || len(b.obsFree) >= max(2048, len(b.open)) {
		return
	}
	clear(o)
	b.obsFree = append(b.obsFree, o[:0])
}

// add records an observation.
func (b *JourneyBuilder) add(js *jstate, o obs) {
	b.seq++
	o.seq = b.seq
	o.rank, o.prio = rankOf(o.step)
	if o.step.Time.After(js.last) {
		js.last = o.step.Time
	}
	if o.step.Time.Before(js.first) {
		js.first = o.step.Time
	}
	js.obs = append(js.obs, o)
}

// AddPacket takes a decoded frame: a capture from a device, or an NFLOG
// message (LINKTYPE_NFLOG). Frames that carry no IP packet are ignored.
// p is not kept: what the journey needs is copied.
func (b *JourneyBuilder) AddPacket(p *Packet) {
	f := p.Frame
	b.packets++
	b.advance(f.Time)
	if f.LinkType == capture.LinkTypeNFLOG {
		b.addNFLOG(p, b.packets)
		return
	}
	pv, ok := readPacket(p)
	if !ok {
		return
	}
	o := obs{
		step: Step{Time: f.Time, Netns: f.Netns, Kind: StepCapture, Iface: f.Iface, Dir: f.Dir.String()},
		ep:   pv.inner.ep, hasEP: true, kt: true, proto: pv.inner.proto, pkt: b.packets,
	}
	js, o, ok := b.join(pv, o)
	if !ok {
		return
	}
	if js.frame.Data == nil || f.Time.Before(js.frame.Time) || !js.frameKT {
		js.frame = f
		js.frame.Data = bytes.Clone(f.Data)
		js.frameKT = true
	}
	b.add(js, o)
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
	depth        int
	tunnel       string
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
		pv.inner, haveInner, pv.depth = v, true, l.Depth
	}
	if !haveInner || pv.tunnel != "" && pv.depth == 0 {
		return pv, false
	}
	return pv, true
}

// join finds (or starts) the journey of a sighting of a packet, a
// device capture or an NFLOG copy: by the packet's fingerprint, else by
// its tunnel packet's; it indexes both, and returns the observation
// marked as of the tunnel packet when there is one. ok is false when the
// sighting was an ICMP error or a reset answering a known packet: it was
// added to that packet's journey instead.
func (b *JourneyBuilder) join(pv packetView, o obs) (*jstate, obs, bool) {
	v, t := pv.inner, o.step.Time
	if v.quoted != nil && b.linkError(v, o) {
		return nil, o, false
	}
	if v.proto == 6 && v.tcpFlags&tcpRST != 0 {
		if js, ok := b.byReset[resetKeyOf(v)]; ok {
			b.linkReset(js, v, o)
			return nil, o, false
		}
	}
	encap := pv.depth > 0
	e, found := b.find(v.fp, t)
	if !found && encap {
		e, found = b.find(pv.outer.fp, t)
	}
	js := e.js
	if !found {
		js = b.start(t)
	}
	b.index(js, v.fp, false)
	if encap {
		o.tun, o.outer = &tunnelView{name: pv.tunnel, vni: pv.vni, outer: pv.outer.ep}, true
		b.index(js, pv.outer.fp, true)
	}
	b.indexReset(js, v)
	return js, o, true
}

// indexReset lets the TCP reset that answers a segment find its journey.
func (b *JourneyBuilder) indexReset(js *jstate, v ipView) {
	if v.proto != 6 || v.tcpFlags&tcpRST != 0 || !v.ep.Src.IsValid() {
		return
	}
	n := uint32(v.tcpPayload)
	if v.tcpFlags&tcpSYN != 0 {
		n++
	}
	if v.tcpFlags&tcpFIN != 0 {
		n++
	}
	k := resetKey(v.ep, v.tcpSeq+n)
	if _, ok := b.byReset[k]; !ok {
		b.byReset[k] = js
		js.resets = append(js.resets, k)
	}
}

// linkError adds an ICMP error to the journey of the packet it quotes;
// false when that packet is not known.
func (b *JourneyBuilder) linkError(v ipView, o obs) bool {
	q, ok := readIP(v.quoted)
	if !ok {
		return false
	}
	e, ok := b.find(q.fp, o.step.Time)
	if !ok {
		return false
	}
	js := e.js
	if js.hasError(o.step.Netns) {
		return true // the same error seen again, on another device
	}
	o.step.Kind = StepICMPError
	o.step.Detail = icmpErrorName(v.proto, v.icmpType, v.icmpCode) + " from " + v.ep.Src.Addr().String()
	o.hasEP = false
	b.add(js, o)
	return true
}

// linkReset adds a TCP reset to the journey of the segment it answers.
func (b *JourneyBuilder) linkReset(js *jstate, v ipView, o obs) {
	if js.hasError(o.step.Netns) {
		return
	}
	o.step.Kind = StepReset
	o.step.Detail = "TCP reset from " + v.ep.Src.String()
	o.hasEP = false
	b.add(js, o)
}

func (js *jstate) hasError(netns string) bool {
	for i := range js.obs {
		k := js.obs[i].step.Kind
		if (k == StepICMPError || k == StepReset) && js.obs[i].step.Netns == netns {
			return true
		}
	}
	return false
}

// addNFLOG takes an NFLOG message: one of hooktrace's own (a packet
// entering or leaving a hook) or one of the user's log rules.
func (b *JourneyBuilder) addNFLOG(p *Packet, pkt uint64) {
	var n *NFLOG
	for i := range p.Layers {
		if v, ok := p.Layers[i].dl.(*NFLOG); ok {
			n = v
			break
		}
	}
	if n == nil || !n.HasHook {
		return
	}
	pv, ok := readPacket(p)
	if !ok {
		return
	}
	f := p.Frame
	v := pv.inner
	prefix := strings.TrimRight(string(n.Prefix), " \x00")
	st := Step{Time: f.Time, Netns: f.Netns, Kind: StepNFLOG, Hook: n.HookName(), Family: nflog.FamilyName(n.Family), Prefix: prefix}
	switch prefix {
	case nflog.LogPrefixFirst, nflog.LogPrefixLast:
		st.Kind, st.First, st.Prefix = StepHook, prefix == nflog.LogPrefixFirst, ""
		if n.Family != 7 {
			st.Family = "inet"
		}
	}
	if b.opt.IfName != nil {
		if n.Indev != 0 && (st.Hook == "prerouting" || st.Hook == "input" || st.Hook == "forward") {
			st.Iface = b.opt.IfName(f.Netns, n.Indev)
		} else if n.Outdev != 0 {
			st.Iface = b.opt.IfName(f.Netns, n.Outdev)
		}
	}
	o := obs{step: st, ep: v.ep, hasEP: true, kt: true, mark: n.Mark, proto: v.proto, pkt: pkt}
	js, o, ok := b.join(pv, o)
	if !ok {
		return
	}
	if js.frame.Data == nil {
		// An NFLOG copy: a device capture makes a better first sighting.
		for i := range p.Layers {
			if l := &p.Layers[i]; (l.Proto == ProtoIPv4 || l.Proto == ProtoIPv6) && l.Err == nil {
				off, _ := l.Span(f.Data)
				js.frame = capture.Frame{Time: f.Time, Netns: f.Netns, Iface: f.Iface, LinkType: capture.LinkTypeRaw,
					Len: len(f.Data) - off, Data: bytes.Clone(f.Data[off:])}
				break
			}
		}
		js.frameKT = false
	}
	b.add(js, o)
}

// AddTrace takes an nf_tables trace event or an iptables-legacy TRACE
// line. The first event of each base chain carries the packet's headers
// and finds (or starts) its journey; the events after it follow by the
// trace id, per namespace.
func (b *JourneyBuilder) AddTrace(ev *TraceEvent) {
	b.traces++
	b.advance(ev.Time)
	key := traceKey{ev.Netns, ev.ID}
	var js *jstate
	o := obs{trc: b.traces}
	if len(ev.Network) > 0 {
		hdr := append(append(make([]byte, 0, len(ev.Network)+len(ev.Transport)), ev.Network...), ev.Transport...)
		v, ok := readIP(hdr)
		if ok {
			o.ep, o.hasEP, o.proto = v.ep, true, v.proto
			if e, found := b.find(v.fp, ev.Time); found {
				js, o.outer = e.js, e.outer
			} else {
				js = b.start(ev.Time)
				b.index(js, v.fp, false)
			}
			b.indexReset(js, v)
			if js.frame.Data == nil {
				js.frame = capture.Frame{Time: ev.Time, Netns: ev.Netns, LinkType: capture.LinkTypeRaw, Len: len(hdr), Data: hdr}
			}
			if old, ok := b.byTrace[key]; !ok || old != js {
				b.byTrace[key] = js
				js.traces = append(js.traces, key)
			}
		}
	}
	if js == nil {
		var ok bool
		if js, ok = b.byTrace[key]; !ok {
			b.stats.Unmatched++
			return
		}
		if _, open := b.open[js]; !open {
			b.stats.Unmatched++
			return
		}
		o.outer = js.lastOuter(ev.Netns)
	}
	if ev.Type == nflog.TraceRule && ev.Handle == 0 && ev.RuleNumber == 0 && ev.Verdict == nflog.VerdictContinue {
		// The implicit end of a chain: nothing matched there, which the
		// next event (a policy, or the chain that jumped here) shows.
		if js.last.Before(ev.Time) {
			js.last = ev.Time
		}
		js.quiet = append(js.quiet, b.traces-1)
		return
	}
	st := Step{
		Time: ev.Time, Netns: ev.Netns, Kind: StepRule, Hook: ev.Hook, Family: nflog.FamilyName(ev.Family),
		Table: ev.Table, Chain: ev.Chain, Priority: ev.Priority, HasPriority: ev.HasPriority,
		Handle: ev.Handle, RuleNumber: ev.RuleNumber, Rule: ev.Rule, JumpTarget: ev.JumpTarget,
	}
	if ev.IptablesRule != "" {
		st.Rule = ev.IptablesRule
	}
	st.Rule = stripCounters(st.Rule)
	if ev.Type == nflog.TracePolicy {
		st.Kind = StepPolicy
	}
	if v, ok := ev.Outcome(); ok {
		st.Verdict = v.String()
	}
	if ev.IIFName != "" {
		st.Iface = ev.IIFName
	} else if ev.OIFName != "" {
		st.Iface = ev.OIFName
	}
	o.step, o.mark = st, ev.Mark
	b.add(js, o)
}

// lastOuter says whether the journey's latest observation in a namespace
// was of its tunnel packet.
func (js *jstate) lastOuter(netns string) bool {
	for i := len(js.obs) - 1; i >= 0; i-- {
		if js.obs[i].step.Netns == netns {
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
	st := Step{Time: d.Time, Netns: d.Netns, Kind: StepDrop, Reason: d.Reason, Location: d.Location}
	if b.opt.IfName != nil && d.Ifindex != 0 {
		st.Iface = b.opt.IfName(d.Netns, d.Ifindex)
	}
	o := obs{step: st, kt: true, drp: b.drops}
	var js *jstate
	if d.Network != nil {
		v, ok := readIP(d.Network)
		if !ok {
			b.stats.Unmatched++
			return
		}
		o.ep, o.hasEP, o.proto = v.ep, true, v.proto
		e, found := b.find(v.fp, d.Time)
		if !found {
			if len(b.early) < b.opt.MaxOpen {
				b.early[v.fp] = append(b.early[v.fp], o)
			} else {
				b.stats.Unmatched++
			}
			return
		}
		js, o.outer = e.js, e.outer
	} else {
		for c := range b.open {
			if c.seen(d.Netns) && d.Time.Sub(c.last) < 100*time.Millisecond && d.Time.Sub(c.last) > -100*time.Millisecond &&
				(js == nil || c.last.After(js.last)) {
				js = c
			}
		}
		if js == nil {
			b.stats.Unmatched++
			return
		}
		o.step.Detail = "probable"
	}
	b.add(js, o)
}

// close ends a journey: its observations are put in path order, NAT and
// tunnel steps inserted, routes asked, and the outcome decided.
func (b *JourneyBuilder) close(js *jstate) {
	delete(b.open, js)
	for _, fp := range js.fps {
		if e, ok := b.byFP[fp]; ok && e.js == js {
			delete(b.byFP, fp)
		}
	}
	if len(b.byFP) > 4*len(b.open)+1024 { // ambiguous entries expire
		for fp, e := range b.byFP {
			if e.ambiguous && b.now.Sub(e.at) > b.opt.Window {
				delete(b.byFP, fp)
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
	j := &Journey{ID: js.id, First: js.first, Last: js.last, Frame: js.frame, Incomplete: js.incomplete}
	visits := orderObs(js.obs)
	if b.opt.Route != nil {
		addRoutes(visits, b.opt.Route)
	}
	j.Steps = pathSteps(visits)
	for _, v := range visits {
		for _, o := range v.obs {
			if o.hasEP && !o.outer && !j.Flow.Src.IsValid() {
				j.Flow = o.ep
			}
		}
	}
	for _, o := range js.obs {
		if o.hasEP && !o.outer && o.proto != 0 && j.Proto == "" {
			j.Proto = protoName(o.proto)
		}
		if o.pkt != 0 {
			j.Packets = append(j.Packets, o.pkt-1)
		}
		if o.trc != 0 {
			j.Traces = append(j.Traces, o.trc-1)
		}
		if o.drp != 0 {
			j.Drops = append(j.Drops, o.drp-1)
		}
	}
	j.Traces = append(j.Traces, js.quiet...)
	for _, ns := range []*[]uint64{&j.Packets, &j.Traces, &j.Drops} {
		slices.Sort(*ns)
		*ns = slices.Compact(*ns)
	}
	if j.Proto == "" && len(j.Frame.Data) > 0 {
		if v, ok := readIP(ipBytes(b.dec, j.Frame)); ok {
			j.Proto = protoName(v.proto)
			if !j.Flow.Src.IsValid() {
				j.Flow = v.ep
			}
		}
	}
	decideOutcome(j, visits)
	b.closed = append(b.closed, j)
	b.obsHint = min(b.obsHint+len(js.obs)-b.obsHint/16, 64*16)
	b.freeObs(js.obs) // nothing of the journey points into them any more
	js.obs = nil
}

// ipBytes returns the innermost IP packet of a frame.
func ipBytes(d *Decoder, f capture.Frame) []byte {
	p := d.Decode(f)
	var b []byte
	for i := range p.Layers {
		l := &p.Layers[i]
		if l.Quoted {
			break
		}
		if (l.Proto == ProtoIPv4 || l.Proto == ProtoIPv6) && l.Err == nil {
			off, _ := l.Span(f.Data)
			b = f.Data[off:]
		}
	}
	return b
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
	f := strings.Fields(rest)
	if len(f) < 3 || f[1] != "bytes" {
		return rule
	}
	after := strings.TrimPrefix(rest, f[0])
	after = strings.TrimPrefix(strings.TrimLeft(after, " "), "bytes")
	after = strings.TrimPrefix(strings.TrimLeft(after, " "), f[2])
	return rule[:i] + "counter" + stripCounters(after)
}
