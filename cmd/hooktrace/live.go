package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/capture/filter"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/nflog"
	"github.com/hooktrace/hooktrace/ui"
)

// debugPanicEnv, when set, makes a live capture panic in a goroutine once
// it has started: how the tests check that a crash leaves no rule, table
// or sysctl of hooktrace's behind.
const debugPanicEnv = "HOOKTRACE_DEBUG_PANIC"

// captureLive captures on AF_PACKET rings until the count, the duration
// or a signal ends it (or, in the terminal UI, the person quits), then
// flushes everything and prints the counters.
func captureLive(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	var held *heldLog // set when the terminal UI shows the capture
	if o.explain == nil && wantTUI(o, stdout) {
		// The terminal belongs to the UI: what hooktrace has to say is
		// held, and written once the terminal is given back.
		held = &heldLog{}
		defer held.writeTo(stderr)
		stderr = held
	}
	namespaces, err := capture.NamespaceSpec(o.netns)
	if err != nil {
		return &usageError{err: err}
	}
	var notifyMu sync.Mutex
	warn := func(err error) {
		notifyMu.Lock()
		fmt.Fprintf(stderr, "hooktrace: warning: %v\n", err)
		notifyMu.Unlock()
	}
	refs, err := netnsRefs(namespaces)
	if err != nil {
		return err
	}
	var logs *logSources
	if len(o.nflogGroups) > 0 {
		if logs, err = listenLogGroups(refs, o.nflogGroups, warn); err != nil {
			return &usageError{err: err}
		}
		defer logs.close()
	}
	removeTracing := func() {} // once the capture is over; again (a no-op) on every return
	if o.trace {
		// Binding the log group changes nothing that outlives hooktrace,
		// and fails first when a privilege is missing.
		traceLogs, group, err := bindTraceGroup(refs, warn)
		if err != nil {
			return err
		}
		if logs == nil {
			logs = &logSources{}
			defer logs.close()
		}
		logs.merge(traceLogs)
		stopGuard, err := startGuard(namespacePaths(namespaces))
		if err != nil {
			return err
		}
		defer stopGuard()
		rules, err := installTracing(o, namespaces, group)
		if err != nil {
			return err
		}
		removeTracing = func() {
			if err := rules.Remove(); err != nil {
				fmt.Fprintf(stderr, "hooktrace: %v\n", err)
			}
		}
		defer removeTracing()
	} else {
		warnLeftovers(namespaces, stderr)
	}
	live, err := capture.StartLive(ctx, capture.LiveOptions{
		Interfaces:      o.ifaces,
		NoInterfaces:    len(o.ifaces) == 0 && len(o.nflogGroups) > 0,
		Namespaces:      namespaces,
		WatchNamespaces: hasAll(o.netns),
		Snaplen:         o.snaplen,
		RingBytes:       o.ringBytes,
		BlockTimeout:    o.blockTimeout,
		Promisc:         o.promisc,
		Filter:          captureFilter(o),
		Notify: func(msg string) {
			notifyMu.Lock()
			fmt.Fprintf(stderr, "hooktrace: %s\n", msg)
			notifyMu.Unlock()
		},
	})
	if err != nil {
		var se *filter.SyntaxError
		if errors.As(err, &se) || errors.Is(err, capture.ErrNoInterface) {
			return &usageError{err: err}
		}
		return err
	}
	defer live.Close()
	if logs != nil {
		logs.feed(live, warn)
	}
	run := &liveRun{live: live, refs: refs, logs: logs, trace: o.trace, stderr: stderr, warn: warn}
	var out liveOutput
	if held != nil {
		out = newScreenOutput(ctx, o, run, stdout.(*os.File), held)
	} else if out, err = newPrintOutput(o, run, stdout); err != nil {
		return err
	}
	var tr *tracing
	var drops *dropProbe
	if o.trace {
		// Every packet, trace event, NFLOG message and kernel drop goes to
		// the journeys too.
		drops = startDropProbe(namespaces, out, stderr)
		defer drops.close()
		if tr, err = startTracing(namespaces, live, out, stderr); err != nil {
			out.abort()
			return err
		}
		run.tr.Store(tr)
	}
	var legacy *legacyTracing
	if o.trace {
		// iptables-legacy TRACE lines, where legacy tables exist; closed
		// before the output, and again (a no-op) on an early return.
		legacy = startLegacyTracing(namespaces, live.InterfaceName, out, stderr)
		defer func() {
			if err := legacy.close(); err != nil {
				fmt.Fprintf(stderr, "hooktrace: %v\n", err)
			}
		}()
	}
	switch {
	case o.explain != nil:
		o.explain.ready(stderr)
	case held == nil: // the UI's status bar says it
		fmt.Fprintf(stderr, "hooktrace: capturing on %s\n", describe(live.Stats(), len(namespaces), o))
	}
	if o.readyFile != "" {
		if err := os.WriteFile(o.readyFile, []byte("ready\n"), 0o644); err != nil {
			out.abort()
			return fmt.Errorf("write ready file: %w", err)
		}
	}
	if os.Getenv(debugPanicEnv) != "" {
		// A crash nothing in this process can clean up after: the cleanup
		// guard has to restore what hooktrace changed.
		go func() { panic(debugPanicEnv + " is set: hooktrace panics on purpose") }()
	}
	// A stop first drains the NFLOG groups into the capture, then ends it.
	stop := func() {
		logs.close()
		live.Stop()
	}
	stopper := stopOn(ctx, o.duration, stop)
	err = out.run(live, stop) // until the capture ends, or the UI is quit
	live.Stop()
	stopper()
	logs.close()
	var traceStats []ui.TraceCounts
	if tr != nil {
		tr.close()
		traceStats = traceCounts(tr)
	}
	if legacy != nil {
		if lerr := legacy.close(); lerr != nil {
			fmt.Fprintf(stderr, "hooktrace: %v\n", lerr)
		}
	}
	if drops != nil {
		if st := drops.close(); st.Lost > 0 {
			fmt.Fprintf(stderr, "hooktrace: the kernel drop probe lost %d of %d drops (its ring buffer was full)\n", st.Lost, st.Lost+st.Received)
		}
	}
	// The capture is over: tracing is removed before the output is
	// finished (the terminal UI stays open until the person quits).
	removeTracing()
	stats := append(live.Stats(), logs.stats()...)
	if ferr := out.finish(stats, traceStats); ferr != nil && err == nil {
		err = ferr
	}
	if o.explain == nil {
		ui.WriteStatsText(stderr, stats, traceStats)
	}
	return err
}

