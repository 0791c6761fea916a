package decode

import (
	"encoding/binary"
	"encoding/json"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// FuzzJourney feeds arbitrary records (frames under every link type,
// trace events with arbitrary header snapshots, kernel drops, losses) to
// a builder that assembles journeys as they close, and, read as
// sightings, to one that leaves them for its taker: no panic, and the
// same journeys. Times go back and forth and the bounds are small, so
// that eviction, idle closing and records out of order are all reached.
//
// The input is a sequence of records: a kind byte, a byte of time step
// and choices, a 16-bit length and that many bytes.
func FuzzJourney(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		opt := JourneyOptions{Window: 40 * time.Millisecond, MaxOpen: 6,
			IfName: func(ns string, i uint32) string { return ns + "-if" }}
		whole := NewJourneyBuilder(opt)
		opt.Unassembled = true
		parts := NewJourneyBuilder(opt)
		var want []*Journey
		var got []string // each journey assembled into the same one, by turns
		var into Journey
		assemble := func(pj *PendingJourney) {
			var j *Journey
			if len(got)%2 == 0 {
				j = pj.Assemble()
			} else {
				pj.AssembleInto(&into)
				j = &into
			}
			b, err := json.Marshal(j)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(b))
		}
		dec := NewDecoder()
		at := t0
		for len(data) >= 4 {
			kind, choice, n := data[0], data[1], int(binary.BigEndian.Uint16(data[2:]))
			data = data[4:]
			n = min(n, len(data))
			body := data[:n:n]
			data = data[n:]
			at = at.Add(time.Duration(int8(choice)) * time.Millisecond) // back and forth
			ns := []string{"a", "b", ""}[int(choice)%3]
			switch kind % 4 {
			case 0: // a frame
				fr := capture.Frame{Time: at, Netns: ns, Iface: "eth0", Dir: capture.Direction(choice % 3),
					LinkType: fuzzLinkTypes[int(kind/4)%len(fuzzLinkTypes)], Data: body, Len: len(body)}
				whole.AddPacket(dec.Decode(fr))
				var s Sighting
				if !s.ReadFrame(fr, nil) { // undecoded when it can be, as a replay's workers read it
					s.ReadPacket(dec.Decode(fr), nil) // whole shares its descriptions, parts makes new ones
				}
				parts.AddSighting(&s)
			case 1: // a trace event: its header snapshot, or none
				ev := TraceEvent{Trace: nflog.Trace{Netns: ns, Time: at, ID: uint32(kind >> 2), Family: 1, Table: "t", Chain: "c",
					Handle: uint64(choice % 4), Type: nflog.TraceRule, Verdict: nflog.Verdict(int(choice>>2) % 4), HasVerdict: true},
					Priority: int(int8(kind)), HasPriority: true, Hook: []string{"prerouting", "input", "forward", "output", "postrouting"}[int(kind>>2)%5],
					Rule: "counter packets 1 bytes 2 drop"}
				if choice&0x80 != 0 {
					ev.Type = nflog.TracePolicy
				}
				if choice&0x40 != 0 {
					ev.Network = body
				}
				whole.AddTrace(&ev)
				var s Sighting
				s.ReadTrace(&ev, nil)
				parts.AddSighting(&s)
			case 2: // a kernel drop
				d := KernelDrop{Time: at, Netns: ns, Ifindex: uint32(choice % 3), Reason: "NO_SOCKET"}
				if choice&0x40 != 0 {
					d.Network = body
				}
				whole.AddDrop(&d)
				parts.AddDrop(&d)
			case 3: // events lost
				whole.MarkLoss(ns, at)
				parts.MarkLoss(ns, at)
			}
			want = append(want, whole.Closed()...)
			for _, pj := range parts.ClosedPending() {
				assemble(&pj)
			}
		}
		want = append(want, whole.Flush()...)
		for _, pj := range parts.FlushPending() {
			assemble(&pj)
		}
		if len(got) != len(want) {
			t.Fatalf("%d journeys read as sightings, %d as records", len(got), len(want))
		}
		for i := range want {
			w, err := json.Marshal(want[i])
			if err != nil {
				t.Fatal(err)
			}
			if string(w) != got[i] {
				t.Fatalf("journey %d differs:\n got %s\nwant %s", i, got[i], w)
			}
		}
		if whole.Stats() != parts.Stats() {
			t.Errorf("stats %+v and %+v", parts.Stats(), whole.Stats())
		}
	})
}
