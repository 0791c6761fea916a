package tui

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
)

// chunkSize is the size of the blocks frame bytes are kept in.
const chunkSize = 4 << 20

// row is what the list keeps of one packet: about 48 bytes, and where
// its captured bytes are: in the capture file (the store has a backing
// file), in the spool file or in a chunk of memory. Columns are decoded
// from the bytes only for the rows on screen.
type row struct {
	t       int64 // capture time, Unix nanoseconds
	pos     int64 // where the bytes are: an offset in the capture file, spooled or inMemory
	caplen  uint32
	wirelen uint32
	jid     uint32 // journey (index into store.journeys); 0: none yet
	vni     uint32 // VXLAN or Geneve VNI of the outermost tunnel; 0: none
	ifindex int32
	lt      capture.LinkType
	netns   uint16 // interned
	iface   uint16 // interned
	comment uint16 // interned
	dir     capture.Direction
}

// journeySum is what the list keeps of a journey, 24 bytes; the journey
// itself is rebuilt from its rows when it is shown, unless the source
// gave it whole (store.full).
type journeySum struct {
	id          uint64
	first, last uint32 // rows
	attrs       uint32 // interned attribute set: namespaces, hooks, chains
	outcome     uint8  // index into outcomeNames
}

// outcomeNames are the outcomes journeySum.outcome indexes; 0: none.
var outcomeNames = [...]decode.Outcome{"", decode.OutcomeDelivered, decode.OutcomeForwarded, decode.OutcomeSent,
	decode.OutcomeDropped, decode.OutcomeRejected, decode.OutcomeUnknown}

// outcomeCode returns o's index in outcomeNames; an outcome it does not
// know is taken for unknown.
func outcomeCode(o decode.Outcome) uint8 {
	for i, n := range outcomeNames {
		if n == o {
			return uint8(i)
		}
	}
	return uint8(len(outcomeNames) - 1)
}

// store holds every packet loaded, in arrival order.
type store struct {
	rows     []row
	chunks   [][]byte
	file     *blockCache // the capture file rows point into; nil: none
	fileSize int64       // its size, to reserve rows for all of it
	spool    *spool      // where frames that come as bytes, and records, are written; nil: chunks
	last     [3]interned // the strings of the last row, looked up again cheaply
	readErr  error       // the first failure to read the file again, for the status bar
	lastErr  error       // the latest one
	readFail uint64      // failures so far: a save compares it before and after
	strs     []string
	strIdx   map[string]uint16
	journeys []journeySum               // index 0 unused
	full     map[uint32]*decode.Journey // journeys kept whole (route steps, losses), by index
	// own finds, in ownRecs, the records of journeys that joined more
	// than frames but are rebuilt when shown, from their packets and
	// these. Neither holds a pointer: the collector does not scan them.
	own     map[uint32]ownSpan
	ownRecs []keptRecord
	recs    []recRow   // the records the journeys took beside frames, in order
	kinds   recKinds   // recs by kind, numbered as the journey builder numbers them
	sets    [][]uint16 // interned attribute sets, index 0 empty
	setIdx  map[string]uint32
	setKey  []byte // scratch for the key of a set
	bytes   uint64
	// What the list's columns need to know of every row.
	nsWidth, ifWidth int // longest namespace and interface names; 0: none
	hasDir           bool
}

func newStore() *store {
	return &store{strs: []string{""}, strIdx: map[string]uint16{"": 0},
		journeys: make([]journeySum, 1), full: map[uint32]*decode.Journey{}, own: map[uint32]ownSpan{}, sets: [][]uint16{nil}, setIdx: map[string]uint32{"": 0}}
}

// interned is a string and its index.
type interned struct {
	s string
	i uint16
}

// internLast interns v, remembering it in slot k of the last row's
// strings: rows in a row mostly share namespace and interface.
func (s *store) internLast(k int, v string) uint16 {
	if l := &s.last[k]; l.s == v && (v != "" || l.i == 0) {
		return l.i
	}
	i := s.intern(v)
	s.last[k] = interned{v, i}
	return i
}

// intern returns the index of s; past 65535 distinct strings the last
// slot is reused for everything else.
func (s *store) intern(v string) uint16 {
	if i, ok := s.strIdx[v]; ok {
		return i
	}
	if len(s.strs) >= 1<<16-1 {
		return uint16(len(s.strs) - 1)
	}
	i := uint16(len(s.strs))
	s.strs = append(s.strs, v)
	s.strIdx[v] = i
	return i
}

