package nflog

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ChangeBufferBytes is the default receive buffer of a ruleset change
// socket: a 20,000-rule `nft -f` sends about 3 MiB of notifications.
const ChangeBufferBytes = 16 << 20

// maxChainReloads is how many chains one generation may reload one by
// one; more, and the whole ruleset is loaded instead.
const maxChainReloads = 8

// WatchOptions tunes a RulesetWatch; the zero value is the usual choice.
type WatchOptions struct {
	// BufBytes is the change socket's receive buffer (0: ChangeBufferBytes).
	BufBytes int
	// NoMonitor takes the text of new rules from chain reloads only,
	// without an `nft monitor` process.
	NoMonitor bool
	// MonitorWait bounds the wait for nft monitor's text of a generation
	// (0: 2 s); past it, the chains are reloaded instead.
	MonitorWait time.Duration
	// OnError is told about reloads that failed and sockets that broke;
	// the watch goes on. It may be nil.
	OnError func(error)
}

// WatchStats counts what a RulesetWatch did.
type WatchStats struct {
	Generations  uint64 // generations applied
	Changes      uint64 // table, chain and rule changes among them
	MonitorRules uint64 // new rules whose text came from nft monitor
	ChainReloads uint64 // chains listed again for want of a rule's text
	FullReloads  uint64 // whole-ruleset loads: after lost changes, or for many chains
	Lost         uint64 // times the change socket reported ENOBUFS
	Malformed    uint64 // notifications that did not decode
	Errors       uint64 // reloads that failed
	// ApplyTime is the time spent bringing the ruleset up to date after
	// each generation (waiting for nft monitor's text and reloads
	// included), from the end of its notifications on.
	ApplyTime time.Duration
}

// RulesetWatch keeps one namespace's Ruleset current: it loads the
// ruleset once, then applies each generation of changes the kernel
// announces (NFNLGRP_NFTABLES) in time proportional to the change.
// Deletions are applied from the notifications themselves; a new chain's
// hook and priority come from its notification; a new rule's text comes
// from an `nft -a monitor rules` process in the namespace, or, when that
// is missing or late, from reloading the rule's chain. When changes are
// lost (ENOBUFS), the whole ruleset is loaded again once.
type RulesetWatch struct {
	name, nsPath string
	opt          WatchOptions
	rs           *Ruleset
	l            *ChangeListener
	mon          *nftMonitor // nil without nft monitor
	stop         chan struct{}
	stopOnce     sync.Once
	closeErr     error
	done         chan struct{}

	mu        sync.Mutex
	applied   uint32        // generation rs reflects
	appliedCh chan struct{} // closed and replaced when applied moves

	generations, changes, monitorRules, chainReloads, fullReloads, errs atomic.Uint64
	applyNanos                                                          atomic.Int64
}

// WatchRuleset subscribes to the ruleset changes of the namespace at
// nsPath ("" for hooktrace's own; name labels errors), loads its ruleset
// with LoadRuleset, and keeps it current until Close. Errors are
// LoadRuleset's and ListenRulesetChanges's; a missing nft monitor only
// costs speed.
func WatchRuleset(name, nsPath string, opt WatchOptions) (*RulesetWatch, error) {
	if opt.BufBytes == 0 {
		opt.BufBytes = ChangeBufferBytes
	}
	if opt.MonitorWait == 0 {
		opt.MonitorWait = 2 * time.Second
	}
	l, err := ListenRulesetChanges(name, nsPath, opt.BufBytes)
	if err != nil {
		return nil, err
	}
	w := &RulesetWatch{name: name, nsPath: nsPath, opt: opt, l: l,
		stop: make(chan struct{}), done: make(chan struct{}), appliedCh: make(chan struct{})}
	if !opt.NoMonitor {
		// nft loads its cache while LoadRuleset runs.
		if w.mon, err = startNftMonitor(nsPath); err == nil {
			go w.mon.awaitSubscription(l.Generation, w.stop)
		}
	}
	if err := w.load(); err != nil {
		w.closeParts()
		return nil, err
	}
	if w.mon != nil {
		// Ready means that a rule added from now on gets its text from
		// nft monitor; nft's own cache load runs beside LoadRuleset's.
		w.mon.waitReady(monitorStartWait)
	}
	go w.run()
	return w, nil
}

// monitorStartWait bounds how long WatchRuleset waits for nft monitor to
// subscribe; past it, the watch starts anyway and new rules are reloaded
// by chain until nft is ready.
const monitorStartWait = 10 * time.Second

// load takes the generation, then the ruleset: the ruleset is at least
// as new as the generation, and later batches apply on top of it.
func (w *RulesetWatch) load() error {
	g, err := w.l.Generation()
	if err != nil {
		return err
	}
	rs, err := LoadRuleset(w.nsPath)
	if err != nil {
		return err
	}
	w.rs, w.applied = rs, g
	return nil
}

// Ruleset returns the ruleset the watch keeps current.
func (w *RulesetWatch) Ruleset() *Ruleset { return w.rs }