// liveOutput is where a live capture goes: lines and pcapng
// (printOutput), or the terminal UI (screenOutput). captureLive sets up
// and removes everything else the same way for both.
type liveOutput interface {
	// Trace takes a trace event (nf_tables or iptables-legacy).
	ui.TracePrinter
	// drop takes a packet the kernel dropped.
	drop(nflog.KernelDrop)
	// run takes the capture's frames until it ends, or until the person
	// at the UI is done; stop ends the capture. The UI stays open after
	// a capture that ended by itself (-c, --duration), until finish.
	run(live *capture.Live, stop func()) error
	// finish, once every source has stopped and tracing is removed,
	// writes what is left with the final counters and closes the output
	// (the UI: waits until it is quit).
	finish(stats []capture.InterfaceStats, traceStats []ui.TraceCounts) error
	// abort closes the output after a failed start.
	abort()
}

// liveRun is what an output needs of the live capture's sources.
type liveRun struct {
	live   *capture.Live
	refs   []nflog.NetnsRef
	logs   *logSources // nil without NFLOG groups or --trace
	trace  bool
	tr     atomic.Pointer[tracing] // set once tracing started
	stderr io.Writer
	warn   func(error)
}

// journeyOptions names interfaces as the capture knows them, and routes
// with the traced namespaces' kernels.
func (r *liveRun) journeyOptions() decode.JourneyOptions {
	return decode.JourneyOptions{
		IfName: func(netns string, index uint32) string { return r.live.InterfaceName(netns, int(index)) },
		Route:  routeLookup(r.refs, r.warn),
	}
}