// add appends a frame, copying its bytes: to the spool file if there is
// one, else to memory.
func (s *store) add(f capture.Frame, vni uint32) {
	s.addRow(f, s.keep(f.Data), len(f.Data), vni)
}

// keep copies b to the spool, if there is one that can be written to,
// else to memory, and returns where it is (spooled or inMemory).
func (s *store) keep(b []byte) int64 {
	if sp := s.spool; sp != nil && sp.err == nil {
		pos := sp.written + int64(len(sp.buf))
		sp.buf = append(sp.buf, b...)
		if len(sp.buf) >= maxSpoolBuffer {
			s.flushSpool()
		}
		return pos | spooled
	}
	n := len(b)
	c := len(s.chunks) - 1
	if c < 0 || len(s.chunks[c])+n > cap(s.chunks[c]) {
		s.chunks = append(s.chunks, make([]byte, 0, max(chunkSize, n)))
		c++
	}
	off := len(s.chunks[c])
	s.chunks[c] = append(s.chunks[c], b...)
	return inMemory | int64(c)<<32 | int64(off)
}

// addAt appends a frame whose caplen bytes are in the backing file at
// off; its Data are not looked at.
func (s *store) addAt(f capture.Frame, off int64, caplen uint32, vni uint32) {
	if len(s.rows) == cap(s.rows) && s.fileSize > 0 && off > s.fileSize/8 {
		// Room for the rest of the file at the rows' size so far, so
		// that the list is not copied again and again as it grows
		// (estimated once an eighth of the file is read: packets at the
		// start of a capture are often smaller than the rest).
		// A file that grew since it was opened (still being written) is
		// as long as read so far: append grows the rest.
		est := int(float64(len(s.rows))*float64(max(s.fileSize, off))/float64(off)*1.05) + 1024
		if est > len(s.rows) {
			s.rows = slices.Grow(s.rows, est-len(s.rows))
		}
	}
	s.addRow(f, off, int(caplen), vni)
}

func (s *store) addRow(f capture.Frame, pos int64, n int, vni uint32) {
	s.rows = append(s.rows, row{
		t: f.Time.UnixNano(), pos: pos, caplen: uint32(n), wirelen: uint32(max(f.Len, n)),
		vni: vni, ifindex: int32(f.Ifindex), lt: f.LinkType, netns: s.internLast(0, f.Netns), iface: s.internLast(1, f.Iface),
		comment: s.internLast(2, f.Comment), dir: f.Dir,
	})
	s.bytes += uint64(n)
	s.nsWidth = max(s.nsWidth, len(f.Netns))
	s.ifWidth = max(s.ifWidth, len(f.Iface))
	s.hasDir = s.hasDir || f.Dir != 0
}

// data returns the captured bytes of row i. With a backing file they are
// valid until the next call; a failed read returns nil and is kept in
// readErr.
func (s *store) data(i int) []byte {
	r := &s.rows[i]
	return s.bytesAt(r.pos, int(r.caplen))
}

// bytesAt returns the n bytes kept at pos: in the spool, in memory, or
// in the capture file. From a file they are valid until the next read; a
// failed read returns nil and is kept in readErr.
func (s *store) bytesAt(pos int64, n int) []byte {
	var b []byte
	var err error
	switch {
	case pos&spooled != 0:
		b, err = s.spooledData(pos&^spooled, n)
	case pos&inMemory != 0:
		c, off := (pos&^inMemory)>>32, uint32(pos)
		return s.chunks[c][off : off+uint32(n) : off+uint32(n)]
	default:
		b, err = s.file.read(pos, n)
	}
	if err != nil {
		s.readFail++
		s.lastErr = err
		if s.readErr == nil {
			s.readErr = err
		}
	}
	return b
}

// failedSince returns the latest read failure if there were any since
// the count was fails, nil if none.
func (s *store) failedSince(fails uint64) error {
	if s.readFail != fails {
		return s.lastErr
	}
	return nil
}

// frame returns row i as a frame; Data is valid until the next call.
func (s *store) frame(i int) capture.Frame {
	r := &s.rows[i]
	return capture.Frame{
		Time: time.Unix(0, r.t), Netns: s.strs[r.netns], Iface: s.strs[r.iface], Ifindex: int(r.ifindex),
		Dir: r.dir, LinkType: r.lt, Len: int(r.wirelen), Comment: s.strs[r.comment],
		Data: s.data(i),
	}
}

