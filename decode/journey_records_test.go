package decode

import (
	"reflect"
	"testing"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// input is one record given to a builder, as journeys number them.
type input struct {
	frame *capture.Frame
	trace *TraceEvent
	drop  *KernelDrop
}

// recordingFeed gives records to a builder and keeps them in order.
type recordingFeed struct {
	f   *feed
	ins []input
}

func (r *recordingFeed) capture(us int, ns, iface string, dir capture.Direction, frame []byte) {
	r.ins = append(r.ins, input{frame: &capture.Frame{Time: at(us), Netns: ns, Iface: iface, Dir: dir, LinkType: capture.LinkTypeEthernet, Len: len(frame), Data: frame}})
}

func (r *recordingFeed) hook(us int, ns, hook string, first bool, ip []byte) {
	prefix := nflog.LogPrefixLast
	if first {
		prefix = nflog.LogPrefixFirst
	}
	rec := nflogRecord(2, hookNums[hook], prefix, 0, 0, 0, ip)
	r.ins = append(r.ins, input{frame: &capture.Frame{Time: at(us), Netns: ns, Iface: "nflog:18516", LinkType: capture.LinkTypeNFLOG, Len: len(rec), Data: rec}})
}

func (r *recordingFeed) rule(us int, ns string, id uint32, chain string, handle uint64, verdict nflog.Verdict, ip []byte) {
	ev := TraceEvent{Trace: nflog.Trace{Netns: ns, Time: at(us), ID: id, Family: 1, Table: "hxfilter", Chain: chain,
		Handle: handle, Type: nflog.TraceRule, Verdict: verdict, HasVerdict: true}, Hook: "input", HasPriority: true}
	if handle != 0 {
		ev.Rule = "some rule"
	}
	setSnapshot(&ev, ip)
	r.ins = append(r.ins, input{trace: &ev})
}

func (r *recordingFeed) drop(us int, ns, reason string, ip []byte) {
	r.ins = append(r.ins, input{drop: &KernelDrop{Time: at(us), Netns: ns, Reason: reason, Location: "f+0x10", Network: ip}})
}

// buildFrom feeds the records (only the chosen ones, when keep is not nil)
// to a new builder and returns its journeys.
func buildFrom(ins []input, keep func(kind int, n uint64) bool) []*Journey {
	b := NewJourneyBuilder(JourneyOptions{})
	dec := NewDecoder()
	var num [3]uint64
	for _, in := range ins {
		kind := 0
		switch {
		case in.trace != nil:
			kind = 1
		case in.drop != nil:
			kind = 2
		}
		n := num[kind]
		num[kind]++
		if keep != nil && !keep(kind, n) {
			continue
		}
		switch kind {
		case 0:
			b.AddPacket(dec.Decode(*in.frame))
		case 1:
			b.AddTrace(in.trace)
		case 2:
			b.AddDrop(in.drop)
		}
	}
	return b.Flush()
}

// TestJourneyRecords: a journey numbers its packets, trace events and
// kernel drops, and those records alone, given to a new builder in the
// same order, build the same journey again (what `explain --save`
// writes). Other packets' records interleave with them.
func TestJourneyRecords(t *testing.T) {
	syn := ipv4("10.77.0.1", "10.77.0.2", 100, 6, tcpSeg(51234, 2222, 1000, 0, tcpSYN))
	udp := ipv4("10.77.0.1", "10.77.0.2", 101, 17, udpDgram(40000, 4448, "hello"))
	unreach := ipv4("10.77.0.2", "10.77.0.1", 7, 1, icmpError(3, 3, udp))
	other := ipv4("10.77.0.3", "10.77.0.2", 102, 6, tcpSeg(40000, 80, 9, 0, tcpSYN))
	r := &recordingFeed{}
	r.drop(1, "srv", "NO_SOCKET", udp) // the drop probe was faster than the capture
	r.capture(2, "srv", "s0", capture.DirIn, ether(syn))
	r.capture(3, "srv", "s0", capture.DirIn, ether(udp))
	r.capture(4, "srv", "s0", capture.DirIn, ether(other))
	r.hook(5, "srv", "input", true, syn)
	r.hook(6, "srv", "input", true, other)
	r.rule(20, "srv", 0xaa, "input", 0, nflog.VerdictContinue, syn) // a chain's implicit end
	r.rule(21, "srv", 0xaa, "input", 2, nflog.VerdictDrop, nil)
	r.rule(22, "srv", 0xbb, "input", 3, nflog.VerdictAccept, other)
	r.capture(30, "srv", "s0", capture.DirOut, ether(unreach))
	r.drop(31, "srv", "NETFILTER_DROP", syn)
	all := buildFrom(r.ins, nil)
	if len(all) != 3 {
		t.Fatalf("%d journeys, want 3: %s", len(all), renderAll(all))
	}
	for _, j := range all {
		nums := [3][]uint64{j.Packets, j.Traces, j.Drops}
		again := buildFrom(r.ins, func(kind int, n uint64) bool {
			for _, m := range nums[kind] {
				if m == n {
					return true
				}
			}
			return false
		})
		if len(again) != 1 {
			t.Errorf("journey %d: its records build %d journeys: %s", j.ID, len(again), renderAll(again))
			continue
		}
		g := again[0]
		if !reflect.DeepEqual(g.Steps, j.Steps) || g.Outcome != j.Outcome || !reflect.DeepEqual(g.Drop, j.Drop) || !g.First.Equal(j.First) || !g.Last.Equal(j.Last) {
			t.Errorf("journey %d from its own records:\n%s\nwant:\n%s", j.ID, render(g), render(j))
		}
	}
	if got := all[0].Traces; len(got) != 2 {
		t.Errorf("the dropped SYN's trace events: %v, want both (the chain's implicit end too)", got)
	}
}
