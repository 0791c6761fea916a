package ui

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
)

// JourneyPrinter writes journeys as they close.
type JourneyPrinter interface {
	Journey(j *decode.Journey) error
}

var (
	ndjsonJourneyScratch = sync.Pool{New: func() any { return NewNDJSON(nil) }}
	textJourneyScratch   = sync.Pool{New: func() any { return NewText(nil, nil) }}
)

// Journey writes a {"type":"journey",...} record (schema in README.md).
// It may be called from several goroutines.
func (p *NDJSON) Journey(jr *decode.Journey) error {
	s := ndjsonJourneyScratch.Get().(*NDJSON)
	s.w = p.w
	err := s.journey(jr, nil)
	s.w = nil
	ndjsonJourneyScratch.Put(s)
	return err
}

// PacketMember appends to dst the value of the "packet" member that
// Journey writes for a journey whose first sighting is f (a frame with
// bytes). A goroutine that prints many journeys can render their packets
// this way one after another, before the rest of each (JourneyWithPacket):
// decoding them in a row keeps the decoder's memory in cache. Not for use
// from several goroutines at once.
func (p *NDJSON) PacketMember(dst []byte, f capture.Frame) []byte {
	return p.appendTo(dst, func() { p.packetValue(f) })
}

// appendTo runs write with p's buffer being dst itself (no copy), and
// returns dst with what write wrote.
func (p *NDJSON) appendTo(dst []byte, write func()) []byte {
	own := p.j.b
	p.j.b, p.j.comma = dst, false
	write()
	dst, p.j.b = p.j.b, own[:0]
	return dst
}

// packetValue writes the value of a journey's "packet" member: the
// members of a packet record for f, decoded now.
func (p *NDJSON) packetValue(f capture.Frame) {
	p.j.open('{')
	p.packetMembers(p.dec().Decode(f))
	p.j.close('}')
}

// JourneyWithPacket is Journey with the value of the "packet" member
// made already by PacketMember for the journey's first sighting (nil:
// made now, as Journey does). Not for use from several goroutines at
// once.
func (p *NDJSON) JourneyWithPacket(jr *decode.Journey, packet []byte) error {
	return p.journey(jr, packet)
}

// AppendJourneyWithPacket is JourneyWithPacket appending the record to
// dst, and returning it, rather than writing it: a goroutine that
// gathers many records in one buffer saves copying each. Not for use
// from several goroutines at once.
func (p *NDJSON) AppendJourneyWithPacket(dst []byte, jr *decode.Journey, packet []byte) []byte {
	return p.appendTo(dst, func() { p.journeyRecord(jr, packet) })
}

// journey writes a journey record; packet, if not nil, is the value of
// its "packet" member (PacketMember).
func (p *NDJSON) journey(jr *decode.Journey, packet []byte) error {
	p.j.reset()
	p.journeyRecord(jr, packet)
	_, err := p.w.Write(p.j.b)
	return err
}

// journeyRecord appends a journey record, newline included, to p.j.
func (p *NDJSON) journeyRecord(jr *decode.Journey, packet []byte) {
	j := &p.j
	j.open('{')
	j.plain("type", "journey")
	j.Uint("id", jr.ID)
	p.time("first", jr.First)
	p.time("last", jr.Last)
	switch {
	case packet != nil:
		j.key("packet")
		j.b = append(j.b, packet...)
	case len(jr.Frame.Data) > 0:
		j.key("packet")
		p.packetValue(jr.Frame)
	}
	j.BeginList("steps")
	for i := range jr.Steps {
		p.step(&jr.Steps[i])
	}
	j.EndList()
	j.plain("outcome", string(jr.Outcome))
	if jr.LastSeen != "" {
		j.Str("last_seen", jr.LastSeen)
	}
	if jr.Incomplete {
		j.Bool("incomplete", true)
	}
	if d := jr.Drop; d != nil {
		j.key("drop")
		j.open('{')
		j.plain("by", d.By)
		j.Str("netns", d.Netns)
		strIf(j, "hook", d.Hook)
		strIf(j, "family", d.Family)
		strIf(j, "table", d.Table)
		strIf(j, "chain", d.Chain)
		if d.Handle != 0 {
			j.Uint("handle", d.Handle)
		}
		if d.RuleNumber != 0 {
			j.Uint("rule_number", uint64(d.RuleNumber))
		}
		strIf(j, "rule", d.Rule)
		strIf(j, "reason", d.Reason)
		j.Str("explanation", d.Explanation)
		strIf(j, "hint", d.Hint)
		if d.Probable {
			j.Bool("probable", true)
		}
		j.close('}')
	}
	j.close('}')
	j.b = append(j.b, '\n')
}

