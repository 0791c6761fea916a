package ui

import (
	"strconv"
	"sync"

	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/nflog"
)

// TracePrinter writes one record per trace event.
//
// hooktrace prints the events of each traced namespace from that
// namespace's listener, so the printers' Trace may be called from several
// goroutines at once: each call builds its record in scratch space of its
// own and writes it with one Write, which the writer must take whole (the
// printer's own buffers, which Packet uses, are not touched).
type TracePrinter interface {
	Trace(ev *decode.TraceEvent) error
}

// Scratch printers for Trace calls, with their buffers and decoders.
var (
	ndjsonScratch = sync.Pool{New: func() any { return NewNDJSON(nil) }}
	textScratch   = sync.Pool{New: func() any { return NewText(nil, nil) }}
)

// Trace writes a {"type":"trace",...} record; the header snapshot, when
// the event has one, is decoded into "layers".
func (p *NDJSON) Trace(ev *decode.TraceEvent) error {
	s := ndjsonScratch.Get().(*NDJSON)
	s.w = p.w
	err := s.trace(ev)
	s.w = nil
	ndjsonScratch.Put(s)
	return err
}

func (p *NDJSON) trace(ev *decode.TraceEvent) error {
	j := &p.j
	j.reset()
	j.open('{')
	j.plain("type", "trace")
	p.time("time", ev.Time)
	j.Str("netns", ev.Netns)
	j.plain("id", ev.IDString())
	j.plain("family", nflog.FamilyName(ev.Family))
	j.Str("table", ev.Table)
	j.Str("chain", ev.Chain)
	j.plain("hook", ev.Hook)
	if ev.HasPriority {
		j.key("priority")
		j.b = strconv.AppendInt(j.b, int64(ev.Priority), 10)
	}
	j.plain("trace_type", ev.Type.String())
	if ev.Legacy {
		j.plain("source", "iptables-legacy")
		if ev.RuleNumber != 0 {
			j.Uint("rule_number", uint64(ev.RuleNumber))
		}
	}
	if ev.Handle != 0 {
		j.Uint("handle", ev.Handle)
	}
	j.Str("rule", ev.Rule)
	if ev.IptablesRule != "" {
		j.Str("iptables_rule", ev.IptablesRule)
	}
	if v, ok := ev.Outcome(); ok {
		j.plain("verdict", v.String())
	}
	if ev.JumpTarget != "" {
		j.Str("jump_target", ev.JumpTarget)
	}
	j.Str("iif", ev.IIFName)
	j.Str("oif", ev.OIFName)
	if ev.Mark != 0 {
		j.Hex("mark", uint64(ev.Mark))
	}
	if ev.HasCT {
		j.Str("ct_state", nflog.CTStateString(ev.CTState))
		j.Uint("ct_id", uint64(ev.CTID))
		j.plain("ct_direction", ctDirection(ev.CTDirection))
	}
	if f, ok := ev.Snapshot(); ok {
		p.writeLayers(p.dec().Decode(f))
	}
	j.close('}')
	j.b = append(j.b, '\n')
	_, err := p.w.Write(j.b)
	return err
}

func ctDirection(d uint8) string {
	if d == 1 {
		return "reply"
	}
	return "original"
}

// Trace writes one line: time, namespace, id, where (family table chain,
// hook and priority), the rule and its verdict, interfaces, mark,
// conntrack state, and the packet when the event carries its headers.
func (t *Text) Trace(ev *decode.TraceEvent) error {
	s := textScratch.Get().(*Text)
	s.w, s.loc = t.w, t.loc
	err := s.trace(ev)
	s.w, s.loc = nil, nil
	textScratch.Put(s)
	return err
}

func (t *Text) trace(ev *decode.TraceEvent) error {
	b := ev.Time.In(t.loc).AppendFormat(t.b[:0], "15:04:05.000000")
	if ev.Netns != "" {
		b = append(append(b, ' '), ev.Netns...)
	}
	b = append(b, " trace "...)
	b = append(b, ev.IDString()...)
	if ev.Legacy {
		b = append(b, " iptables-legacy"...)
	}
	b = append(append(b, ' '), nflog.FamilyName(ev.Family)...)
	b = append(append(b, ' '), ev.Table...)
	b = append(append(b, ' '), ev.Chain...)
	if ev.Hook != "" {
		b = append(append(b, " ("...), ev.Hook...)
		if ev.HasPriority {
			b = strconv.AppendInt(append(b, " prio "...), int64(ev.Priority), 10)
		}
		b = append(b, ')')
	}
	b = append(append(b, ' '), ev.Type.String()...)
	if ev.Handle != 0 {
		b = strconv.AppendUint(append(b, " #"...), ev.Handle, 10)
	}
	if ev.RuleNumber != 0 {
		b = strconv.AppendInt(append(b, " num "...), int64(ev.RuleNumber), 10)
	}
	switch {
	case ev.IptablesRule != "":
		b = append(append(b, ' '), ev.IptablesRule...)
	case ev.Rule != "":
		b = append(append(b, ' '), ev.Rule...)
	}
	if v, ok := ev.Outcome(); ok {
		b = append(append(b, " => "...), v.String()...)
		if ev.JumpTarget != "" {
			b = append(append(b, ' '), ev.JumpTarget...)
		}
	}
	if ev.IIFName != "" {
		b = append(append(b, " iif "...), ev.IIFName...)
	}
	if ev.OIFName != "" {
		b = append(append(b, " oif "...), ev.OIFName...)
	}
	if ev.Mark != 0 {
		b = decode.AppendHex(append(b, " mark "...), uint64(ev.Mark))
	}
	if ev.HasCT {
		b = append(append(b, " ct "...), nflog.CTStateString(ev.CTState)...)
	}
	if f, ok := ev.Snapshot(); ok {
		b = append(b, " | "...)
		b = t.dec().Decode(f).AppendSummary(b)
	}
	b = append(b, '\n')
	t.b = b
	_, err := t.w.Write(b)
	return err
}