// spool keeps the bytes of frames a source handed over (a live capture,
// a compressed file), and of the records beside them, in a file the
// store appends to and reads again through a block cache, so that memory
// holds only the rows.
type spool struct {
	w       io.Writer   // the file
	cache   *blockCache // reads the file again
	buf     []byte      // written on the next flush
	written int64       // bytes in the file
	err     error       // the first write error: later bytes are kept in memory
}

// newSpool returns a spool writing to an empty file.
func newSpool(f interface {
	io.Writer
	io.ReaderAt
}) *spool {
	return &spool{w: f, cache: newBlockCache(f, "the packets' spool file")}
}

// maxSpoolBuffer bounds the bytes held before they are written.
const maxSpoolBuffer = 1 << 20

// spooled marks a row's pos as an offset in the spool file: bit 62, far
// above any offset. inMemory marks it as chunk<<32 | offset in the chunk.
// A pos with neither is an offset in the capture file.
const (
	spooled  = int64(1) << 62
	inMemory = int64(1) << 61
)

// flushSpool writes what the spool holds. After a write error the
// bytes not written stay in memory, and later frames go to memory.
func (s *store) flushSpool() {
	sp := s.spool
	if sp == nil || len(sp.buf) == 0 || sp.err != nil {
		return
	}
	n, err := sp.w.Write(sp.buf)
	sp.written += int64(n)
	sp.buf = sp.buf[n:]
	if err != nil {
		sp.err = fmt.Errorf("write the packets' spool file: %w", err)
		sp.buf = append([]byte(nil), sp.buf...)
		return
	}
	sp.buf = sp.buf[:0:cap(sp.buf)]
}

// spooledData returns n bytes at off in the spool: from the buffer not
// yet written, or from the file.
func (s *store) spooledData(off int64, n int) ([]byte, error) {
	sp := s.spool
	if off >= sp.written {
		i := off - sp.written
		return sp.buf[i : i+int64(n) : i+int64(n)], nil
	}
	if off+int64(n) > sp.written {
		s.flushSpool() // a frame written in part
	}
	if head := int(sp.written - off); head < n {
		// Still in part: a write failed in the middle of the frame.
		b := make([]byte, n)
		part, err := sp.cache.read(off, head)
		if err != nil {
			return nil, err
		}
		copy(b, part)
		copy(b[head:], sp.buf)
		return b, nil
	}
	return sp.cache.read(off, n)
}

// storeErr is the first failure to keep or read packets again, nil if
// none.
func (s *store) storeErr() error {
	if s.spool != nil && s.spool.err != nil {
		return s.spool.err
	}
	return s.readErr
}

// blockSize and cacheBlocks size the cache of a backing file: reading
// rows in order reads the file in blocks; a screen of rows spread over
// the file costs a block each.
const (
	blockSize   = 256 << 10
	cacheBlocks = 16
)

// blockCache reads a capture file again, in aligned blocks, keeping the
// most recently used.
type blockCache struct {
	r      io.ReaderAt
	what   string // what r is, for errors
	blocks [cacheBlocks]cachedBlock
	clock  uint64
	big    []byte // for a frame that spans two blocks
}

type cachedBlock struct {
	start int64 // -1: empty
	n     int
	used  uint64
	buf   []byte
}

func newBlockCache(r io.ReaderAt, what string) *blockCache {
	c := &blockCache{r: r, what: what}
	for i := range c.blocks {
		c.blocks[i].start = -1
	}
	return c
}

// read returns n bytes at off, valid until the next read.
func (c *blockCache) read(off int64, n int) ([]byte, error) {
	start := off &^ (blockSize - 1)
	if off+int64(n) > start+blockSize {
		if cap(c.big) < n {
			c.big = make([]byte, n)
		}
		b := c.big[:n]
		if _, err := c.r.ReadAt(b, off); err != nil {
			return nil, fmt.Errorf("read %s again at byte %d: %w", c.what, off, err)
		}
		return b, nil
	}
	c.clock++
	victim := 0
	for i := range c.blocks {
		b := &c.blocks[i]
		if b.start == start && off+int64(n) <= start+int64(b.n) {
			b.used = c.clock
			return c.slice(b, off, n)
		}
		if b.start == start {
			// Read when the file was shorter (a spool grows): again.
			victim = i
			break
		}
		if b.used < c.blocks[victim].used {
			victim = i
		}
	}
	b := &c.blocks[victim]
	if b.buf == nil {
		b.buf = make([]byte, blockSize)
	}
	got, err := c.r.ReadAt(b.buf, start)
	if err != nil && err != io.EOF {
		b.start = -1
		return nil, fmt.Errorf("read %s again at byte %d: %w", c.what, start, err)
	}
	b.start, b.n, b.used = start, got, c.clock
	return c.slice(b, off, n)
}

