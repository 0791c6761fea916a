package decode

import (
	"fmt"
	"time"

	"github.com/hooktrace/hooktrace/capture"
)

// Recorded is what one hooktrace record of a recording gives the
// journeys: a trace event, a kernel drop or a loss notice, or nothing (an
// interface name or a ruleset snapshot, which the Recording keeps).
type Recorded struct {
	Trace *TraceEvent
	Drop  *KernelDrop
	Loss  *LossNotice
}

// Recording reads back, in file order, the hooktrace records a `--trace
// -w` run wrote beside the frames (pcapng custom blocks): it keeps the
// interface names and ruleset snapshots, and turns the other records into
// what a JourneyBuilder takes. Replay to text or NDJSON and the terminal
// UI both read recordings through it.
type Recording struct {
	names    map[recIface]string
	indexes  map[recIfaceName]uint32
	rulesets []RulesetSnapshot
}

type recIface struct {
	netns string
	index uint32
}

type recIfaceName struct{ netns, name string }

// NewRecording returns a Recording that has read nothing yet.
func NewRecording() *Recording {
	return &Recording{names: map[recIface]string{}, indexes: map[recIfaceName]uint32{}}
}

// Take decodes one hooktrace record. Interface names and rulesets are
// kept; trace events, drops and losses are returned. A record that cannot
// be decoded returns an error naming its kind, and changes nothing.
func (r *Recording) Take(kind capture.CustomKind, payload []byte) (Recorded, error) {
	return r.take(kind, payload, recFix{}, nil, nil)
}

// TakeRecord is Take for a record as a capture source read it: the time
// shift and namespace rename of a merge (capture.Merged) apply to what
// the record carries.
func (r *Recording) TakeRecord(c *capture.CustomRecord) (Recorded, error) {
	return r.take(c.Kind, c.Payload, recFix{shift: c.Shift, rename: c.Renamed, netns: c.Netns}, nil, nil)
}

// recFix is what a merge changed in a record's header, to change in its
// payload too.
type recFix struct {
	shift  time.Duration
	rename bool
	netns  string
}

func (f recFix) apply(t *time.Time, netns *string) {
	if f.shift != 0 && t != nil && !t.IsZero() {
		*t = t.Add(f.shift)
	}
	if f.rename {
		*netns = f.netns
	}
}

// ParseRecorded decodes a record that changes no Recording's state: a
// trace event, a kernel drop or a loss notice, with a merge's time shift
// and rename applied. ok is false for other kinds (interface names and
// rulesets: Recording.TakeRecord keeps them). It may run on any
// goroutine.
func ParseRecorded(c *capture.CustomRecord) (out Recorded, ok bool, err error) {
	return parseRecorded(c, nil, nil)
}

// RecordParser is ParseRecorded for a goroutine that parses many
// records: the strings records repeat (namespaces, tables, chains, rule
// texts, devices) are made once rather than for every record, and a
// trace event's or drop's header bytes point into the record's payload
// rather than being copies. The zero value is ready; it is for one
// goroutine.
type RecordParser struct {
	strs stringTable
}

// ParseInto is ParseRecorded decoding a trace event into ev (nil: a new
// one), which the result then points to: for a caller that reuses its
// events. What it returns points into c.Payload, which must stay as it
// is while that is used.
func (p *RecordParser) ParseInto(c *capture.CustomRecord, ev *TraceEvent) (out Recorded, ok bool, err error) {
	return parseRecorded(c, ev, &p.strs)
}

func parseRecorded(c *capture.CustomRecord, ev *TraceEvent, strs *stringTable) (out Recorded, ok bool, err error) {
	switch c.Kind {
	case capture.CustomTrace, capture.CustomDrop, capture.CustomLoss:
		out, err = (*Recording)(nil).take(c.Kind, c.Payload, recFix{shift: c.Shift, rename: c.Renamed, netns: c.Netns}, ev, strs)
		return out, true, err
	}
	return Recorded{}, false, nil
}

// take decodes a record; a trace event into ev when not nil; strings
// from strs when not nil (and byte strings into payload).
func (r *Recording) take(kind capture.CustomKind, payload []byte, fix recFix, ev *TraceEvent, strs *stringTable) (Recorded, error) {
	var out Recorded
	var err error
	switch kind {
	case capture.CustomTrace:
		if ev == nil {
			ev = new(TraceEvent)
		}
		if *ev, err = parseTraceRecord(payload, strs); err == nil {
			fix.apply(&ev.Time, &ev.Netns)
			out.Trace = ev
		}
	case capture.CustomDrop:
		var kd KernelDrop
		if kd, err = parseDropRecord(payload, strs); err == nil {
			fix.apply(&kd.Time, &kd.Netns)
			out.Drop = &kd
		}
	case capture.CustomLoss:
		var l LossNotice
		if l, err = parseLossRecord(payload, strs); err == nil {
			fix.apply(&l.Time, &l.Netns)
			out.Loss = &l
		}
	case capture.CustomInterface:
		var n InterfaceName
		if n, err = ParseInterfaceRecord(payload); err == nil {
			fix.apply(nil, &n.Netns)
			r.names[recIface{n.Netns, n.Index}] = n.Name
			r.indexes[recIfaceName{n.Netns, n.Name}] = n.Index
		}
	case capture.CustomRuleset:
		var s RulesetSnapshot
		if s, err = ParseRulesetRecord(payload); err == nil {
			fix.apply(&s.Time, &s.Netns)
			r.rulesets = append(r.rulesets, s)
		}
	default:
		err = fmt.Errorf("unknown record kind %d", kind)
	}
	if err != nil {
		return Recorded{}, fmt.Errorf("hooktrace %s record skipped: %w", kind, err)
	}
	return out, nil
}

// IfName names an interface index of a namespace as the recording named
// it ("" when it did not), for JourneyOptions.IfName.
func (r *Recording) IfName(netns string, index uint32) string {
	return r.names[recIface{netns, index}]
}

// FillIndex gives a frame the interface index recorded for its interface
// (pcapng keeps only the name).
func (r *Recording) FillIndex(f *capture.Frame) {
	if f.Ifindex == 0 && f.Iface != "" && len(r.indexes) > 0 {
		f.Ifindex = int(r.indexes[recIfaceName{f.Netns, f.Iface}])
	}
}

// Rulesets returns the ruleset snapshots read so far, in file order.
func (r *Recording) Rulesets() []RulesetSnapshot { return r.rulesets }
