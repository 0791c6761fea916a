package tui

import (
	"sync/atomic"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
)

// Record is one input of FeedRecords, in the order its source saw them:
// a captured frame, or something that joins the frames' journeys. One
// field is set.
type Record struct {
	// Frame is a captured packet; it and its Data are valid until the
	// next NextRecord, as capture.Source's frames are.
	Frame *capture.Frame
	Trace *decode.TraceEvent // an nf_tables or iptables-legacy trace event
	Drop  *decode.KernelDrop // a packet the kernel dropped
	Loss  *decode.LossNotice // events were lost: journeys open then are incomplete
	// Clock says that the source's time reached Clock with nothing else
	// to deliver (a live source, on a tick): journeys idle since then
	// close, and what FeedRecords holds goes to the model.
	Clock time.Time
}

// EncodedRecord is a record other than a frame that the journeys took
// (a trace event, a kernel drop, a loss notice), as a Batch hands it to
// the model: in decode's record encoding, as a recording holds it.
type EncodedRecord struct {
	Kind   capture.CustomKind // capture.CustomTrace, CustomDrop or CustomLoss
	Time   time.Time
	Frames uint32 // frames the journeys took before it
	Data   []byte // belongs to the batch
}

// recordEncoder encodes a batch's records into shared buffers.
type recordEncoder struct{ buf []byte }

// add appends the encoding of r, taken after frames frames, to out;
// records that are not kept (a clock tick) are left out.
func (e *recordEncoder) add(out []EncodedRecord, r Record, frames uint32) []EncodedRecord {
	if r.Trace == nil && r.Drop == nil && r.Loss == nil {
		return out
	}
	if e.buf == nil {
		e.buf = make([]byte, 0, 64<<10)
	}
	o := len(e.buf)
	er := EncodedRecord{Frames: frames}
	switch {
	case r.Trace != nil:
		er.Kind, er.Time = capture.CustomTrace, r.Trace.Time
		e.buf = decode.AppendTraceRecord(e.buf, r.Trace)
	case r.Drop != nil:
		er.Kind, er.Time = capture.CustomDrop, r.Drop.Time
		e.buf = decode.AppendDropRecord(e.buf, r.Drop)
	case r.Loss != nil:
		er.Kind, er.Time = capture.CustomLoss, r.Loss.Time
		e.buf = decode.AppendLossRecord(e.buf, r.Loss)
	}
	// A buffer that grew was copied: the records before keep the old one.
	er.Data = e.buf[o:len(e.buf):len(e.buf)]
	return append(out, er)
}

// reset starts buffers anew for the next batch.
func (e *recordEncoder) reset() { e.buf = nil }

// RecordSource delivers records until NextRecord returns io.EOF.
type RecordSource interface {
	NextRecord() (Record, error)
}

// FeedStats counts what FeedRecords did; it may be read while it runs.
type FeedStats struct {
	Evicted   atomic.Uint64 // journeys closed early to bound memory
	Unmatched atomic.Uint64 // records that joined no journey
}

// take gives the journey builder a record other than a frame. It says
// whether the batch being filled should go now: the source's clock
// ticked.
func (jt *journeyTracker) take(r Record) bool {
	if !r.Clock.IsZero() {
		jt.b.Advance(r.Clock)
		return true
	}
	jt.b.AddRecorded(decode.Recorded{Trace: r.Trace, Drop: r.Drop, Loss: r.Loss})
	return false
}

// count publishes the builder's counters.
func (jt *journeyTracker) count(st *FeedStats) {
	if st == nil {
		return
	}
	s := jt.b.Stats()
	st.Evicted.Store(s.Evicted)
	st.Unmatched.Store(s.Unmatched)
}

// beyondFrames says whether a journey holds what its frames alone do not
// give (rules, verdicts, kernel drops, a loss, the numbers of the trace
// events and drops that joined it, to save them): rebuilding it from its
// rows would lose that, so the model keeps it whole. Route steps alone do
// not count: live, every journey may have them, and keeping every journey
// of a flood whole would cost a few kilobytes a packet; a journey rebuilt
// from its frames shows no route steps.
func beyondFrames(j *decode.Journey) bool {
	if j.Incomplete || len(j.Traces) > 0 || len(j.Drops) > 0 {
		return true
	}
	for _, st := range j.Steps {
		switch st.Kind {
		case decode.StepRule, decode.StepPolicy, decode.StepDrop:
			return true
		}
	}
	return false
}

// shedWatch turns the source's count of shed records into Batch.Shed,
// and marks the journeys open when records were shed incomplete.
type shedWatch struct {
	count func() uint64 // nil: the source sheds nothing
	seen  uint64
	at    time.Time // when records were last found shed
}

// take returns the records shed since the last call.
func (w *shedWatch) take(jt *journeyTracker) uint64 {
	if w.count == nil {
		return 0
	}
	n := w.count()
	if n <= w.seen {
		return 0
	}
	d := n - w.seen
	w.seen, w.at = n, time.Now()
	jt.b.MarkLoss("", w.at) // only live sources shed: their records' times are the wall clock's
	return d
}