func (c *blockCache) slice(b *cachedBlock, off int64, n int) ([]byte, error) {
	i := int(off - b.start)
	if i+n > b.n {
		return nil, fmt.Errorf("read %s again at byte %d: the file is shorter than when it was read", c.what, off)
	}
	return b.buf[i : i+n : i+n], nil
}

// addJourney records a closed journey and marks its rows.
func (s *store) addJourney(j JourneyInfo) {
	if len(j.Rows) == 0 {
		return
	}
	// The set's key: its string indexes, two bytes each.
	key := s.setKey[:0]
	for _, a := range j.Attrs {
		i := s.intern(a)
		key = append(key, byte(i>>8), byte(i))
	}
	s.setKey = key
	set, ok := s.setIdx[string(key)]
	if !ok {
		ids := make([]uint16, 0, len(j.Attrs))
		for i := 0; i < len(key); i += 2 {
			ids = append(ids, uint16(key[i])<<8|uint16(key[i+1]))
		}
		set = uint32(len(s.sets))
		s.sets = append(s.sets, ids)
		s.setIdx[string(key)] = set
	}
	if len(s.journeys) == cap(s.journeys) && cap(s.rows) > cap(s.journeys) && (s.file != nil || s.spool != nil) {
		// Journeys come as many as rows at most: the same room.
		s.journeys = slices.Grow(s.journeys, cap(s.rows)-len(s.journeys))
	}
	jid := uint32(len(s.journeys))
	sum := journeySum{id: j.ID, outcome: outcomeCode(j.Outcome), first: j.Rows[0], last: j.Rows[0], attrs: set}
	if j.Journey != nil {
		own := s.journeyRecords(j.Journey)
		if keepWhole(j.Journey) || len(own) != len(j.Journey.Traces)+len(j.Journey.Drops) {
			// (A source that gave the journey and not its records too.)
			s.full[jid] = j.Journey
		} else {
			// A few bytes a record, not kilobytes a journey: a recorded
			// incident of a million frames would hold most of them.
			s.own[jid] = ownSpan{off: uint32(len(s.ownRecs)), n: uint32(len(own))}
			s.ownRecs = append(s.ownRecs, own...)
		}
	}
	for _, r := range j.Rows {
		if int(r) >= len(s.rows) {
			continue
		}
		s.rows[r].jid = jid
		sum.first = min(sum.first, r)
		sum.last = max(sum.last, r)
	}
	s.journeys = append(s.journeys, sum)
}

// ownSpan is where a journey's records are in store.ownRecs.
type ownSpan struct{ off, n uint32 }

// keepWhole says whether a journey must be kept as it came: its route
// steps were asked of the kernel, or events were lost while it was open;
// rebuilt from its own packets and records it would show neither.
func keepWhole(j *decode.Journey) bool {
	if j.Incomplete {
		return true
	}
	for i := range j.Steps {
		if j.Steps[i].Kind == decode.StepRoute {
			return true
		}
	}
	return false
}

// ownRecords returns the trace events and kernel drops that joined
// journey jid, in the order the builder took them.
func (s *store) ownRecords(jid uint32) []keptRecord {
	if j := s.full[jid]; j != nil {
		return s.journeyRecords(j)
	}
	sp, ok := s.own[jid]
	if !ok {
		return nil
	}
	return s.ownRecs[sp.off : sp.off+sp.n : sp.off+sp.n]
}

// journeyNetns lists the namespaces journey jid crossed (its "netns="
// attributes).
func (s *store) journeyNetns(jid uint32) []string {
	var out []string
	for _, a := range s.sets[s.journeys[jid].attrs] {
		if ns, ok := strings.CutPrefix(s.strs[a], "netns="); ok {
			out = append(out, ns)
		}
	}
	return out
}

// outcome returns the outcome of row i's journey, "" when it has none.
func (s *store) outcome(i int) decode.Outcome {
	return outcomeNames[s.journeys[s.rows[i].jid].outcome]
}

// hasAttr says whether row i's journey has attribute v.
func (s *store) hasAttr(i int, v string) bool {
	idx, ok := s.strIdx[v]
	if !ok {
		return false
	}
	for _, a := range s.sets[s.journeys[s.rows[i].jid].attrs] {
		if a == idx {
			return true
		}
	}
	return false
}
