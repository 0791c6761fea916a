package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

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
	wg        sync.WaitGroup
	received  atomic.Uint64
}

// ruleBook is one namespace's ruleset, reloaded chain by chain when a
// trace names a rule it does not know yet (a rule added while tracing).
type ruleBook struct {
	path    string
	mu      sync.Mutex
	rs      *nflog.Ruleset
	retried map[string]bool // chains reloaded for a missing handle
}

func (b *ruleBook) lookup(t nflog.Trace) decode.RuleBook {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rs == nil {
		return nil
	}
	fam := nflog.FamilyName(t.Family)
	_, okChain := b.rs.Chain(fam, t.Table, t.Chain)
	_, okRule := b.rs.Rule(fam, t.Table, t.Chain, t.Handle)
	key := fmt.Sprintf("%s %s %s %d", fam, t.Table, t.Chain, t.Handle)
	if (!okChain || (t.Handle != 0 && !okRule)) && !b.retried[key] {
		b.retried[key] = true
		b.rs.ReloadChain(b.path, fam, t.Table, t.Chain)
	}
	return b.rs
}

// startTracing opens a trace listener in every namespace and prints each
// event through printer (nil: count only).
func startTracing(nss []capture.Namespace, live *capture.Live, printer ui.TracePrinter, stderr io.Writer) (*tracing, error) {
	refs, err := netnsRefs(nss)
	if err != nil {
		return nil, err
	}
	tr := &tracing{}
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
		book := &ruleBook{path: ref.Path, retried: map[string]bool{}}
		if rs, err := nflog.LoadRuleset(ref.Path); err != nil {
			fmt.Fprintf(stderr, "hooktrace: warning: %v; rules are shown by handle only\n", err)
		} else {
			book.rs = rs
			if m, err := nflog.LoadIptablesRules(ref.Path); err == nil {
				rs.AttachIptables(m)
			}
		}
		tr.books = append(tr.books, book)
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
				if t.Table == nflog.TraceTable && nflog.FamilyName(t.Family) == "inet" {
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

// close stops the listeners and waits for their readers.
func (tr *tracing) close() {
	for _, l := range tr.listeners {
		l.Close()
	}
	tr.wg.Wait()
}
