package main

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/nflog"
	"github.com/hooktrace/hooktrace/ui"
)

// recorder writes, beside the frames of a `--trace -w FILE` run, what the
// journeys were built from that the frames do not hold: each trace event,
// kernel drop and loss the builder took, the names of the interface
// indexes NFLOG messages and drops carry, and each traced namespace's
// ruleset at the start, through a ui.IncidentWriter (pcapng custom
// blocks in decode's record encoding), so that `hooktrace -r FILE`
// rebuilds the same journeys. `explain --save` writes a journey's records
// through one too.
type recorder struct {
	w    *capture.PcapngWriter
	warn func(error)

	mu     sync.Mutex // the fields below; records come from several goroutines
	iw     *ui.IncidentWriter
	failed bool
}

// newRecorder records into w; ifname names an interface index of a
// namespace as the capture knows it.
func newRecorder(w *capture.PcapngWriter, ifname func(netns string, index int) string, warn func(error)) *recorder {
	names := func(netns string, index uint32) string { return ifname(netns, int(index)) }
	return &recorder{w: w, warn: warn, iw: ui.NewIncidentWriter(w, names)}
}

// recordIncident makes the journeys record what they take into w (a
// no-op without -w), after writing the rulesets of the traced namespaces.
// ifname names an interface index of a namespace as the capture knows it.
func recordIncident(j *journeys, w *capture.PcapngWriter, refs []nflog.NetnsRef, ifname func(netns string, index int) string, warn func(error)) {
	if w == nil || j == nil {
		return
	}
	r := newRecorder(w, ifname, warn)
	for _, ref := range refs {
		r.ruleset(ref)
	}
	j.rec.Store(r)
}

// write writes a record with fn; the first failure is told once, and
// recording stops (the frames are still written).
func (r *recorder) write(fn func(*ui.IncidentWriter) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failed {
		return
	}
	if err := fn(r.iw); err != nil {
		r.failed = true
		r.warn(fmt.Errorf("recording of trace events stopped: %w", err))
	}
}

// trace records a trace event.
func (r *recorder) trace(ev *decode.TraceEvent) {
	r.write(func(iw *ui.IncidentWriter) error { return iw.Trace(ev) })
}

// drop records a kernel drop, after the name of its interface.
func (r *recorder) drop(d *nflog.KernelDrop) {
	r.write(func(iw *ui.IncidentWriter) error { return iw.Drop(d) })
}

// loss records that events were lost.
func (r *recorder) loss(l decode.LossNotice) {
	r.write(func(iw *ui.IncidentWriter) error { return iw.Loss(&l) })
}

// frame records the names of the interfaces a frame names. It is called
// before the frame is queued for writing, so the names come first in the
// file.
func (r *recorder) frame(f *capture.Frame) {
	r.write(func(iw *ui.IncidentWriter) error { return iw.Names(f) })
}

// ruleset records a namespace's chains and rules, as nft lists them. A
// namespace whose ruleset cannot be listed is left out with a warning:
// the trace events carry their rules' texts anyway.
func (r *recorder) ruleset(ref nflog.NetnsRef) {
	rs, err := nflog.LoadRuleset(ref.Path)
	if err != nil {
		r.warn(fmt.Errorf("ruleset snapshot left out of the recording: %w", err))
		return
	}
	s := decode.RulesetSnapshot{Time: time.Now(), Netns: ref.Name, Text: rulesetText(rs)}
	r.write(func(iw *ui.IncidentWriter) error { return iw.Ruleset(&s) })
}

// rulesetText lists a ruleset in nft's syntax with rule handles, without
// hooktrace's own table.
func rulesetText(rs *nflog.Ruleset) string {
	chains := rs.Chains()
	sort.SliceStable(chains, func(i, j int) bool {
		a, b := chains[i], chains[j]
		if a.Family != b.Family {
			return a.Family < b.Family
		}
		return a.Table < b.Table
	})
	var sb strings.Builder
	table := ""
	for _, c := range chains {
		if c.Table == nflog.TraceTable {
			continue
		}
		if t := c.Family + " " + c.Table; t != table {
			if table != "" {
				sb.WriteString("}\n")
			}
			table = t
			fmt.Fprintf(&sb, "table %s {\n", t)
		}
		fmt.Fprintf(&sb, "\tchain %s { # handle %d\n", c.Name, c.Handle)
		if c.Base {
			fmt.Fprintf(&sb, "\t\ttype %s hook %s", c.Type, c.Hook)
			if len(c.Devices) > 0 {
				fmt.Fprintf(&sb, " devices = { %s }", strings.Join(c.Devices, ", "))
			}
			fmt.Fprintf(&sb, " priority %d; policy %s;\n", c.Priority, c.Policy)
		}
		for _, rule := range rs.ChainRules(c.Family, c.Table, c.Name) {
			fmt.Fprintf(&sb, "\t\t%s # handle %d\n", rule.Text, rule.Handle)
		}
		sb.WriteString("\t}\n")
	}
	if table != "" {
		sb.WriteString("}\n")
	}
	return sb.String()
}

// Causes of loss notices.
const (
	lossShed    = "shed"    // hooktrace shed records: the builder lagged
	lossENOBUFS = "enobufs" // the kernel could not queue trace events
)

// record writes a trace event or kernel drop the builder takes, when
// recording.
func (j *journeys) record(in journeyInput) {
	r := j.rec.Load()
	if r == nil {
		return
	}
	switch {
	case in.Trace != nil:
		r.trace(in.Trace)
	case in.Drop != nil:
		r.drop(in.Drop)
	}
}

// markLoss marks the journeys open in the namespace incomplete, and
// records the loss when recording.
func (j *journeys) markLoss(l decode.LossNotice) {
	if r := j.rec.Load(); r != nil {
		r.loss(l)
	}
	j.b.MarkLoss(l.Netns, l.Time)
}

// flushRecording flushes the recording on the journeys' tick, so that a
// run killed with SIGKILL leaves a file readable up to the last tick.
func (j *journeys) flushRecording() {
	if r := j.rec.Load(); r != nil {
		r.mu.Lock()
		failed := r.failed
		r.mu.Unlock()
		if !failed {
			r.w.Flush() // an error shows again, and is reported, when the file is closed
		}
	}
}
