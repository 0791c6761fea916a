package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/nflog"
	"github.com/hooktrace/hooktrace/ui"
	"github.com/hooktrace/hooktrace/ui/tui"
)

// screenQueue bounds the records waiting for the terminal UI's feed;
// what finds it full is shed and counted.
const screenQueue = 1 << 16

// screenTick is how often the feed's clock moves on (closing idle
// journeys, handing over what it holds) and the counters are read.
const screenTick = 100 * time.Millisecond

// screenOutput shows a live capture in the terminal UI. The capture's
// frames, the trace events and the kernel drops go, in arrival order,
// into one bounded queue that the UI's feed drains to build the list and
// the journeys; no source ever waits for the screen.
type screenOutput struct {
	ctx    context.Context
	src    *liveRun
	stdout *os.File
	held   *heldLog
	spool  *os.File // the packets' bytes, read again by the UI; nil: in memory
	count  uint64   // -c: frames to take; 0: no limit
	queue  chan tui.Record
	ended  chan struct{} // closed when the capture's frames end
	// sourcesEnded is closed by finish, once the trace listeners and the
	// drop probe are closed too: nothing is pushed after it.
	sourcesEnded chan struct{}
	shed         atomic.Uint64
	feed         tui.FeedStats
	routes       *routeCache                   // with --trace
	quit         chan error                    // the UI's end
	cancel       context.CancelFunc            // ends the feed once the UI is quit
	wg           sync.WaitGroup                // the feed's goroutines
	counts       atomic.Pointer[[]tui.Counter] // read on the tick, shown on every redraw
}

func newScreenOutput(ctx context.Context, o *options, run *liveRun, stdout *os.File, held *heldLog) *screenOutput {
	return &screenOutput{ctx: ctx, src: run, stdout: stdout, held: held, count: o.count,
		queue: make(chan tui.Record, screenQueue), ended: make(chan struct{}), sourcesEnded: make(chan struct{})}
}

// push queues a record, or sheds it when the feed is behind.
func (s *screenOutput) push(r tui.Record) {
	select {
	case s.queue <- r:
	default:
		s.shed.Add(1)
	}
}

// Trace queues a trace event.
func (s *screenOutput) Trace(ev *decode.TraceEvent) error {
	c := *ev
	s.push(tui.Record{Trace: &c})
	return nil
}

func (s *screenOutput) drop(d nflog.KernelDrop) { s.push(tui.Record{Drop: &d}) }

// run shows the UI until the person quits or a signal comes, and then
// stops the capture; or until the capture ends by itself (-c,
// --duration), leaving the UI open for finish.
func (s *screenOutput) run(live *capture.Live, stop func()) error {
	ctx, cancel := context.WithCancel(s.ctx)
	s.cancel = cancel
	batches := make(chan tui.Batch, tuiQueue)
	opt := tui.FeedOptions{Shed: s.shed.Load, Stats: &s.feed, MaxDelay: screenTick}
	if s.src.trace {
		opt.Journeys = s.src.journeyOptions()
		s.routes = newRouteCache(opt.Journeys.Route, time.Now)
		opt.Journeys.Route = s.routes.route
	} else {
		opt.Journeys.IfName = s.src.journeyOptions().IfName
	}
	s.counts.Store(s.readCounters())
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.readFrames(live) }()
	go func() { defer s.wg.Done(); s.tick(ctx) }()
	go func() { defer s.wg.Done(); tui.FeedRecords(ctx, &queuedRecords{s: s, ctx: ctx}, batches, opt) }()
	go holdMemory(ctx)
	topt := tui.Options{
		Source:   "live",
		Batches:  batches,
		Color:    os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb",
		Live:     true,
		Counters: s.counters,
	}
	if s.src.trace || s.src.logs != nil {
		topt.Incident = liveIncident{s.src} // saves hold what explains the trace events and NFLOG messages
	}
	// The packets' bytes go to a spool file: memory holds the list only.
	if s.spool = openSpool(func(err error) { fmt.Fprintf(s.held, "hooktrace: %v\n", err) }); s.spool != nil {
		topt.Spool = s.spool
	}
	m := tui.New(topt)
	s.quit = make(chan error, 1)
	go func() {
		_, err := tea.NewProgram(m, tea.WithContext(ctx), tea.WithOutput(s.stdout)).Run()
		s.quit <- err
	}()
	select {
	case err := <-s.quit:
		s.quit <- err // for finish
		stop()
	case <-s.ended:
	}
	return nil
}

