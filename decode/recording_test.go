package decode

import (
	"strings"
	"testing"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// TestRecordingTake reads back each kind of record as a recording holds
// them: names and rulesets are kept, the rest is returned, and a damaged
// or unknown record is an error that changes nothing.
func TestRecordingTake(t *testing.T) {
	r := NewRecording()
	name := InterfaceName{Netns: "hxa", Index: 7, Name: "veth0"}
	if got, err := r.Take(capture.CustomInterface, AppendInterfaceRecord(nil, &name)); err != nil || got != (Recorded{}) {
		t.Fatalf("interface record: %+v, %v", got, err)
	}
	rs := RulesetSnapshot{Time: recT0, Netns: "hxa", Text: "table inet f {\n}\n"}
	if _, err := r.Take(capture.CustomRuleset, AppendRulesetRecord(nil, &rs)); err != nil {
		t.Fatal(err)
	}
	ev := TraceEvent{Trace: nflog.Trace{Netns: "hxa", Time: recT0, ID: 3, Table: "f", Chain: "input", Handle: 2, Type: nflog.TraceRule}, Rule: "tcp dport 22 drop"}
	if got, err := r.Take(capture.CustomTrace, AppendTraceRecord(nil, &ev)); err != nil || got.Trace == nil || got.Trace.Rule != ev.Rule {
		t.Errorf("trace record: %+v, %v", got, err)
	}
	kd := KernelDrop{Time: recT0, Netns: "hxa", Ifindex: 7, Reason: "NO_SOCKET"}
	if got, err := r.Take(capture.CustomDrop, AppendDropRecord(nil, &kd)); err != nil || got.Drop == nil || got.Drop.Reason != "NO_SOCKET" {
		t.Errorf("drop record: %+v, %v", got, err)
	}
	l := LossNotice{Time: recT0, Netns: "hxa", Cause: "enobufs", Count: 2}
	if got, err := r.Take(capture.CustomLoss, AppendLossRecord(nil, &l)); err != nil || got.Loss == nil || got.Loss.Count != 2 {
		t.Errorf("loss record: %+v, %v", got, err)
	}
	if _, err := r.Take(capture.CustomInterface, []byte{99}); err == nil || !strings.Contains(err.Error(), "record skipped") {
		t.Errorf("a record of an unknown version: %v", err)
	}
	if _, err := r.Take(capture.CustomKind(42), nil); err == nil {
		t.Error("an unknown kind is taken")
	}

	if got := r.IfName("hxa", 7); got != "veth0" {
		t.Errorf("IfName = %q", got)
	}
	f := capture.Frame{Netns: "hxa", Iface: "veth0"}
	r.FillIndex(&f)
	if f.Ifindex != 7 {
		t.Errorf("FillIndex gave %d", f.Ifindex)
	}
	if got := r.Rulesets(); len(got) != 1 || got[0].Text != rs.Text {
		t.Errorf("Rulesets = %+v", got)
	}
}