// traceLosses returns each traced namespace's count of ENOBUFS reports
// (nil before tracing started).
func (r *liveRun) traceLosses() map[string]uint64 { return traceLosses(r.tr.Load()) }

func hasAll(spec string) bool {
	for _, s := range splitComma(spec) {
		if s == "all" {
			return true
		}
	}
	return false
}

// stopOn calls stop when ctx ends or the duration passes; the returned
// function releases the watcher.
func stopOn(ctx context.Context, d time.Duration, stop func()) func() {
	done := make(chan struct{})
	var timer <-chan time.Time
	var t *time.Timer
	if d > 0 {
		t = time.NewTimer(d)
		timer = t.C
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if t != nil {
			defer t.Stop()
		}
		select {
		case <-ctx.Done():
		case <-timer:
		case <-done:
			return
		}
		stop()
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// describe says what is being captured, for the start-up line.
func describe(stats []capture.InterfaceStats, namespaces int, o *options) string {
	what := fmt.Sprintf("%d interfaces in %d network namespaces", len(stats), namespaces)
	if o.filter != "" {
		what += fmt.Sprintf(", filter %q", o.filter)
	}
	return what
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// namespacePaths is the --netns value naming exactly these namespaces,
// for the cleanup guard.
func namespacePaths(nss []capture.Namespace) string {
	paths := make([]string, len(nss))
	for i, ns := range nss {
		paths[i] = ns.Path
	}
	return strings.Join(paths, ",")
}

// traceCounts returns the events each namespace's trace listener
// received, and its ENOBUFS reports.
func traceCounts(tr *tracing) []ui.TraceCounts {
	counts := make([]ui.TraceCounts, 0, len(tr.listeners))
	for _, l := range tr.listeners {
		counts = append(counts, ui.TraceCounts{Netns: l.Netns(), Received: l.Received(), Lost: l.Lost(), Unread: l.Unread()})
	}
	return counts
}

// routeLookup asks the kernel of a traced namespace how it routes a
// packet, for the journeys' route steps. A lookup that cannot be made is
// said once per namespace and leaves the step out.
func routeLookup(refs []nflog.NetnsRef, warn func(error)) func(string, nflog.RouteQuery) (nflog.RouteDecision, bool) {
	paths := map[string]string{}
	for _, r := range refs {
		paths[r.Name] = r.Path
	}
	var mu sync.Mutex
	warned := map[string]bool{}
	return func(netns string, q nflog.RouteQuery) (nflog.RouteDecision, bool) {
		path, ok := paths[netns]
		if !ok {
			return nflog.RouteDecision{}, false
		}
		d, err := nflog.LookupRoute(path, q)
		if err != nil {
			mu.Lock()
			if !warned[netns] {
				warned[netns] = true
				warn(fmt.Errorf("route steps left out in %s: %w", netns, err))
			}
			mu.Unlock()
			return nflog.RouteDecision{}, false
		}
		return d, true
	}
}

// answersFilter selects the answers a refused packet gets: ICMP errors
// and TCP resets.
const answersFilter = "icmp[icmptype] == icmp-unreach or icmp[icmptype] == icmp-timxceed or icmp[icmptype] == icmp-paramprob or (icmp6 and ip6[40] < 128) or tcp[tcpflags] & tcp-rst != 0"

// captureFilter is the kernel filter of the capture: the user's, and with
// --trace also the ICMP errors and resets sent back for the traced
// packets, which journeys link to them.
func captureFilter(o *options) string {
	if !o.trace || o.filter == "" {
		return o.filter
	}
	return "(" + o.filter + ") or " + answersFilter
}

// traceLosses returns each traced namespace's count of ENOBUFS reports
// (nil before tracing started).
func traceLosses(tr *tracing) map[string]uint64 {
	if tr == nil {
		return nil
	}
	m := map[string]uint64{}
	for _, l := range tr.listeners {
		m[l.Netns()] += l.Lost()
	}
	return m
}
