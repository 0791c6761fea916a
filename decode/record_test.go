package decode

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

var recT0 = time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.UTC)

func recordTraces() map[string]TraceEvent {
	full := TraceEvent{
		Trace: nflog.Trace{
			Netns: "hxq4", Time: recT0, ID: 0xc0660ea6, Family: 1, Table: "userfw", Chain: "input", Handle: 3, Type: nflog.TraceRule,
			Verdict: nflog.VerdictJump, HasVerdict: true, JumpTarget: "icmpchk", Policy: nflog.VerdictDrop, HasPolicy: true,
			LL: []byte{1, 2, 3}, Network: []byte{0x45, 0, 0, 84}, Transport: []byte{8, 0},
			IIF: 7, OIF: 4294967295, IIFType: 1, OIFType: 65534, Mark: 0xdeadbeef, NFProto: 2,
			CTID: 99, CTDirection: 1, CTStatus: 0x1a, CTState: 8, HasCT: true,
		},
		Hook: "input", Priority: -2147483648, HasPriority: true, Rule: "icmp type echo-request jump icmpchk",
		IptablesRule: "-A INPUT -p icmp -j icmpchk", IIFName: "tb", OIFName: "ü/odd name",
	}
	legacy := TraceEvent{Trace: nflog.Trace{Netns: "hxl", Time: recT0, Table: "filter", Chain: "FORWARD", Type: nflog.TracePolicy, Policy: nflog.VerdictAccept, HasPolicy: true},
		Legacy: true, RuleNumber: 12, Rule: "-A FORWARD -j ACCEPT", Hook: "forward", Priority: 0, HasPriority: true}
	emptySnapshots := full
	emptySnapshots.LL, emptySnapshots.Network, emptySnapshots.Transport = []byte{}, nil, []byte{}
	return map[string]TraceEvent{
		"zero":            {},
		"full":            full,
		"legacy":          legacy,
		"empty snapshots": emptySnapshots,
		"negative verdict and priority": {Trace: nflog.Trace{Time: time.Unix(0, 1), Verdict: nflog.Verdict(-2147483648), HasVerdict: true},
			Priority: 2147483647, RuleNumber: -1},
		"before 1970": {Trace: nflog.Trace{Time: time.Unix(-5, 7)}},
	}
}

// sameTime compares times as instants and everything else exactly.
func normTimes(v any) any {
	switch x := v.(type) {
	case TraceEvent:
		x.Time = x.Time.UTC()
		return x
	case KernelDrop:
		x.Time = x.Time.UTC()
		return x
	case LossNotice:
		x.Time = x.Time.UTC()
		return x
	case RulesetSnapshot:
		x.Time = x.Time.UTC()
		return x
	}
	return v
}

func TestTraceRecordRoundTrip(t *testing.T) {
	for name, ev := range recordTraces() {
		t.Run(name, func(t *testing.T) {
			b := AppendTraceRecord([]byte("prefix"), &ev)
			if !bytes.HasPrefix(b, []byte("prefix")) {
				t.Fatal("the prefix was overwritten")
			}
			got, err := ParseTraceRecord(b[len("prefix"):])
			if err != nil {
				t.Fatal(err)
			}
			if g, w := normTimes(got), normTimes(ev); !reflect.DeepEqual(g, w) {
				t.Errorf("got  %+v\nwant %+v", g, w)
			}
		})
	}
}

func TestOtherRecordsRoundTrip(t *testing.T) {
	drops := []KernelDrop{
		{},
		{Time: recT0, NetnsInode: 4026531840, Netns: "hxd", Ifindex: 3, Reason: "NO_SOCKET", Location: "__udp4_lib_rcv+0x9a", Protocol: 0x0800, Network: []byte{0x45, 1, 2}},
		{Time: recT0, Netns: "hxd", Reason: "IP_RPFILTER", Probable: true},
	}
	for _, kd := range drops {
		got, err := ParseDropRecord(AppendDropRecord(nil, &kd))
		if err != nil || !reflect.DeepEqual(normTimes(got), normTimes(kd)) {
			t.Errorf("drop: got %+v, %v\nwant %+v", got, err, kd)
		}
	}
	for _, l := range []LossNotice{{}, {Time: recT0, Netns: "hxq", Cause: "enobufs", Count: 1 << 40}} {
		got, err := ParseLossRecord(AppendLossRecord(nil, &l))
		if err != nil || !reflect.DeepEqual(normTimes(got), normTimes(l)) {
			t.Errorf("loss: got %+v, %v\nwant %+v", got, err, l)
		}
	}
	for _, n := range []InterfaceName{{}, {Netns: "hxq", Index: 4294967295, Name: "veth-long-name"}} {
		got, err := ParseInterfaceRecord(AppendInterfaceRecord(nil, &n))
		if err != nil || got != n {
			t.Errorf("interface: got %+v, %v\nwant %+v", got, err, n)
		}
	}
	for _, s := range []RulesetSnapshot{{}, {Time: recT0, Netns: "hxq", Text: "table inet f { # handle 1\n}\n"}} {
		got, err := ParseRulesetRecord(AppendRulesetRecord(nil, &s))
		if err != nil || !reflect.DeepEqual(normTimes(got), normTimes(s)) {
			t.Errorf("ruleset: got %+v, %v\nwant %+v", got, err, s)
		}
	}
}

