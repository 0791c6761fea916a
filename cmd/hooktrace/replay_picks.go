package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"sync"

	"github.com/hooktrace/hooktrace/capture/filter"
	"github.com/hooktrace/hooktrace/decode"
)

// On a recording, -w with a filter writes the frames the filter passes
// and everything the journeys it selects were built from (their frames,
// trace events and kernel drops), beside every interface name, ruleset
// and loss, so that the file replays to the same journeys. Which records
// those are is known only once a journey closes, up to a window after
// them; so the input is replayed twice: first (pickRecords) to build the
// journeys and note where in the input each selected journey's frames
// and records are, then to write them with the rest. Standard input, a
// pipe or a FIFO cannot be read twice: there, only the frames the filter
// passes are written.

// picking ties a replay to -w with a filter: the first replay's picker,
// or the writing replay's picks. Both are nil otherwise.
type picking struct {
	picker *journeyPicker
	picks  *recordPicks
}

// recordPicks says which frames (by their number in the input) and which
// hooktrace records (by their count in the input, from 1) the journeys a
// filter selects were built from. A nil *recordPicks picks no frame and
// every record.
type recordPicks struct {
	frames, records bitset
}

// frame says whether frame n was picked.
func (p *recordPicks) frame(n uint64) bool { return p != nil && p.frames.has(n) }

// record says whether to write record n, which held got: a trace event
// or a kernel drop when it was picked; any other (interface names,
// rulesets, losses) always.
func (p *recordPicks) record(got decode.Recorded, n uint64) bool {
	return p == nil || got.Trace == nil && got.Drop == nil || p.records.has(n)
}

// journeyPicker is the first replay's journey printer. It notes the
// journeys it is given (a journeySelector in front of it passes those the
// filter selects) by the builder's numbers of their packets, trace events
// and drops; the stage tells it where in the input each of those was.
// Journey is called from the finishers, the rest from the stage.
type journeyPicker struct {
	mu                     sync.Mutex
	packets, traces, drops []uint64 // the builder's numbers, of the journeys noted
	// frameAt, traceAt and dropAt: where in the input each frame, trace
	// event and drop the builder took was, by the builder's number.
	frameAt, traceAt, dropAt []uint64
}

// Journey notes a journey the filter selected.
func (p *journeyPicker) Journey(j *decode.Journey) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.packets = append(p.packets, j.Packets...)
	p.traces = append(p.traces, j.Traces...)
	p.drops = append(p.drops, j.Drops...)
	return nil
}

// tookFrame notes that the builder took frame n of the input next.
func (p *journeyPicker) tookFrame(n uint64) {
	if p != nil {
		p.frameAt = append(p.frameAt, n)
	}
}

// tookRecord notes that the builder took record n of the input, which
// held got, next.
func (p *journeyPicker) tookRecord(got decode.Recorded, n uint64) {
	switch {
	case p == nil:
	case got.Trace != nil:
		p.traceAt = append(p.traceAt, n)
	case got.Drop != nil:
		p.dropAt = append(p.dropAt, n)
	}
}

// restart forgets everything: the replay starts a new builder, which
// numbers from 0 again.
func (p *journeyPicker) restart() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.packets, p.traces, p.drops = nil, nil, nil
	p.frameAt, p.traceAt, p.dropAt = nil, nil, nil
}

// picks returns what the noted journeys were built from; call it after
// the replay ended.
func (p *journeyPicker) picks() *recordPicks {
	var r recordPicks
	for _, k := range []struct {
		nums, at []uint64
		into     *bitset
	}{{p.packets, p.frameAt, &r.frames}, {p.traces, p.traceAt, &r.records}, {p.drops, p.dropAt, &r.records}} {
		for _, n := range k.nums {
			if n < uint64(len(k.at)) {
				k.into.set(k.at[n])
			}
		}
	}
	return &r
}

// pickRecords replays the input a first time, printing nothing, to find
// what -w with a filter writes of a recording. A replay that fails picks
// what came before the failure: the writing replay reports it.
func pickRecords(ctx context.Context, o *options, match *filter.Set) (*recordPicks, error) {
	src, err := openRecordSource(o, func(error) {}, io.Discard)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	first := *o
	first.print, first.json = false, false // builds journeys (the picker's; as many as --journeys asks), prints nothing
	out := &output{out: bufio.NewWriter(io.Discard)}
	out.shared = &lockedWriter{w: out.out}
	out.pipe = newPipeline(out.shared, nil, nil)
	picker := &journeyPicker{}
	replayRecords(ctx, &first, src, match, out, func(error) {}, picking{picker: picker}) // its failure is the writing replay's to tell
	out.close()
	return picker.picks(), nil
}

// readTwice says whether every input can be read twice: a regular file
// (not standard input, a pipe or a FIFO).
func readTwice(o *options) bool {
	for _, path := range o.readFiles {
		if path == "-" {
			return false
		}
		if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// bitset is a set of small numbers.
type bitset []uint64

func (s *bitset) set(n uint64) {
	if i := int(n / 64); i >= len(*s) {
		*s = append(*s, make([]uint64, i+1-len(*s))...)
	}
	(*s)[n/64] |= 1 << (n % 64)
}

func (s bitset) has(n uint64) bool {
	i := n / 64
	return i < uint64(len(s)) && s[i]&(1<<(n%64)) != 0
}