// time writes a time member, RFC 3339 in UTC with nine fraction digits.
func (p *NDJSON) time(k string, t time.Time) {
	p.j.key(k)
	p.j.b = append(p.clock.appendRFC3339(append(p.j.b, '"'), t), '"')
}

func strIf(j *jsonBuf, k, v string) {
	if v != "" {
		j.Str(k, v)
	}
}

func (p *NDJSON) step(st *decode.Step) {
	j := &p.j
	j.BeginObject()
	p.time("time", st.Time)
	j.Str("netns", st.Netns)
	j.plain("kind", string(st.Kind))
	strIf(j, "iface", st.Iface)
	if st.Dir != "" {
		j.plain("dir", st.Dir)
	}
	if st.Hook != "" {
		j.plain("hook", st.Hook)
	}
	if st.Kind == decode.StepHook {
		edge := "leave"
		if st.First {
			edge = "enter"
		}
		j.plain("edge", edge)
	}
	strIf(j, "family", st.Family)
	strIf(j, "table", st.Table)
	strIf(j, "chain", st.Chain)
	if st.HasPriority {
		j.Int("priority", int64(st.Priority))
	}
	if st.Handle != 0 {
		j.Uint("handle", st.Handle)
	}
	if st.RuleNumber != 0 {
		j.Uint("rule_number", uint64(st.RuleNumber))
	}
	strIf(j, "rule", st.Rule)
	strIf(j, "verdict", st.Verdict)
	strIf(j, "jump_target", st.JumpTarget)
	switch st.Kind {
	case decode.StepNAT, decode.StepEncap, decode.StepDecap:
		writeEndpoints(j, "before", st.Before)
		writeEndpoints(j, "after", st.After)
	}
	strIf(j, "tunnel", st.Tunnel)
	if st.VNI != 0 {
		j.Uint("vni", uint64(st.VNI))
	}
	strIf(j, "reason", st.Reason)
	strIf(j, "location", st.Location)
	strIf(j, "prefix", st.Prefix)
	if r := st.Route; r != nil {
		j.key("route")
		j.open('{')
		j.plain("kind", r.Kind)
		strIf(j, "table", r.Table)
		strIf(j, "rule", r.Rule)
		strIf(j, "route", r.Route)
		if r.Gateway.IsValid() {
			j.Str("gateway", r.Gateway.String())
		}
		strIf(j, "dev", r.Dev)
		if r.PrefSrc.IsValid() {
			j.Str("prefsrc", r.PrefSrc.String())
		}
		strIf(j, "error", r.Error)
		j.close('}')
	}
	strIf(j, "detail", st.Detail)
	j.EndObject()
}

func writeEndpoints(j *jsonBuf, k string, e *decode.Endpoints) {
	if e == nil || !e.Src.IsValid() {
		return
	}
	j.key(k)
	j.open('{')
	var buf [64]byte // an address with its port, made without a string
	j.key("src")
	j.b = appendJSONString(j.b, appendEndpoint(buf[:0], e.Src))
	j.key("dst")
	j.b = appendJSONString(j.b, appendEndpoint(buf[:0], e.Dst))
	j.close('}')
}

// appendEndpoint is endpoint appending to b.
func appendEndpoint(b []byte, a netip.AddrPort) []byte {
	if a.Port() == 0 {
		return a.Addr().AppendTo(b)
	}
	return a.AppendTo(b)
}

