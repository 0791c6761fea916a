package main

import (
	"fmt"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/capture/filter"
	"github.com/hooktrace/hooktrace/decode"
)

// traceSelector says, on replay with a filter, which trace events to
// print: those of the packets the filter passes, as tcpdump would print
// only those packets. An event with the packet's header snapshot (the
// first of each base chain, and every iptables-legacy TRACE line) is
// judged by it, as raw IP; the events after it follow that judgement, by
// trace id in their namespace. An event with no snapshot whose trace id
// no snapshot judged is not printed. It is for one goroutine.
type traceSelector struct {
	match  *filter.Set
	warn   func(error)
	warned bool
	// Judgements by trace id: cur takes new ones; when it is full it
	// becomes old, so that the ids of packets long gone are forgotten.
	cur, old map[traceKey]bool
	raw      []byte
}

// traceKey is a packet's trace id in its namespace.
type traceKey struct {
	netns string
	id    uint32
}

// traceJudgements is how many trace ids a traceSelector's generation
// holds.
const traceJudgements = 1 << 16

func newTraceSelector(match *filter.Set, warn func(error)) *traceSelector {
	return &traceSelector{match: match, warn: warn, cur: map[traceKey]bool{}, old: map[traceKey]bool{}}
}

// pass judges trace event t.
func (s *traceSelector) pass(t *decode.TraceEvent) bool {
	k := traceKey{t.Netns, t.ID}
	if len(t.Network) == 0 {
		if ok, seen := s.cur[k]; seen {
			return ok
		}
		return s.old[k]
	}
	s.raw = append(append(s.raw[:0], t.Network...), t.Transport...)
	ok, err := s.match.Match(int(capture.LinkTypeRaw), s.raw, decode.IPLength(s.raw))
	if err != nil && !s.warned {
		s.warned = true
		s.warn(fmt.Errorf("trace events are filtered by the packet headers they show, as raw IP: %v; trace events are not printed", err))
	}
	if len(s.cur) >= traceJudgements {
		s.cur, s.old = make(map[traceKey]bool, traceJudgements), s.cur
	}
	s.cur[k] = ok
	return ok
}