// TestRecordErrors: every truncation of a record fails (none of them
// decodes as something else), an unknown version is refused, and bytes
// appended by a later version of the same format are ignored.
func TestRecordErrors(t *testing.T) {
	ev := recordTraces()["full"]
	b := AppendTraceRecord(nil, &ev)
	for n := 0; n < len(b); n++ {
		if _, err := ParseTraceRecord(b[:n]); err == nil {
			t.Errorf("a record cut to %d of %d bytes decodes", n, len(b))
		}
	}
	newer := append([]byte{RecordVersion + 1}, b[1:]...)
	if _, err := ParseTraceRecord(newer); !errors.Is(err, errRecordVersion) {
		t.Errorf("version %d: error %v, want an unknown version", RecordVersion+1, err)
	}
	got, err := ParseTraceRecord(append(bytes.Clone(b), 1, 2, 3))
	if err != nil || !reflect.DeepEqual(normTimes(got), normTimes(ev)) {
		t.Errorf("with appended fields: %+v, %v", got, err)
	}
	kd := KernelDrop{Time: recT0, Netns: "x", Network: []byte{1}}
	db := AppendDropRecord(nil, &kd)
	for n := 0; n < len(db); n++ {
		if _, err := ParseDropRecord(db[:n]); err == nil {
			t.Errorf("a drop cut to %d of %d bytes decodes", n, len(db))
		}
	}
	// A byte string that claims more than is there.
	huge := []byte{RecordVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := ParseTraceRecord(huge); err == nil {
		t.Error("a string of 4 GB in 7 bytes decodes")
	}
}

// FuzzRecords: any bytes decode as each record kind or fail, without a
// panic; what decodes encodes and decodes again to the same value.
func FuzzRecords(f *testing.F) {
	for _, ev := range recordTraces() {
		f.Add(AppendTraceRecord(nil, &ev))
	}
	kd := KernelDrop{Time: recT0, Netns: "x", Reason: "NO_SOCKET", Network: []byte{0x45}}
	f.Add(AppendDropRecord(nil, &kd))
	f.Add(AppendLossRecord(nil, &LossNotice{Time: recT0, Netns: "n", Cause: "shed", Count: 3}))
	f.Add(AppendInterfaceRecord(nil, &InterfaceName{Netns: "n", Index: 2, Name: "eth0"}))
	f.Add(AppendRulesetRecord(nil, &RulesetSnapshot{Netns: "n", Text: "table ip t {\n}\n"}))
	var parser RecordParser // one for all inputs, as a worker has: its strings outlive each record
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, kind := range []capture.CustomKind{capture.CustomTrace, capture.CustomDrop, capture.CustomLoss} {
			c := capture.CustomRecord{Kind: kind, Payload: bytes.Clone(b)}
			want, wantOK, wantErr := ParseRecorded(&c)
			var ev TraceEvent
			got, ok, err := parser.ParseInto(&c, &ev)
			if ok != wantOK || fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
				t.Fatalf("kind %d: RecordParser gives %+v, %v, %v; ParseRecorded %+v, %v, %v", kind, got, ok, err, want, wantOK, wantErr)
			}
		}
		if ev, err := ParseTraceRecord(b); err == nil {
			again, err := ParseTraceRecord(AppendTraceRecord(nil, &ev))
			if err != nil || !reflect.DeepEqual(normTimes(again), normTimes(ev)) {
				t.Fatalf("trace event does not survive a round trip: %+v, %v", again, err)
			}
		}
		if kd, err := ParseDropRecord(b); err == nil {
			again, err := ParseDropRecord(AppendDropRecord(nil, &kd))
			if err != nil || !reflect.DeepEqual(normTimes(again), normTimes(kd)) {
				t.Fatalf("drop does not survive a round trip: %+v, %v", again, err)
			}
		}
		if l, err := ParseLossRecord(b); err == nil {
			if again, err := ParseLossRecord(AppendLossRecord(nil, &l)); err != nil || !reflect.DeepEqual(normTimes(again), normTimes(l)) {
				t.Fatalf("loss notice does not survive a round trip: %+v, %v", again, err)
			}
		}
		if n, err := ParseInterfaceRecord(b); err == nil {
			if again, err := ParseInterfaceRecord(AppendInterfaceRecord(nil, &n)); err != nil || again != n {
				t.Fatalf("interface name does not survive a round trip: %+v, %v", again, err)
			}
		}
		if s, err := ParseRulesetRecord(b); err == nil {
			if again, err := ParseRulesetRecord(AppendRulesetRecord(nil, &s)); err != nil || again.Text != s.Text || again.Netns != s.Netns {
				t.Fatalf("ruleset does not survive a round trip: %+v, %v", again, err)
			}
		}
	})
}
