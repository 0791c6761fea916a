package tui

import (
	"context"
	"errors"
	"io"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
)

// Batch is a group of frames, and of journeys that closed, that a source
// hands the model. The model drains batches on a tick, never one message
// per packet.
type Batch struct {
	// Frames are the next packets, numbered on from the previous batch;
	// their Data belong to the batch.
	Frames []capture.Frame
	// VNIs holds, per frame, the VNI of its outermost VXLAN or Geneve
	// header (0: none). In a batch without Frames (the journeys of frames
	// an indexer listed before), they are those of the frames numbered
	// from First.
	VNIs  []uint32
	First int
	// Ifindexes, in a batch without Frames, holds the interface index of
	// each frame numbered from First that the indexer listed without one
	// (a recording names indexes in its records); nil when none has one.
	Ifindexes []int32
	// Journeys closed since the previous batch, with the packet numbers
	// (0-based) that joined each.
	Journeys []JourneyInfo
	// Records are the trace events, kernel drops and losses the journeys
	// took since the previous batch, in the order taken: the model keeps
	// them (encoded) to save them with the frames, and numbers trace
	// events and drops from 0 as the journey builder does.
	Records []EncodedRecord
	// Offsets, when set, say per frame where its captured bytes start in
	// the capture file the model reads again (Options.File), and CapLens
	// how many there are; the frames' Data are then nil.
	Offsets []int64
	CapLens []uint32
	// Listed is set on an indexer's last batch: every frame is listed,
	// journeys may still come.
	Listed bool
	// Read and Total measure progress through a file in bytes; Total is 0
	// when unknown.
	Read, Total int64
	// Shed counts frames the source dropped since the previous batch
	// because the model lagged.
	Shed uint64
	// Done is set on the last batch; Err says why the source ended early.
	Done bool
	Err  error
}

// JourneyInfo is what the list needs of a closed journey.
type JourneyInfo struct {
	ID      uint64
	Outcome decode.Outcome
	Rows    []uint32 // 0-based packet numbers of the frames that joined it
	// Attrs are the journey's filterable attributes: "netns=NS",
	// "chain=CHAIN", "hook=HOOK".
	Attrs []string
	// Journey, when set, is kept and shown as it is. A source whose
	// journeys hold more than its frames (trace events, kernel drops)
	// sets it; otherwise the journey is rebuilt from its frames when
	// shown.
	Journey *decode.Journey
}

// FeedOptions configure Feed.
type FeedOptions struct {
	// Progress reports how far the source has read, in bytes, and the
	// total (0: unknown). Nil: no progress.
	Progress func() (read, total int64)
	// Offset, if set, gives where the bytes of the frame the source
	// returned last start in the capture file (capture.File.FrameOffset):
	// batches then carry offsets instead of copies of the bytes.
	Offset func() int64
	// Index, if set, is a second reader of the same capture file, and
	// Offset then its FrameOffset. A goroutine reads it ahead to list
	// every frame (by its offset) while journeys are built from src on
	// another core, so the list is whole long before the journeys are.
	Index capture.Source
	// Shed, if set, counts the records a live source shed so far because
	// FeedRecords lagged: batches carry the increase, and the journeys open then
	// are marked incomplete.
	Shed func() uint64
	// Stats, if set, is kept up to date with the journey builder's
	// counters.
	Stats *FeedStats
	// MaxFrames and MaxDelay bound a batch (defaults 8192 and 50 ms).
	MaxFrames int
	MaxDelay  time.Duration
	// Journeys configures the journey builder. MaxOpen defaults to 1024
	// here, not the builder's 65536, to bound the UI's memory (an open
	// journey holds up to a few kilobytes): at 100,000 packets/s a journey
	// is then closed about 10 ms after it began (the oldest goes first),
	// long after a packet's sightings on its path (microseconds apart) and
	// its trace events; the status bar counts these closings.
	Journeys decode.JourneyOptions
}

