package tui

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/nflog"
)

// TestStoreRecords keeps trace events, drops and losses beside frames,
// in memory and in a spool, and reads them back by the numbers the
// journey builder gives them, in the order they came.
func TestStoreRecords(t *testing.T) {
	for _, spooled := range []bool{false, true} {
		s := newStore()
		if spooled {
			f, err := os.Create(filepath.Join(t.TempDir(), "spool"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s.spool = newSpool(f)
		}
		frames := testFrames(300)
		var enc recordEncoder
		var recs []EncodedRecord
		for i, f := range frames {
			s.add(f, 0)
			at := f.Time.Add(time.Microsecond)
			switch i % 3 {
			case 0:
				ev := decode.TraceEvent{Trace: nflog.Trace{Netns: f.Netns, Time: at, ID: uint32(i), Chain: "input"}, Rule: "drop"}
				recs = enc.add(recs, Record{Trace: &ev}, uint32(len(s.rows)))
			case 1:
				recs = enc.add(recs, Record{Drop: &decode.KernelDrop{Time: at, Netns: f.Netns, Reason: "NO_SOCKET", Ifindex: uint32(i)}}, uint32(len(s.rows)))
			}
			if i == 150 {
				recs = enc.add(recs, Record{Loss: &decode.LossNotice{Time: at, Cause: "shed", Count: 7}}, uint32(len(s.rows)))
				recs = enc.add(recs, Record{Clock: at}, uint32(len(s.rows))) // not kept
			}
		}
		for _, r := range recs {
			s.addRecord(r)
		}
		s.flushSpool()
		checkRows(t, s, frames)
		if len(s.kinds.traces) != 100 || len(s.kinds.drops) != 100 || len(s.kinds.losses) != 1 || len(s.recs) != 201 {
			t.Fatalf("kept %d trace events, %d drops, %d losses", len(s.kinds.traces), len(s.kinds.drops), len(s.kinds.losses))
		}
		j := &decode.Journey{Traces: []uint64{3, 1}, Drops: []uint64{2, 999}}
		kept := s.journeyRecords(j)
		if len(kept) != 3 {
			t.Fatalf("journey records %+v", kept)
		}
		var got []string
		var order []int
		err := s.merged([]int{3, 4, 5, 6, 7, 8}, kept, func(r int) error {
			order = append(order, r)
			return nil
		}, func(k keptRecord) error {
			rec, err := s.decodeRecord(k)
			switch {
			case err != nil:
				return err
			case rec.Trace != nil:
				got = append(got, rec.Trace.Netns+"/trace")
				order = append(order, -int(rec.Trace.ID))
			case rec.Drop != nil:
				got = append(got, rec.Drop.Reason)
				order = append(order, -int(rec.Drop.Ifindex))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Trace event 1 came after row 3, drop 2 after row 7, trace event
		// 3 after row 9.
		want := []int{3, -3, 4, 5, 6, 7, -7, 8, -9}
		if !slices.Equal(order, want) {
			t.Errorf("spooled %v: merged order %v, want %v (%v)", spooled, order, want, got)
		}
		if b := s.recordData(s.kinds.losses[0]); !bytes.Equal(b, recs[101].Data) {
			t.Errorf("the loss notice reads back as %x, want %x", b, recs[101].Data)
		}
	}
}