// finish waits until the UI is quit, then for the feed's goroutines.
func (s *screenOutput) finish([]capture.InterfaceStats, []ui.TraceCounts) error {
	close(s.sourcesEnded) // the feed takes what they pushed last, and ends
	err := <-s.quit
	s.cancel()
	s.wg.Wait()
	if s.spool != nil {
		s.spool.Close()
	}
	if err == nil || errors.Is(err, tea.ErrInterrupted) || errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
		return nil
	}
	return fmt.Errorf("terminal UI: %w", err)
}

// readFrames queues the capture's frames until it ends or -c is reached.
func (s *screenOutput) readFrames(live *capture.Live) {
	defer close(s.ended)
	var n uint64
	for {
		f, err := live.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.src.warn(fmt.Errorf("capture: %w", err))
			}
			return
		}
		f.Data = bytes.Clone(f.Data) // valid until the next call otherwise
		s.push(tui.Record{Frame: &f})
		if n++; s.count > 0 && n >= s.count {
			live.Stop()
			return
		}
	}
}

// tick moves the feed's clock on behind the wall clock (as far as the
// journeys' goroutine of a printing run keeps it), tells the journeys of
// trace events the kernel lost, and reads the counters, until the
// capture ends.
func (s *screenOutput) tick(ctx context.Context) {
	t := time.NewTicker(screenTick)
	defer t.Stop()
	lossSeen := map[string]uint64{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.ended:
			s.counts.Store(s.readCounters())
			return
		case <-t.C:
		}
		now := time.Now()
		for ns, n := range s.src.traceLosses() {
			if n != lossSeen[ns] {
				lossSeen[ns] = n
				s.push(tui.Record{Loss: &decode.LossNotice{Time: now, Netns: ns, Cause: lossENOBUFS, Count: n}})
			}
		}
		s.push(tui.Record{Clock: now.Add(-journeyLag)})
		s.counts.Store(s.readCounters())
	}
}

// counters returns the loss counters the tick read last.
func (s *screenOutput) counters() []tui.Counter {
	if c := s.counts.Load(); c != nil {
		return *c
	}
	return nil
}

// readCounters reads what was lost, and where, for the status bar; the
// records the UI's queue shed are counted by the UI itself.
func (s *screenOutput) readCounters() *[]tui.Counter {
	var kernel, hooktrace, nflogLost, enobufs uint64
	for _, st := range s.src.live.Stats() {
		kernel += st.KernelDrops
		hooktrace += st.HooktraceDrops
	}
	for _, st := range s.src.logs.stats() {
		nflogLost += st.KernelDrops + st.HooktraceDrops
	}
	for _, n := range s.src.traceLosses() {
		enobufs += n
	}
	c := []tui.Counter{
		{Name: "dropped by the kernel ring", Value: kernel},
		{Name: "dropped by the capture", Value: hooktrace},
		{Name: "trace ENOBUFS", Value: enobufs},
		{Name: "NFLOG lost", Value: nflogLost},
		{Name: "journeys closed early", Value: s.feed.Evicted.Load()},
		{Name: "route steps left out", Value: s.routes.skipped()},
		{Name: "messages (shown on quitting)", Value: s.held.lines()},
	}
	return &c
}

func (s *screenOutput) abort() {}

// liveIncident gives the UI's saves of a live capture the names of the
// interfaces as the capture knows them, and the namespaces' rulesets as
// they are when saved (a recording takes them when it starts).
type liveIncident struct{ run *liveRun }

func (l liveIncident) IfName(netns string, index uint32) string {
	return l.run.live.InterfaceName(netns, int(index))
}

// Rulesets lists a traced namespace's ruleset now; the error says why
// one could not be listed (a namespace that vanished, no nft).
func (l liveIncident) Rulesets(netns string) ([]decode.RulesetSnapshot, error) {
	var out []decode.RulesetSnapshot
	var errs []error
	for _, ref := range l.run.refs {
		if ref.Name != netns {
			continue
		}
		rs, err := nflog.LoadRuleset(ref.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("list the ruleset of namespace %q: %w", netns, err))
			continue
		}
		out = append(out, decode.RulesetSnapshot{Time: time.Now(), Netns: netns, Text: rulesetText(rs)})
	}
	return out, errors.Join(errs...)
}

