package tui

import (
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
)

// chunkSize is the size of the blocks frame bytes are kept in.
const chunkSize = 4 << 20

// row is what the list keeps of one packet: about 48 bytes and its
// captured bytes in a chunk. Columns are decoded from the bytes only for
// the rows on screen.
type row struct {
	t       int64 // capture time, Unix nanoseconds
	chunk   uint32
	off     uint32
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

// journeySum is what the list keeps of a journey; the journey itself is
// rebuilt from its rows when it is shown.
type journeySum struct {
	id          uint64
	outcome     decode.Outcome
	first, last uint32 // rows
	attrs       uint32 // interned attribute set: namespaces, hooks, chains
	full        *decode.Journey
}

// store holds every packet loaded, in arrival order.
type store struct {
	rows     []row
	chunks   [][]byte
	strs     []string
	strIdx   map[string]uint16
	journeys []journeySum // index 0 unused
	sets     [][]uint16   // interned attribute sets, index 0 empty
	setIdx   map[string]uint32
	bytes    uint64
	// What the list's columns need to know of every row.
	nsWidth, ifWidth int // longest namespace and interface names; 0: none
	hasDir           bool
}

func newStore() *store {
	return &store{strs: []string{""}, strIdx: map[string]uint16{"": 0},
		journeys: make([]journeySum, 1), sets: [][]uint16{nil}, setIdx: map[string]uint32{"": 0}}
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

// add appends a frame, copying its bytes.
func (s *store) add(f capture.Frame, vni uint32) {
	n := len(f.Data)
	c := len(s.chunks) - 1
	if c < 0 || len(s.chunks[c])+n > cap(s.chunks[c]) {
		s.chunks = append(s.chunks, make([]byte, 0, max(chunkSize, n)))
		c++
	}
	off := len(s.chunks[c])
	s.chunks[c] = append(s.chunks[c], f.Data...)
	s.rows = append(s.rows, row{
		t: f.Time.UnixNano(), chunk: uint32(c), off: uint32(off), caplen: uint32(n), wirelen: uint32(max(f.Len, n)),
		vni: vni, ifindex: int32(f.Ifindex), lt: f.LinkType, netns: s.intern(f.Netns), iface: s.intern(f.Iface),
		comment: s.intern(f.Comment), dir: f.Dir,
	})
	s.bytes += uint64(n)
	s.nsWidth = max(s.nsWidth, len(f.Netns))
	s.ifWidth = max(s.ifWidth, len(f.Iface))
	s.hasDir = s.hasDir || f.Dir != 0
}

// frame returns row i as a frame; Data points into the store.
func (s *store) frame(i int) capture.Frame {
	r := &s.rows[i]
	return capture.Frame{
		Time: time.Unix(0, r.t), Netns: s.strs[r.netns], Iface: s.strs[r.iface], Ifindex: int(r.ifindex),
		Dir: r.dir, LinkType: r.lt, Len: int(r.wirelen), Comment: s.strs[r.comment],
		Data: s.chunks[r.chunk][r.off : r.off+r.caplen : r.off+r.caplen],
	}
}

// addJourney records a closed journey and marks its rows.
func (s *store) addJourney(j JourneyInfo) {
	if len(j.Rows) == 0 {
		return
	}
	key := ""
	ids := make([]uint16, 0, len(j.Attrs))
	for _, a := range j.Attrs {
		i := s.intern(a)
		ids = append(ids, i)
		key += string(rune(i)) // a compact, unique key for the set
	}
	set, ok := s.setIdx[key]
	if !ok {
		set = uint32(len(s.sets))
		s.sets = append(s.sets, ids)
		s.setIdx[key] = set
	}
	jid := uint32(len(s.journeys))
	sum := journeySum{id: j.ID, outcome: j.Outcome, first: j.Rows[0], last: j.Rows[0], attrs: set, full: j.Journey}
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

// outcome returns the outcome of row i's journey, "" when it has none.
func (s *store) outcome(i int) decode.Outcome {
	return s.journeys[s.rows[i].jid].outcome
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