// FeedRecords reads src until it ends or ctx is done, decodes every
// frame once to build journeys with the source's trace events, kernel
// drops and losses, and sends batches to out; it blocks while out is full
// (a file can wait; a live source sheds, and counts in opt.Shed). The last
// batch has Done set. FeedRecords does not close src or opt.Index, and
// returns only once it and its indexer stopped reading them.
func FeedRecords(ctx context.Context, src RecordSource, out chan<- Batch, opt FeedOptions) {
	if opt.MaxFrames <= 0 {
		opt.MaxFrames = 8192
	}
	if opt.MaxDelay <= 0 {
		opt.MaxDelay = 50 * time.Millisecond
	}
	if opt.Journeys.MaxOpen <= 0 {
		opt.Journeys.MaxOpen = 1024
	}
	jt := newJourneyTracker(opt.Journeys)
	// The bytes of a batch's frames are copied into buffers of up to
	// 1 MiB, smaller for small batches (a paced replay sends frames one
	// at a time).
	bufSize := min(1<<20, opt.MaxFrames*2048)
	var ix *indexer
	if opt.Index != nil {
		ix = newIndexer()
		go ix.run(ctx, opt.Index, out, opt)
		defer ix.wait(-1) // the index is its opener's to close once this returns
	}
	var b Batch
	var buf []byte
	var enc recordEncoder
	start := time.Now()
	shed := shedWatch{count: opt.Shed}
	send := func(done bool, err error) bool {
		if b.Shed = shed.take(jt); b.Shed > 0 {
			l := decode.LossNotice{Time: shed.at, Cause: "shed", Count: shed.seen} // as the recorder writes it
			b.Records = enc.add(b.Records, Record{Loss: &l}, jt.n)
		}
		b.Journeys = append(b.Journeys, jt.closed()...)
		if done {
			b.Journeys = append(b.Journeys, jt.flush()...)
		}
		jt.count(opt.Stats)
		if ix != nil {
			// Journeys name rows by number: the indexer's batches listing
			// them go first.
			if done {
				ix.wait(-1)
			} else {
				ix.wait(int(jt.n))
			}
		}
		if opt.Progress != nil {
			b.Read, b.Total = opt.Progress()
		}
		b.Done, b.Err = done, err
		select {
		case out <- b:
		case <-ctx.Done():
			return false
		}
		b, buf, start = Batch{First: int(jt.n)}, nil, time.Now()
		enc.reset()
		return true
	}
	for {
		rec, err := src.NextRecord()
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				err = nil
			}
			send(true, err)
			return
		}
		if rec.Frame == nil {
			b.Records = enc.add(b.Records, rec, jt.n)
			if jt.take(rec) && !send(false, nil) {
				return
			}
			continue
		}
		f := *rec.Frame
		vni := jt.add(f)
		b.VNIs = append(b.VNIs, vni)
		switch {
		case ix != nil:
			// The indexer lists the frame, without the index a recording
			// gives its interface.
			if f.Ifindex != 0 && b.Ifindexes == nil {
				b.Ifindexes = make([]int32, len(b.VNIs)-1, cap(b.VNIs))
			}
			if b.Ifindexes != nil {
				b.Ifindexes = append(b.Ifindexes, int32(f.Ifindex))
			}
		case opt.Offset != nil:
			b.Offsets = append(b.Offsets, opt.Offset())
			b.CapLens = append(b.CapLens, uint32(len(f.Data)))
			f.Data = nil
			b.Frames = append(b.Frames, f)
		default:
			if buf == nil {
				buf = make([]byte, 0, bufSize)
			}
			if len(buf)+len(f.Data) > cap(buf) {
				buf = make([]byte, 0, max(bufSize, len(f.Data)))
			}
			o := len(buf)
			buf = append(buf, f.Data...)
			f.Data = buf[o:len(buf):len(buf)]
			b.Frames = append(b.Frames, f)
		}
		if n := len(b.VNIs); n >= opt.MaxFrames || n&255 == 0 && time.Since(start) > opt.MaxDelay {
			if !send(false, nil) {
				return
			}
		}
	}
}

// indexer lists the frames of a second reader of the capture file, by
// offset, ahead of the journeys.
type indexer struct {
	mu   sync.Mutex
	cond *sync.Cond
	sent int // frames in batches sent
	done bool
}

func newIndexer() *indexer {
	ix := &indexer{}
	ix.cond = sync.NewCond(&ix.mu)
	return ix
}

// run reads src to its end (an error there is the journey reader's to
// report: it reads the same file) and sends batches of frames.
func (ix *indexer) run(ctx context.Context, src capture.Source, out chan<- Batch, opt FeedOptions) {
	defer func() {
		ix.mu.Lock()
		ix.done = true
		ix.cond.Broadcast()
		ix.mu.Unlock()
	}()
	var b Batch
	start := time.Now()
	send := func() bool {
		n := len(b.Frames)
		if n == 0 && !b.Listed {
			return true
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return false
		}
		ix.mu.Lock()
		ix.sent += n
		ix.cond.Broadcast()
		ix.mu.Unlock()
		b, start = Batch{First: ix.sent}, time.Now()
		return true
	}
	for {
		f, err := src.Next()
		if err != nil {
			b.Listed = true
			send()
			return
		}
		b.Offsets = append(b.Offsets, opt.Offset())
		b.CapLens = append(b.CapLens, uint32(len(f.Data)))
		f.Data = nil
		b.Frames = append(b.Frames, f)
		b.VNIs = append(b.VNIs, 0)
		if n := len(b.Frames); n >= opt.MaxFrames || n&255 == 0 && time.Since(start) > opt.MaxDelay {
			if !send() {
				return
			}
		}
	}
}

