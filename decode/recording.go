package decode

import (
	"fmt"

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
	var out Recorded
	var err error
	switch kind {
	case capture.CustomTrace:
		var ev TraceEvent
		if ev, err = ParseTraceRecord(payload); err == nil {
			out.Trace = &ev
		}
	case capture.CustomDrop:
		var kd KernelDrop
		if kd, err = ParseDropRecord(payload); err == nil {
			out.Drop = &kd
		}
	case capture.CustomLoss:
		var l LossNotice
		if l, err = ParseLossRecord(payload); err == nil {
			out.Loss = &l
		}
	case capture.CustomInterface:
		var n InterfaceName
		if n, err = ParseInterfaceRecord(payload); err == nil {
			r.names[recIface{n.Netns, n.Index}] = n.Name
			r.indexes[recIfaceName{n.Netns, n.Name}] = n.Index
		}
	case capture.CustomRuleset:
		var s RulesetSnapshot
		if s, err = ParseRulesetRecord(payload); err == nil {
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
