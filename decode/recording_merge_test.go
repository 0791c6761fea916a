package decode

import (
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// TestRecordingTakeMerged: a merge's time shift and namespace rename
// reach what the records carry, names and rulesets included.
func TestRecordingTakeMerged(t *testing.T) {
	r := NewRecording()
	shift := 1500 * time.Microsecond
	rec := func(kind capture.CustomKind, payload []byte) *capture.CustomRecord {
		return &capture.CustomRecord{Kind: kind, Netns: "alpha:hxa", Payload: payload, Shift: shift, Renamed: true}
	}
	name := InterfaceName{Netns: "hxa", Index: 7, Name: "veth0"}
	if _, err := r.TakeRecord(rec(capture.CustomInterface, AppendInterfaceRecord(nil, &name))); err != nil {
		t.Fatal(err)
	}
	if r.IfName("alpha:hxa", 7) != "veth0" || r.IfName("hxa", 7) != "" {
		t.Errorf("interface name kept under the wrong namespace")
	}
	rs := RulesetSnapshot{Time: recT0, Netns: "hxa", Text: "table inet f {\n}\n"}
	if _, err := r.TakeRecord(rec(capture.CustomRuleset, AppendRulesetRecord(nil, &rs))); err != nil {
		t.Fatal(err)
	}
	if got := r.Rulesets(); got[0].Netns != "alpha:hxa" || !got[0].Time.Equal(recT0.Add(shift)) {
		t.Errorf("ruleset %+v", got[0])
	}
	ev := TraceEvent{Trace: nflog.Trace{Netns: "hxa", Time: recT0, ID: 3, Table: "f", Chain: "input", Handle: 2, Type: nflog.TraceRule}}
	got, err := r.TakeRecord(rec(capture.CustomTrace, AppendTraceRecord(nil, &ev)))
	if err != nil || got.Trace.Netns != "alpha:hxa" || !got.Trace.Time.Equal(recT0.Add(shift)) {
		t.Errorf("trace %+v, %v", got.Trace, err)
	}
	kd := KernelDrop{Time: recT0, Netns: "hxa", Reason: "NO_SOCKET"}
	got, err = r.TakeRecord(rec(capture.CustomDrop, AppendDropRecord(nil, &kd)))
	if err != nil || got.Drop.Netns != "alpha:hxa" || !got.Drop.Time.Equal(recT0.Add(shift)) {
		t.Errorf("drop %+v, %v", got.Drop, err)
	}
	l := LossNotice{Time: recT0, Cause: "shed"}
	c := rec(capture.CustomLoss, AppendLossRecord(nil, &l))
	c.Netns, c.Renamed = "", false // a loss of every namespace keeps ""
	got, err = r.TakeRecord(c)
	if err != nil || got.Loss.Netns != "" || !got.Loss.Time.Equal(recT0.Add(shift)) {
		t.Errorf("loss %+v, %v", got.Loss, err)
	}
}