// endpoint prints an address with its port, or alone without one.
func endpoint(a netip.AddrPort) string {
	if a.Port() == 0 {
		return a.Addr().String()
	}
	return a.String()
}

// Journey writes the journey as a timeline: the packet, one line per
// step (hooks' leaving lines are left out: a hook entered and not left
// says enough), and the outcome with its explanation and hint.
func (t *Text) Journey(jr *decode.Journey) error {
	s := textJourneyScratch.Get().(*Text)
	s.w, s.loc = t.w, t.loc
	err := s.journey(jr)
	s.w, s.loc = nil, nil
	textJourneyScratch.Put(s)
	return err
}

func (t *Text) journey(jr *decode.Journey) error {
	b := append(t.b[:0], "journey "...)
	b = strconv.AppendUint(b, jr.ID, 10)
	b = append(b, ": "...)
	if len(jr.Frame.Data) > 0 {
		b = t.dec().Decode(jr.Frame).AppendSummary(b)
	}
	b = append(b, '\n')
	nsw := 4
	for i := range jr.Steps {
		nsw = max(nsw, len(jr.Steps[i].Netns))
	}
	hook := "" // the hook whose header line was printed last
	for i := range jr.Steps {
		st := &jr.Steps[i]
		if st.Kind == decode.StepHook && !st.First {
			continue
		}
		switch {
		case st.Kind == decode.StepHook:
			hook = st.Netns + st.Hook
		case (st.Kind == decode.StepRule || st.Kind == decode.StepPolicy) && st.Hook != "" && st.Netns+st.Hook != hook:
			// A verdict at a hook hooktrace's log did not show entering
			// (its filter no longer matched after NAT): name the hook.
			hook = st.Netns + st.Hook
			hdr := decode.Step{Time: st.Time, Netns: st.Netns, Kind: decode.StepHook, Hook: st.Hook, First: true, Family: st.Family}
			b = t.stepLine(b, &hdr, nsw)
		case st.Kind == decode.StepCapture:
			hook = ""
		}
		b = t.stepLine(b, st, nsw)
	}
	b = append(b, outcomeText(jr)...)
	t.b = b
	_, err := t.w.Write(b)
	return err
}

// stepLine appends one line of a timeline.
func (t *Text) stepLine(b []byte, st *decode.Step, nsw int) []byte {
	{
		b = append(b, "  "...)
		b = st.Time.In(t.loc).AppendFormat(b, "15:04:05.000000")
		ns := st.Netns
		if ns == "" {
			ns = "-"
		}
		b = append(append(b, "  "...), ns...)
		b = append(b, strings.Repeat(" ", nsw-len(ns))...)
		b = append(append(b, "  "...), stepText(st)...)
		b = append(b, '\n')
	}
	return b
}