// queuedRecords is the feed's source: the queue, until every source is
// closed (finish) and what they left queued is taken, or the UI is quit.
// The frames' end is not the queue's: trace events and kernel drops (the
// drop probe lags) may come after the last frame.
type queuedRecords struct {
	s   *screenOutput
	ctx context.Context
}

func (q *queuedRecords) NextRecord() (tui.Record, error) {
	select {
	case r := <-q.s.queue:
		return r, nil
	case <-q.ctx.Done():
		return tui.Record{}, io.EOF
	case <-q.s.sourcesEnded:
		select {
		case r := <-q.s.queue:
			return r, nil
		default:
			return tui.Record{}, io.EOF
		}
	}
}

// heldLogMax bounds what a heldLog keeps.
const heldLogMax = 1 << 20

// heldLog keeps what hooktrace writes to standard error while the
// terminal UI has the terminal, to write it out once the UI is gone.
type heldLog struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	n    uint64 // lines written
	left int    // bytes left out past heldLogMax
}

func (h *heldLog) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n += uint64(bytes.Count(p, []byte{'\n'}))
	if h.buf.Len()+len(p) > heldLogMax {
		h.left += len(p)
		return len(p), nil
	}
	return h.buf.Write(p)
}

// lines counts the lines written so far.
func (h *heldLog) lines() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// writeTo writes what was held to w.
func (h *heldLog) writeTo(w io.Writer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w.Write(h.buf.Bytes())
	if h.left > 0 {
		fmt.Fprintf(w, "hooktrace: %d more bytes of messages were left out\n", h.left)
	}
}

// Route questions: an answer is reused for routeCacheTTL, at most
// routeCacheMax answers are kept, and the kernel is asked at most
// routeBudget times a second.
const (
	routeCacheTTL = time.Second
	routeCacheMax = 4096
	routeBudget   = 500
)

// routeCache stands between the journeys of the terminal UI and the
// kernel's routing lookups. The UI's feed builds the journeys and lists
// the packets in one goroutine, and each journey asks how its packet was
// routed when it closes: a netlink round trip per packet of a flood would
// hold the list back. Repeated questions (one flow's packets) are answered
// from memory; past the budget, route steps are left out and counted. It
// is used by one goroutine.
type routeCache struct {
	ask     func(string, nflog.RouteQuery) (nflog.RouteDecision, bool)
	now     func() time.Time
	answers map[routeQuestion]routeAnswer
	since   time.Time // start of the current second's budget
	asked   int
	left    atomic.Uint64 // questions not asked: over budget
}

type routeQuestion struct {
	netns string
	q     nflog.RouteQuery
}

type routeAnswer struct {
	d  nflog.RouteDecision
	ok bool
	at time.Time
}

func newRouteCache(ask func(string, nflog.RouteQuery) (nflog.RouteDecision, bool), now func() time.Time) *routeCache {
	return &routeCache{ask: ask, now: now, answers: map[routeQuestion]routeAnswer{}}
}

// route answers as JourneyOptions.Route does.
func (c *routeCache) route(netns string, q nflog.RouteQuery) (nflog.RouteDecision, bool) {
	now := c.now()
	k := routeQuestion{netns, q}
	if a, ok := c.answers[k]; ok && now.Sub(a.at) < routeCacheTTL {
		return a.d, a.ok
	}
	if now.Sub(c.since) >= time.Second {
		c.since, c.asked = now, 0
	}
	if c.asked >= routeBudget {
		c.left.Add(1)
		return nflog.RouteDecision{}, false
	}
	c.asked++
	d, ok := c.ask(netns, q)
	if len(c.answers) >= routeCacheMax {
		clear(c.answers)
	}
	c.answers[k] = routeAnswer{d: d, ok: ok, at: now}
	return d, ok
}

// skipped counts the questions left unasked (nil: none).
func (c *routeCache) skipped() uint64 {
	if c == nil {
		return 0
	}
	return c.left.Load()
}
