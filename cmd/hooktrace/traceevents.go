package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/nflog"
	"github.com/hooktrace/hooktrace/ui"
)

// traceBufferBytes is the receive buffer of each trace socket: under a
// flood, the default buffers overran where 64 MiB lost nothing.
const traceBufferBytes = 64 << 20

// tracing follows the nf_tables trace events of every traced namespace
// and prints them beside the packets.
type tracing struct {
	listeners []*nflog.TraceListener
	books     []*ruleBook
	names     []string // of the books' namespaces
	stderr    io.Writer
	wg        sync.WaitGroup
	received  atomic.Uint64
}

// ruleBook is one namespace's ruleset, kept current by its change
// watch. A trace may name a rule before the watch has applied the change
// that added it: lookup then waits for the watch to catch up with the
// kernel, and as a last resort reloads the chain (once per rule).
type ruleBook struct {
	path    string
	watch   *nflog.RulesetWatch // nil when changes are not followed
	mu      sync.Mutex
	rs      *nflog.Ruleset
	retried map[string]bool // rules looked for again
}

// ruleBookSync bounds how long a trace waits for the ruleset watch.
const ruleBookSync = 2 * time.Second

func (b *ruleBook) lookup(t nflog.Trace) decode.RuleBook {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rs == nil {
		return nil
	}
	fam := nflog.FamilyName(t.Family)
	if b.knows(fam, t) {
		b.followIptables(fam, t)
		return b.rs
	}
	key := fmt.Sprintf("%s %s %s %d", fam, t.Table, t.Chain, t.Handle)
	if b.retried[key] {
		return b.rs
	}
	b.retried[key] = true
	if b.watch != nil && b.watch.Sync(ruleBookSync) == nil && b.knows(fam, t) {
		b.followIptables(fam, t)
		return b.rs
	}
	b.rs.ReloadChain(b.path, fam, t.Table, t.Chain)
	if b.knows(fam, t) {
		b.followIptables(fam, t)
	}
	return b.rs
}

// iptablesTables are the tables iptables-nft writes.
var iptablesTables = map[string]bool{"filter": true, "nat": true, "mangle": true, "raw": true, "security": true}

// followIptables gives a rule iptables-nft added while tracing its
// iptables text: the text is read once at start, so a known rule in one
// of iptables-nft's tables without it is looked up again (once per rule).
func (b *ruleBook) followIptables(fam string, t nflog.Trace) {
	if t.Handle == 0 || (fam != "ip" && fam != "ip6") || !iptablesTables[t.Table] {
		return
	}
	if _, ok := b.rs.IptablesRule(fam, t.Table, t.Chain, t.Handle); ok {
		return
	}
	key := fmt.Sprintf("iptables %s %s %s %d", fam, t.Table, t.Chain, t.Handle)
	if b.retried[key] {
		return
	}
	b.retried[key] = true
	b.rs.ReloadIptables(b.path)
}

// knows says whether the ruleset has the trace's chain, and its rule.
func (b *ruleBook) knows(fam string, t nflog.Trace) bool {
	if _, ok := b.rs.Chain(fam, t.Table, t.Chain); !ok {
		return false
	}
	_, ok := b.rs.Rule(fam, t.Table, t.Chain, t.Handle)
	return ok || t.Handle == 0
}

// openRuleBook loads a namespace's ruleset and follows its changes; when
// changes cannot be followed, the ruleset is loaded once and reloaded a
// chain at a time on a miss.
func openRuleBook(name, path string, stderr io.Writer) *ruleBook {
	book := &ruleBook{path: path, retried: map[string]bool{}}
	warn := func(err error) { fmt.Fprintf(stderr, "hooktrace: warning: netns %s: %v\n", name, err) }
	w, err := nflog.WatchRuleset(name, path, nflog.WatchOptions{OnError: warn})
	switch {
	case err == nil:
		book.watch, book.rs = w, w.Ruleset()
	default:
		rs, lerr := nflog.LoadRuleset(path)
		if lerr != nil {
			fmt.Fprintf(stderr, "hooktrace: warning: %v; rules are shown by handle only\n", lerr)
			return book
		}
		fmt.Fprintf(stderr, "hooktrace: warning: %v; rules added while tracing are looked up when first seen\n", err)
		book.rs = rs
	}
	if m, err := nflog.LoadIptablesRules(path); err == nil {
		book.rs.AttachIptables(m)
	}
	return book
}

// close stops the watch, and reports lost changes.
func (b *ruleBook) close(name string, stderr io.Writer) {
	if b.watch == nil {
		return
	}
	b.watch.Close()
	if st := b.watch.Stats(); st.Lost > 0 {
		fmt.Fprintf(stderr, "hooktrace: netns %s: ruleset change events were lost %d times; the ruleset was reloaded %d times\n", name, st.Lost, st.FullReloads)
	}
}

// startTracing opens a trace listener in every namespace and prints each
// event through printer (nil: count only).
func startTracing(nss []capture.Namespace, live *capture.Live, printer ui.TracePrinter, stderr io.Writer) (*tracing, error) {
	refs, err := netnsRefs(nss)
	if err != nil {
		return nil, err
	}
	tr := &tracing{stderr: stderr}
	resolver := decode.NewTraceResolver()
	var resolveMu sync.Mutex
	for i, ref := range refs {
		l, err := nflog.ListenTraces(nss[i].Name, ref.Path, traceBufferBytes)
		var small *nflog.TraceBufferError
		switch {
		case errors.As(err, &small) && l != nil:
			fmt.Fprintf(stderr, "hooktrace: warning: %v; a burst of trace events may be lost (and counted)\n", err)
		case err != nil:
			tr.close()
			return nil, err
		}
		tr.listeners = append(tr.listeners, l)
		book := openRuleBook(nss[i].Name, ref.Path, stderr)
		tr.books = append(tr.books, book)
		tr.names = append(tr.names, nss[i].Name)
		tr.wg.Add(1)
		go func(l *nflog.TraceListener, book *ruleBook, netns string) {
			defer tr.wg.Done()
			ifname := func(index uint32) string { return live.InterfaceName(netns, int(index)) }
			failures := 0
			for {
				t, err := l.Next()
				if errors.Is(err, net.ErrClosed) {
					return
				}
				if err != nil {
					// A malformed message: say so, and keep listening, unless
					// the socket itself keeps failing.
					fmt.Fprintf(stderr, "hooktrace: warning: %v\n", err)
					if failures++; failures > 100 {
						return
					}
					continue
				}
				failures = 0
				tr.received.Add(1)
				if t.IsOwn() {
					continue // hooktrace's own marking rules: not the user's path
				}
				rb := book.lookup(t)
				resolveMu.Lock()
				ev := resolver.Resolve(t, rb, ifname)
				resolveMu.Unlock()
				if printer == nil {
					continue
				}
				if err := printer.Trace(&ev); err != nil {
					return
				}
			}
		}(l, book, nss[i].Name)
	}
	return tr, nil
}

// lost adds up the ENOBUFS reports of every listener.
func (tr *tracing) lost() uint64 {
	var n uint64
	for _, l := range tr.listeners {
		n += l.Lost()
	}
	return n
}

// close stops the listeners, waits for their readers, and stops the
// ruleset watches.
func (tr *tracing) close() {
	// Events of packets still in flight are read before the end.
	for _, l := range tr.listeners {
		l.Stop()
	}
	tr.wg.Wait()
	for _, l := range tr.listeners {
		l.Close()
	}
	for i, b := range tr.books {
		b.close(tr.names[i], tr.stderr)
	}
	tr.books = nil
}