// stepText is one step of a timeline.
func stepText(st *decode.Step) string {
	switch st.Kind {
	case decode.StepCapture:
		if st.Iface == "" { // a capture file that names no interface
			return strings.TrimSpace(fmt.Sprintf("%-12s %s", "captured", st.Dir))
		}
		return fmt.Sprintf("%-12s %s %s", "device", st.Iface, st.Dir)
	case decode.StepHook:
		return fmt.Sprintf("%-12s %s", strings.ToUpper(st.Hook), familyNote(st.Family))
	case decode.StepRule:
		s := fmt.Sprintf("%-12s %s %s %s%s ", "", st.Family, st.Table, st.Chain, prioNote(st))
		switch {
		case st.RuleNumber != 0:
			s += fmt.Sprintf("rule %d: ", st.RuleNumber)
		case st.Handle != 0:
			s += fmt.Sprintf("handle %d: ", st.Handle)
		}
		s += st.Rule + "  -> " + strings.ToUpper(st.Verdict)
		if st.JumpTarget != "" {
			s += " " + st.JumpTarget
		}
		return s
	case decode.StepPolicy:
		return fmt.Sprintf("%-12s %s %s %s%s policy  -> %s", "", st.Family, st.Table, st.Chain, prioNote(st), strings.ToUpper(st.Verdict))
	case decode.StepRoute:
		return fmt.Sprintf("%-12s %s", "route", routeText(st.Route))
	case decode.StepNAT:
		if st.Before == nil || st.After == nil {
			return "nat"
		}
		return fmt.Sprintf("%-12s %s > %s  =>  %s > %s  (%s)", "nat", endpoint(st.Before.Src), endpoint(st.Before.Dst), endpoint(st.After.Src), endpoint(st.After.Dst), st.Detail)
	case decode.StepEncap, decode.StepDecap:
		s := fmt.Sprintf("%-12s %s", st.Kind, strings.ToUpper(st.Tunnel))
		if st.VNI != 0 {
			s += fmt.Sprintf(" vni %d", st.VNI)
		}
		if st.After != nil && st.After.Src.IsValid() {
			s += fmt.Sprintf(", outer %s > %s", endpoint(st.After.Src), endpoint(st.After.Dst))
		}
		return s
	case decode.StepNFLOG:
		return fmt.Sprintf("%-12s %s log %q", strings.ToUpper(st.Hook), familyNote(st.Family), st.Prefix)
	case decode.StepDrop:
		s := fmt.Sprintf("%-12s %s at %s", "kernel drop", st.Reason, st.Location)
		if st.Iface != "" {
			s += " (" + st.Iface + ")"
		}
		if st.Detail != "" {
			s += " [" + st.Detail + "]"
		}
		return s
	case decode.StepICMPError, decode.StepReset:
		return fmt.Sprintf("%-12s %s", "answer", st.Detail)
	}
	return string(st.Kind)
}

func familyNote(f string) string {
	if f == "bridge" {
		return "(bridge)"
	}
	return ""
}

func prioNote(st *decode.Step) string {
	if !st.HasPriority {
		return ""
	}
	return fmt.Sprintf(" (prio %d)", st.Priority)
}

// routeText says what the kernel decided.
func routeText(r *decode.RouteStep) string {
	if r == nil {
		return ""
	}
	var s string
	switch r.Kind {
	case "local":
		s = "local delivery"
	case "forward":
		s = "forward"
	case "output":
		s = "output"
	case "error":
		return "no route: " + r.Error
	default:
		s = r.Kind
	}
	if r.Dev != "" {
		s += " via " + r.Dev
	}
	if r.Gateway.IsValid() {
		s += " gateway " + r.Gateway.String()
	}
	var why []string
	if r.Table != "" {
		why = append(why, "table "+r.Table)
	}
	if r.Rule != "" {
		why = append(why, "rule "+r.Rule)
	}
	if r.Route != "" {
		why = append(why, "route "+r.Route)
	}
	if len(why) > 0 {
		s += " (" + strings.Join(why, "; ") + ")"
	}
	return s
}

// outcomeText is the timeline's last lines: how it ended, why, and what
// to change.
func outcomeText(jr *decode.Journey) string {
	var b strings.Builder
	switch jr.Outcome {
	case decode.OutcomeDropped, decode.OutcomeRejected:
		if d := jr.Drop; d != nil {
			fmt.Fprintf(&b, "%s\n", d.Explanation)
			if d.Hint != "" {
				fmt.Fprintf(&b, "hint: %s\n", d.Hint)
			}
		} else {
			fmt.Fprintf(&b, "%s\n", strings.ToUpper(string(jr.Outcome)))
		}
	case decode.OutcomeUnknown:
		fmt.Fprintf(&b, "UNKNOWN: last seen in %s\n", jr.LastSeen)
	default:
		fmt.Fprintf(&b, "%s\n", strings.ToUpper(string(jr.Outcome)))
	}
	if jr.Incomplete {
		b.WriteString("(incomplete: the kernel reported lost events while this packet was traced)\n")
	}
	return b.String()
}
