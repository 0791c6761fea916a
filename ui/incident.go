package ui

import (
	"fmt"
	"time"

	"github.com/gopacket/gopacket"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
)

// IncidentWriter writes a recorded incident into a pcapng file: the
// frames, and beside them what the journeys are built from that frames do
// not hold, each as a hooktrace custom block (capture.WriteCustom) in
// decode's record encoding: trace events, kernel drops, losses, the
// names of the interface indexes NFLOG messages and drops carry, and
// ruleset snapshots. `hooktrace --trace -w` records through it, and
// `hooktrace explain --save` and the terminal UI save a journey through
// it; `hooktrace -r` reads them back (decode.Recording).
//
// An IncidentWriter is not safe for concurrent use.
type IncidentWriter struct {
	w *capture.PcapngWriter
	// ifname names an interface index of a namespace; nil leaves indexes
	// unnamed.
	ifname func(netns string, index uint32) string
	buf    []byte
	// named holds the name written last for each interface index asked
	// for ("" while it has none): a name that changes (an interface
	// renamed, an index reused) is written again.
	named map[incidentIface]string
}

type incidentIface struct {
	netns string
	index uint32
}

// NewIncidentWriter writes into w; ifname (may be nil) names the
// interface indexes the records need.
func NewIncidentWriter(w *capture.PcapngWriter, ifname func(netns string, index uint32) string) *IncidentWriter {
	return &IncidentWriter{w: w, ifname: ifname, named: map[incidentIface]string{}}
}

func (iw *IncidentWriter) write(kind capture.CustomKind, at time.Time, netns string, enc func([]byte) []byte) error {
	iw.buf = enc(iw.buf[:0])
	return iw.w.WriteCustom(kind, at, netns, iw.buf)
}

// Frame writes a frame, after the names of the interfaces it names.
func (iw *IncidentWriter) Frame(f *capture.Frame) error {
	if err := iw.Names(f); err != nil {
		return err
	}
	return iw.w.WritePacket(*f)
}

// Names writes the names of the interfaces a frame names, those not
// written yet: its own index (pcapng keeps only the name), and an NFLOG
// message's input and output devices. Call it before the frame is
// written, so that the names come first in the file.
func (iw *IncidentWriter) Names(f *capture.Frame) error {
	if f.Ifindex != 0 && f.Iface != "" {
		if err := iw.Interface(f.Netns, uint32(f.Ifindex), f.Iface, f.Time); err != nil {
			return err
		}
	}
	if f.LinkType != capture.LinkTypeNFLOG {
		return nil
	}
	var n decode.NFLOG
	n.DecodeFromBytes(f.Data, gopacket.NilDecodeFeedback) // what it read before an error is used
	if err := iw.index(f.Netns, n.Indev, f.Time); err != nil {
		return err
	}
	return iw.index(f.Netns, n.Outdev, f.Time)
}

// index writes the name of an interface index, as ifname gives it now,
// unless it was written already.
func (iw *IncidentWriter) index(netns string, index uint32, at time.Time) error {
	if index == 0 || iw.ifname == nil {
		return nil
	}
	return iw.Interface(netns, index, iw.ifname(netns, index), at)
}

// Interface writes an interface index's name unless it was the last
// written for that index. A replay names the index so from this record
// on (decode.Recording): the records before keep the name before. An
// empty name (the index is not known now) changes nothing.
func (iw *IncidentWriter) Interface(netns string, index uint32, name string, at time.Time) error {
	k := incidentIface{netns, index}
	if last, ok := iw.named[k]; ok && (last == name || name == "") {
		return nil
	}
	iw.named[k] = name
	if name == "" {
		return nil
	}
	n := decode.InterfaceName{Netns: netns, Index: index, Name: name}
	return iw.write(capture.CustomInterface, at, netns, func(b []byte) []byte { return decode.AppendInterfaceRecord(b, &n) })
}

// Trace writes a trace event.
func (iw *IncidentWriter) Trace(ev *decode.TraceEvent) error {
	return iw.write(capture.CustomTrace, ev.Time, ev.Netns, func(b []byte) []byte { return decode.AppendTraceRecord(b, ev) })
}

// Drop writes a kernel drop, after the name of its interface.
func (iw *IncidentWriter) Drop(d *decode.KernelDrop) error {
	if err := iw.index(d.Netns, d.Ifindex, d.Time); err != nil {
		return err
	}
	return iw.write(capture.CustomDrop, d.Time, d.Netns, func(b []byte) []byte { return decode.AppendDropRecord(b, d) })
}

// Loss writes that events were lost.
func (iw *IncidentWriter) Loss(l *decode.LossNotice) error {
	return iw.write(capture.CustomLoss, l.Time, l.Netns, func(b []byte) []byte { return decode.AppendLossRecord(b, l) })
}

// Recorded writes what a record held: a trace event, a kernel drop or a
// loss notice (nothing for none).
func (iw *IncidentWriter) Recorded(r decode.Recorded) error {
	switch {
	case r.Trace != nil:
		return iw.Trace(r.Trace)
	case r.Drop != nil:
		return iw.Drop(r.Drop)
	case r.Loss != nil:
		return iw.Loss(r.Loss)
	}
	return nil
}

// Ruleset writes a namespace's ruleset snapshot.
func (iw *IncidentWriter) Ruleset(s *decode.RulesetSnapshot) error {
	return iw.write(capture.CustomRuleset, s.Time, s.Netns, func(b []byte) []byte { return decode.AppendRulesetRecord(b, s) })
}

// JourneyRecord is one record a journey was built from: a frame, a trace
// event or a kernel drop.
type JourneyRecord struct {
	Frame *capture.Frame
	Trace *decode.TraceEvent
	Drop  *decode.KernelDrop
}

// Journey writes the records a journey was built from, in the order the
// journey builder took them (so that a replay builds the same journey),
// and, for a journey marked incomplete, a loss notice at its end.
func (iw *IncidentWriter) Journey(j *decode.Journey, recs []JourneyRecord) error {
	for _, r := range recs {
		var err error
		switch {
		case r.Frame != nil:
			err = iw.Frame(r.Frame)
		case r.Trace != nil:
			err = iw.Trace(r.Trace)
		case r.Drop != nil:
			err = iw.Drop(r.Drop)
		}
		if err != nil {
			return fmt.Errorf("write journey %d: %w", j.ID, err)
		}
	}
	if j.Incomplete {
		l := decode.LossNotice{Time: j.Last, Cause: "incomplete", Netns: ""}
		if err := iw.Loss(&l); err != nil {
			return fmt.Errorf("write journey %d: %w", j.ID, err)
		}
	}
	return nil
}