// wait blocks until n frames were sent (n < 0: all of them) or the
// indexer ended.
func (ix *indexer) wait(n int) {
	ix.mu.Lock()
	for !ix.done && (n < 0 || ix.sent < n) {
		ix.cond.Wait()
	}
	ix.mu.Unlock()
}

// journeyTracker runs the journey builder over frames and gives the
// journeys it closes with the packet numbers (rows) that joined them: the
// builder numbers the packets it takes, and it takes every frame.
type journeyTracker struct {
	b     *decode.JourneyBuilder
	dec   *decode.Decoder
	n     uint32 // frames taken
	names attrNames
}

func newJourneyTracker(opt decode.JourneyOptions) *journeyTracker {
	return &journeyTracker{b: decode.NewJourneyBuilder(opt), dec: decode.NewDecoder(), names: attrNames{}}
}

// add feeds one frame and returns its outermost VNI.
func (jt *journeyTracker) add(f capture.Frame) uint32 {
	p := jt.dec.Decode(f)
	jt.b.AddPacket(p)
	jt.n++
	return packetVNI(p)
}

func (jt *journeyTracker) closed() []JourneyInfo { return jt.info(jt.b.Closed()) }
func (jt *journeyTracker) flush() []JourneyInfo  { return jt.info(jt.b.Flush()) }

func (jt *journeyTracker) info(js []*decode.Journey) []JourneyInfo {
	out := make([]JourneyInfo, 0, len(js))
	for _, j := range js {
		ji := JourneyInfo{ID: j.ID, Outcome: j.Outcome, Attrs: journeyAttrs(j, jt.names), Rows: make([]uint32, len(j.Packets))}
		if beyondFrames(j) {
			ji.Journey = j
		}
		for i, n := range j.Packets {
			ji.Rows[i] = uint32(n)
		}
		out = append(out, ji)
	}
	return out
}

// journeyAttrs lists what the display filter can ask of a journey.
func journeyAttrs(j *decode.Journey, names attrNames) []string {
	out := make([]string, 0, 4)
	add := func(kind, val string) {
		s := names.name(kind, val)
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, st := range j.Steps {
		add("netns=", st.Netns)
		if st.Hook != "" {
			add("hook=", st.Hook)
		}
		if st.Chain != "" {
			add("chain=", st.Chain)
		}
		if st.VNI != 0 {
			add("vni=", uitoa(uint64(st.VNI)))
		}
	}
	if d := j.Drop; d != nil && d.Reason != "" {
		add("reason=", d.Reason)
	}
	sort.Strings(out)
	return out
}

// attrNames keeps the attribute strings made so far ("netns=" + name),
// so that journeys after the first share them instead of making each.
type attrNames map[[2]string]string

func (a attrNames) name(kind, val string) string {
	k := [2]string{kind, val}
	s, ok := a[k]
	if !ok {
		if len(a) > 1<<16 {
			clear(a) // names without end: a bound, not a leak
		}
		s = kind + val
		a[k] = s
	}
	return s
}

// packetVNI returns the VNI of the packet's outermost VXLAN or Geneve
// header, 0 for none.
func packetVNI(p *decode.Packet) uint32 {
	for i := range p.Layers {
		l := &p.Layers[i]
		if l.Proto != decode.ProtoVXLAN && l.Proto != decode.ProtoGeneve {
			continue
		}
		var v vniWriter
		l.WriteFields(&v)
		return v.vni
	}
	return 0
}

// vniWriter picks the "vni" field out of a layer.
type vniWriter struct {
	nopWriter
	vni uint32
}

func (v *vniWriter) Uint(key string, val uint64) {
	if key == "vni" {
		v.vni = uint32(val)
	}
}

// nopWriter ignores every field.
type nopWriter struct{}

func (nopWriter) Str(string, string)  {}
func (nopWriter) Text(string, []byte) {}
func (nopWriter) Uint(string, uint64) {}
func (nopWriter) Hex(string, uint64)  {}
func (nopWriter) Bool(string, bool)   {}
func (nopWriter) IP(string, []byte)   {}
func (nopWriter) MAC(string, []byte)  {}
func (nopWriter) BeginList(string)    {}
func (nopWriter) EndList()            {}
func (nopWriter) BeginObject()        {}
func (nopWriter) EndObject()          {}
