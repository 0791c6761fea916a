package main

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/nflog"
	"github.com/hooktrace/hooktrace/ui"
)

// journeyBacklog bounds the records waiting for the journey builder; when
// it lags further, records are shed, counted, and the journeys open then
// marked incomplete.
const journeyBacklog = 1 << 16

// journeyLag is how far behind the wall clock the builder's time is kept
// when nothing arrives: frames reach it after the capture's reorder
// window, trace events as the kernel sends them.
const journeyLag = 500 * time.Millisecond

// journeys builds one journey per traced packet from the packets, trace
// events and kernel drops of a live run, in one goroutine, and hands
// each closed journey to emit.
type journeys struct {
	in   chan journeyInput
	emit func(*decode.Journey)
	b    *decode.JourneyBuilder
	shed atomic.Uint64
	wg   sync.WaitGroup
	once sync.Once
	stop chan struct{}
	// losses, when set, returns each traced namespace's count of the
	// kernel's ENOBUFS reports: a rise marks the journeys open then in
	// that namespace incomplete.
	losses func() map[string]uint64
	// rec, when set (--trace -w), records what the builder takes.
	rec atomic.Pointer[recorder]
	// log, when set (explain --save), keeps what the builder takes.
	log atomic.Pointer[inputLog]
}

// journeyInput is one record for the builder.
type journeyInput struct {
	Frame *capture.Frame
	Trace *decode.TraceEvent
	Drop  *nflog.KernelDrop
}

func startJourneys(opt decode.JourneyOptions, losses func() map[string]uint64, emit func(*decode.Journey)) *journeys {
	j := &journeys{in: make(chan journeyInput, journeyBacklog), emit: emit, b: decode.NewJourneyBuilder(opt), stop: make(chan struct{}), losses: losses}
	j.wg.Add(1)
	go j.run()
	return j
}

func (j *journeys) run() {
	defer j.wg.Done()
	dec := decode.NewDecoder()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var shedSeen uint64
	lossSeen := map[string]uint64{}
	take := func(in journeyInput) {
		j.record(in)
		if l := j.log.Load(); l != nil {
			l.add(in)
		}
		switch {
		case in.Frame != nil:
			j.b.AddPacket(dec.Decode(*in.Frame))
		case in.Trace != nil:
			j.b.AddTrace(in.Trace)
		case in.Drop != nil:
			j.b.AddDrop(in.Drop)
		}
	}
	for {
		select {
		case in := <-j.in:
			take(in)
		case <-tick.C:
			if s := j.shed.Load(); s != shedSeen {
				shedSeen = s
				j.markLoss(decode.LossNotice{Time: time.Now(), Cause: lossShed, Count: s})
			}
			if j.losses != nil {
				for ns, n := range j.losses() {
					if n != lossSeen[ns] {
						lossSeen[ns] = n
						j.markLoss(decode.LossNotice{Time: time.Now(), Netns: ns, Cause: lossENOBUFS, Count: n})
					}
				}
			}
			j.b.Advance(time.Now().Add(-journeyLag))
			j.flushRecording()
		case <-j.stop:
			for {
				select {
				case in := <-j.in:
					take(in)
					continue
				default:
				}
				break
			}
			for _, jr := range j.b.Flush() {
				j.emit(jr)
			}
			return
		}
		for _, jr := range j.b.Closed() {
			j.emit(jr)
		}
	}
}

// send queues a record, or sheds it when the builder is too far behind.
func (j *journeys) send(in journeyInput) {
	select {
	case j.in <- in:
	default:
		j.shed.Add(1)
	}
}

// frame takes a captured frame (its bytes are copied).
func (j *journeys) frame(f capture.Frame) {
	if r := j.rec.Load(); r != nil {
		r.frame(&f)
	}
	f.Data = bytes.Clone(f.Data)
	j.send(journeyInput{Frame: &f})
}

// trace takes a trace event.
func (j *journeys) trace(ev *decode.TraceEvent) {
	c := *ev
	j.send(journeyInput{Trace: &c})
}

// drop takes a kernel drop.
func (j *journeys) drop(d nflog.KernelDrop) {
	j.send(journeyInput{Drop: &d})
}

// close closes every open journey, emits them, and stops.
func (j *journeys) close() {
	j.once.Do(func() { close(j.stop) })
	j.wg.Wait()
}

// stats returns the builder's counters (after close) and the records shed.
func (j *journeys) stats() (decode.JourneyStats, uint64) {
	return j.b.Stats(), j.shed.Load()
}

// traceTee prints trace events and gives them to the journeys.
type traceTee struct {
	print ui.TracePrinter // nil: not printed
	j     *journeys
}

func (t traceTee) Trace(ev *decode.TraceEvent) error {
	t.j.trace(ev)
	if t.print == nil {
		return nil
	}
	return t.print.Trace(ev)
}