// run applies generations until Close.
func (w *RulesetWatch) run() {
	defer close(w.done)
	failures := 0
	for {
		b, err := w.l.Next()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			w.report(err)
			if failures++; failures > 100 {
				return
			}
			continue
		}
		failures = 0
		w.handle(b)
	}
}

// handle applies one batch, or reloads everything when it is lost.
func (w *RulesetWatch) handle(b ChangeBatch) {
	start := time.Now()
	defer func() { w.applyNanos.Add(int64(time.Since(start))) }()
	if b.Lost {
		w.reloadAll()
		return
	}
	text := w.textSource(b)
	reload := w.rs.Apply(b, text)
	if len(reload) > maxChainReloads {
		// Many chains without text (nft monitor is gone or late): one
		// full load costs less than listing each chain, since nft fetches
		// every set of a table to list one of its chains.
		w.reloadAll()
		reload = nil
	}
	for _, ref := range reload {
		w.chainReloads.Add(1)
		if err := w.rs.ReloadChain(w.nsPath, ref.Family, ref.Table, ref.Chain); err != nil {
			w.report(err)
		}
	}
	if w.mon != nil {
		w.mon.forget()
	}
	w.generations.Add(1)
	w.changes.Add(uint64(len(b.Changes)))
	w.setApplied(b.Gen)
}

// textSource returns where the batch's new rules get their text: nft
// monitor's lines for them, when it printed them.
func (w *RulesetWatch) textSource(b ChangeBatch) RuleTextFunc {
	if w.mon == nil || !hasNewRule(b) || !w.mon.waitRules(b.Gen, newRuleKeys(b), w.opt.MonitorWait) {
		return nil
	}
	return func(c RulesetChange) (string, bool) {
		s, ok := w.mon.take(c)
		if ok {
			w.monitorRules.Add(1)
		}
		return s, ok
	}
}

// newRuleKeys lists the rules a batch adds, as nft monitor prints them.
func newRuleKeys(b ChangeBatch) []monitorKey {
	var keys []monitorKey
	for _, c := range b.Changes {
		if c.Op == ChangeNewRule {
			keys = append(keys, monitorKey{c.Family, c.Table, c.Handle})
		}
	}
	return keys
}

func hasNewRule(b ChangeBatch) bool {
	for _, c := range b.Changes {
		if c.Op == ChangeNewRule {
			return true
		}
	}
	return false
}

// reloadAll loads the whole ruleset again after lost changes.
func (w *RulesetWatch) reloadAll() {
	w.fullReloads.Add(1)
	g, err := w.l.Generation()
	if err != nil {
		w.report(err)
		return
	}
	fresh, err := LoadRuleset(w.nsPath)
	if err != nil {
		w.report(fmt.Errorf("reload after lost ruleset changes: %w", err))
		return
	}
	w.rs.replaceWith(fresh)
	w.setApplied(g)
}

func (w *RulesetWatch) report(err error) {
	w.errs.Add(1)
	if w.opt.OnError != nil {
		w.opt.OnError(err)
	}
}

// setApplied records that rs reflects generation g (it never goes back).
func (w *RulesetWatch) setApplied(g uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if genAfter(g, w.applied) {
		w.applied = g
	}
	close(w.appliedCh)
	w.appliedCh = make(chan struct{})
}

// Sync waits until the ruleset reflects every change the kernel had
// committed when Sync was called, or timeout passes. A trace that names
// a rule the ruleset does not know may just be ahead of its change
// notification: Sync first, then reload as a last resort.
func (w *RulesetWatch) Sync(timeout time.Duration) error {
	g, err := w.l.Generation()
	if err != nil {
		return err
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		ok, ch := !genAfter(g, w.applied), w.appliedCh
		w.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-w.done:
			return fmt.Errorf("ruleset watch of netns %s has stopped", w.name)
		case <-deadline.C:
			return fmt.Errorf("ruleset of netns %s not at generation %d after %v", w.name, g, timeout)
		}
	}
}

// Stats returns the counters so far.
func (w *RulesetWatch) Stats() WatchStats {
	return WatchStats{
		Generations:  w.generations.Load(),
		Changes:      w.changes.Load(),
		MonitorRules: w.monitorRules.Load(),
		ChainReloads: w.chainReloads.Load(),
		FullReloads:  w.fullReloads.Load(),
		Lost:         w.l.Lost(),
		Malformed:    w.l.Malformed(),
		Errors:       w.errs.Load(),
		ApplyTime:    time.Duration(w.applyNanos.Load()),
	}
}

// Close stops the watch: the sockets close, nft monitor is killed, and
// Close returns once the applying goroutine is gone.
func (w *RulesetWatch) Close() error {
	err := w.closeParts()
	<-w.done
	return err
}

func (w *RulesetWatch) closeParts() error {
	w.stopOnce.Do(func() {
		close(w.stop)
		w.closeErr = w.l.Close()
		if w.mon != nil {
			w.mon.close()
		}
	})
	return w.closeErr
}
