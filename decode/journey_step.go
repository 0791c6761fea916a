package decode

import "github.com/hooktrace/hooktrace/capture"

// stepWhat is what a journey's step says beyond when and where it was, on
// which device, and its few words more: a Step without Time, Netns, Iface
// and Detail. The observations of one rule, hook or direction share one
// (a StepTable keeps them), so an observation is small to copy and to
// keep while its journey is open.
type stepWhat struct {
	Kind        StepKind
	Dir         string
	Hook        string
	First       bool
	Family      string
	Table       string
	Chain       string
	Priority    int
	HasPriority bool
	Handle      uint64
	RuleNumber  int
	Rule        string
	Verdict     string
	JumpTarget  string
	Reason      string
	Location    string
	Route       *RouteStep
	Prefix      string
	// rank and prio place the step within its namespace's path (rankOf):
	// get sets them.
	rank int
	prio int64
}

// sameStep says whether two steps say the same: compared in value, for
// each worker reading records on replay has a StepTable of its own.
func sameStep(a, b *stepWhat) bool { return a == b || *a == *b }

// drops says whether the step ends the packet: a kernel drop, or a
// rule or policy's drop verdict.
func (w *stepWhat) drops() bool {
	return w.Kind == StepDrop || (w.Kind == StepRule || w.Kind == StepPolicy) && w.Verdict == "drop"
}

// fullStep puts the observation's step together.
func (o *obs) fullStep() Step {
	w := o.step
	return Step{
		Time: o.at, Netns: o.netns, Kind: w.Kind, Iface: o.iface, Dir: w.Dir,
		Hook: w.Hook, First: w.First, Family: w.Family, Table: w.Table, Chain: w.Chain,
		Priority: w.Priority, HasPriority: w.HasPriority, Handle: w.Handle, RuleNumber: w.RuleNumber,
		Rule: w.Rule, Verdict: w.Verdict, JumpTarget: w.JumpTarget,
		Reason: w.Reason, Location: w.Location, Route: w.Route, Prefix: w.Prefix, Detail: o.detail(),
	}
}

// captureSteps describe frames captured on a device, by their direction.
// They are shared: never changed.
var captureSteps = func() (s [capture.DirOut + 1]stepWhat) {
	for _, d := range []capture.Direction{capture.DirUnknown, capture.DirIn, capture.DirOut} {
		s[d] = newCaptureStep(d)
	}
	return s
}()

// captureStep describes a frame captured on a device going way d.
func captureStep(d capture.Direction) *stepWhat {
	if int(d) < len(captureSteps) {
		return &captureSteps[d]
	}
	w := newCaptureStep(d)
	return &w
}

// newCaptureStep makes the description of a frame captured going way d.
func newCaptureStep(d capture.Direction) stepWhat {
	w := stepWhat{Kind: StepCapture, Dir: d.String()}
	w.rank, w.prio = rankOf(&w)
	return w
}

// StepTable keeps one copy of each description of a step that sightings
// read (a rule's table, chain, text and verdict; a hook; a drop's
// reason), for the observations of every journey to share. The zero
// value is ready; it is for one goroutine (the descriptions it gives may
// go to any).
type StepTable struct {
	whats map[stepWhat]*stepWhat
	// recent are the descriptions get gave last, looked at before the
	// map (which hashes every field): a packet's steps repeat those of
	// the packets before it.
	recent [8]*stepWhat
	next   int // where in recent the next one goes
	// stripped holds rule texts without their counters' values, by the
	// text with them; lastRule is the one asked for last.
	stripped map[string]string
	lastRule [2]string
}

// Bounds of a StepTable: when full, it starts again empty (what it gave
// stays valid).
const (
	maxTableSteps = 4096
	maxTableRules = 4096
)

// get returns a description equal to *w that never changes: t's copy
// (made now if it had none), or a new one for a nil t. It sets w's rank
// and prio first.
func (t *StepTable) get(w *stepWhat) *stepWhat {
	w.rank, w.prio = rankOf(w)
	if t == nil {
		c := *w
		return &c
	}
	for _, p := range t.recent {
		if p != nil && *p == *w {
			return p
		}
	}
	p, ok := t.whats[*w]
	if !ok {
		if t.whats == nil || len(t.whats) >= maxTableSteps {
			t.whats = make(map[stepWhat]*stepWhat, 64)
		}
		c := *w
		p = &c
		t.whats[c] = p
	}
	t.recent[t.next] = p
	t.next = (t.next + 1) % len(t.recent)
	return p
}

// withKind returns w of another kind: an ICMP error or TCP reset, seen
// as a frame or NFLOG message is.
func (t *StepTable) withKind(w *stepWhat, k StepKind) *stepWhat {
	c := *w
	c.Kind = k
	return t.get(&c)
}

// stripCounters is stripCounters, the result kept for the next time the
// same text comes.
func (t *StepTable) stripCounters(rule string) string {
	if t == nil {
		return stripCounters(rule)
	}
	if rule == t.lastRule[0] {
		return t.lastRule[1]
	}
	s, ok := t.stripped[rule]
	if !ok {
		s = stripCounters(rule)
		if t.stripped == nil || len(t.stripped) >= maxTableRules {
			t.stripped = make(map[string]string, 64)
		}
		t.stripped[rule] = s
	}
	t.lastRule = [2]string{rule, s}
	return s
}
