package tui

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
)

// recRow is what the store keeps of a record other than a frame that the
// journeys took (a trace event, a kernel drop, a loss notice), 24 bytes:
// its encoding (decode's record encoding, as a recording holds it) is in
// the spool or in memory, as frames' bytes are.
type recRow struct {
	t      int64  // its time, Unix nanoseconds (its encoding has it too)
	pos    int64  // where its encoding is (spooled or inMemory)
	size   uint32 // bytes of its encoding
	frames uint32 // frames the journeys took before it
}

// recKinds are the kinds of records the store keeps, numbered as the
// journey builder numbers them: trace events by AddTrace call, kernel
// drops by AddDrop call; loss notices have no number.
type recKinds struct {
	traces []uint32 // index in store.recs of trace event n
	drops  []uint32 // index in store.recs of kernel drop n
	losses []uint32 // index in store.recs of each loss notice
}

// list returns the index list of a kind; nil for a kind not kept.
func (k *recKinds) list(kind capture.CustomKind) *[]uint32 {
	switch kind {
	case capture.CustomTrace:
		return &k.traces
	case capture.CustomDrop:
		return &k.drops
	case capture.CustomLoss:
		return &k.losses
	}
	return nil
}

// addRecord keeps an encoded record; its bytes are copied.
func (s *store) addRecord(r EncodedRecord) {
	l := s.kinds.list(r.Kind)
	if l == nil {
		return
	}
	*l = append(*l, uint32(len(s.recs)))
	s.recs = append(s.recs, recRow{t: r.Time.UnixNano(), pos: s.keep(r.Data), size: uint32(len(r.Data)), frames: r.Frames})
}

// recordData returns the encoding of record i, valid until the next read
// of the store; a failed read returns nil and is kept in readErr.
func (s *store) recordData(i uint32) []byte {
	r := &s.recs[i]
	return s.bytesAt(r.pos, int(r.size))
}

// keptRecord is a record the store keeps, to write out: its index in
// store.recs and its kind.
type keptRecord struct {
	i    uint32
	kind capture.CustomKind
}

// journeyRecords returns the trace events and kernel drops that joined a
// journey the source gave whole, by the numbers the builder gave them,
// in the order the builder took them. Numbers the store does not hold
// (the source sent none) are left out.
func (s *store) journeyRecords(j *decode.Journey) []keptRecord {
	var out []keptRecord
	for _, n := range j.Traces {
		if n < uint64(len(s.kinds.traces)) {
			out = append(out, keptRecord{s.kinds.traces[n], capture.CustomTrace})
		}
	}
	for _, n := range j.Drops {
		if n < uint64(len(s.kinds.drops)) {
			out = append(out, keptRecord{s.kinds.drops[n], capture.CustomDrop})
		}
	}
	sortKept(out)
	return out
}

// sortKept puts kept records in the order the journeys took them.
func sortKept(k []keptRecord) {
	slices.SortFunc(k, func(a, b keptRecord) int { return cmp.Compare(a.i, b.i) })
}

// merged calls frame for rows and rec for kept records, both ascending,
// in the order the journeys took them: a record before the frames taken
// after it.
func (s *store) merged(rows []int, kept []keptRecord, frame func(row int) error, rec func(keptRecord) error) error {
	k := 0
	for _, r := range rows {
		for ; k < len(kept) && int(s.recs[kept[k].i].frames) <= r; k++ {
			if err := rec(kept[k]); err != nil {
				return err
			}
		}
		if err := frame(r); err != nil {
			return err
		}
	}
	for ; k < len(kept); k++ {
		if err := rec(kept[k]); err != nil {
			return err
		}
	}
	return nil
}

// decodeRecord decodes a kept record.
func (s *store) decodeRecord(k keptRecord) (decode.Recorded, error) {
	fails := s.readFail
	b := s.recordData(k.i)
	if err := s.failedSince(fails); err != nil {
		return decode.Recorded{}, fmt.Errorf("read a %s record again: %w", k.kind, err)
	}
	rec, _, err := decode.ParseRecorded(&capture.CustomRecord{Kind: k.kind, Payload: b})
	return rec, err
}
