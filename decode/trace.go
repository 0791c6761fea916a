package decode

import (
	"fmt"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// TraceEvent is one nf_tables trace step with what it means: the hook and
// priority of the base chain the packet is in, the rule's text, and the
// interfaces by name.
type TraceEvent struct {
	nflog.Trace
	Hook         string // "prerouting", "input", ...; "" when unknown
	Priority     int
	HasPriority  bool
	Rule         string // the rule as nft prints it; "" when unknown
	IptablesRule string // the same rule in iptables syntax, when iptables-nft made it
	IIFName      string
	OIFName      string

	// Legacy marks an iptables-legacy TRACE line (LegacyTrace) rather
	// than an nf_tables trace event: such a rule has no handle, and
	// RuleNumber is its 1-based position in its chain (as `iptables -L
	// --line-numbers` counts), 0 for policy and return lines.
	Legacy     bool
	RuleNumber int
}

// RuleBook answers what a namespace's ruleset says about a chain or a
// rule. nflog.Ruleset is one.
type RuleBook interface {
	Rule(family, table, chain string, handle uint64) (string, bool)
	Chain(family, table, chain string) (nflog.ChainInfo, bool)
	IptablesRule(family, table, chain string, handle uint64) (string, bool)
}

// TraceResolver turns trace records into events. It remembers, per
// namespace and trace id, the base chain a packet entered, so that steps
// in the user chains it jumps to still carry their hook. It holds a
// bounded amount of state and does no I/O.
type TraceResolver struct {
	hooks map[traceKey]baseChain
	order []traceKey // oldest first, for eviction
}

type traceKey struct {
	netns string
	id    uint32
}

type baseChain struct {
	hook     string
	priority int
}

// maxTracedPackets bounds the ids remembered.
const maxTracedPackets = 4096

// NewTraceResolver returns an empty resolver.
func NewTraceResolver() *TraceResolver {
	return &TraceResolver{hooks: map[traceKey]baseChain{}}
}

// Resolve builds the event for a trace record; book may be nil when the
// ruleset is unknown, and ifname maps an interface index (in the record's
// namespace) to its name.
func (r *TraceResolver) Resolve(t nflog.Trace, book RuleBook, ifname func(index uint32) string) TraceEvent {
	ev := TraceEvent{Trace: t}
	fam := nflog.FamilyName(t.Family)
	key := traceKey{t.Netns, t.ID}
	if book != nil {
		if c, ok := book.Chain(fam, t.Table, t.Chain); ok && c.Base {
			r.remember(key, baseChain{c.Hook, c.Priority})
		}
		if t.Handle != 0 {
			ev.Rule, _ = book.Rule(fam, t.Table, t.Chain, t.Handle)
			ev.IptablesRule, _ = book.IptablesRule(fam, t.Table, t.Chain, t.Handle)
		}
	}
	if bc, ok := r.hooks[key]; ok {
		ev.Hook, ev.Priority, ev.HasPriority = bc.hook, bc.priority, true
	}
	if ifname != nil {
		if t.IIF != 0 {
			ev.IIFName = ifname(t.IIF)
		}
		if t.OIF != 0 {
			ev.OIFName = ifname(t.OIF)
		}
	}
	return ev
}

func (r *TraceResolver) remember(k traceKey, bc baseChain) {
	if _, ok := r.hooks[k]; !ok {
		r.order = append(r.order, k)
		if len(r.order) > maxTracedPackets {
			delete(r.hooks, r.order[0])
			r.order = r.order[1:]
		}
	}
	r.hooks[k] = bc
}

// IDString is the trace id as `nft monitor trace` prints it.
func (ev *TraceEvent) IDString() string { return fmt.Sprintf("%08x", ev.ID) }

// Snapshot returns the packet headers the event carries as a raw IP frame
// for Decode, or false when the event has none (only a base chain's first
// event carries them).
func (ev *TraceEvent) Snapshot() (capture.Frame, bool) {
	if len(ev.Network) == 0 {
		return capture.Frame{}, false
	}
	data := make([]byte, 0, len(ev.Network)+len(ev.Transport))
	data = append(append(data, ev.Network...), ev.Transport...)
	return capture.Frame{Time: ev.Time, Netns: ev.Netns, LinkType: capture.LinkTypeRaw, Len: len(data), Data: data}, true
}
