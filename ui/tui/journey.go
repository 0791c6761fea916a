package tui

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"charm.land/lipgloss/v2"

	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/ui"
)

// token is a piece of a journey path, with its style.
type token struct {
	text  string
	style *lipgloss.Style
}

// stepLineRE matches the step lines of ui's text timeline.
var stepLineRE = regexp.MustCompile(`^  \d\d:\d\d:\d\d\.\d{6}  `)

func (m *Model) journeyKey(s string) {
	d := m.ensureDetail()
	if d == nil {
		return
	}
	r := m.journeyRect()
	n := len(m.journeyLines(r.w))
	if cur, ok := move(s, d.jtop, max(1, n-(r.h-1)+1), r.h-1); ok {
		d.jtop = cur
	}
}

func (m *Model) journeyRect() rect {
	l := m.layout()
	if l.right == paneJourney {
		return l.rightRect
	}
	return l.detail
}

func (m *Model) journeyView(r rect) []string {
	out := []string{m.titleLine(paneJourney, paneNames[paneJourney], r.w)}
	d := m.ensureDetail()
	if d == nil {
		return pad(out, r)
	}
	lines := m.journeyLines(r.w)
	d.jtop = max(0, min(d.jtop, len(lines)-(r.h-1)))
	for i := d.jtop; i < min(len(lines), d.jtop+r.h-1); i++ {
		out = append(out, lines[i])
	}
	return pad(out, r)
}

// journeyLines draws the selected packet's journey: its path, one line
// per namespace visited, the drop box, and the timeline.
func (m *Model) journeyLines(w int) []string {
	d := &m.detail
	j := d.jour
	if j == nil {
		if m.loading {
			return wrap("No journey yet: a journey is assembled once nothing joined it for 2 s of capture time; it shows here when loading gets there.", w, "")
		}
		return wrap("No journey: journeys follow IP packets, and this frame carries none (ARP, or another non-IP frame).", w, "")
	}
	t := m.theme
	var out []string
	head := "journey " + strconv.FormatUint(j.ID, 10)
	if len(j.Frame.Data) > 0 {
		head += ": " + string(m.dec.Decode(j.Frame).AppendSummary(nil))
	}
	out = append(out, wrap(head, w, "  ")...)
	oc := strings.ToUpper(string(j.Outcome))
	if j.Outcome == decode.OutcomeUnknown && j.LastSeen != "" {
		oc += " (last seen in " + j.LastSeen + ")"
	}
	line := "outcome: " + t.outcomeStyle(j.Outcome).Render(oc)
	if j.Incomplete {
		line += t.warn.Render("  incomplete: events were lost while it was traced")
	}
	out = append(out, line, "")
	out = append(out, m.pathLines(j, w)...)
	out = append(out, "")
	if dr := j.Drop; dr != nil {
		body := dr.Explanation
		if dr.Hint != "" {
			body += "\nhint: " + dr.Hint
		}
		bw := max(10, w-4)
		var wrapped []string
		for _, l := range strings.Split(body, "\n") {
			wrapped = append(wrapped, wrap(l, bw, "  ")...)
		}
		box := t.box.Width(min(w, bw+4)).Render(strings.Join(wrapped, "\n"))
		out = append(out, strings.Split(box, "\n")...)
		out = append(out, "")
	}
	if !traced(j) {
		for _, l := range []string{
			"No netfilter tracing in this capture: the path shows only the devices where the packet was captured.",
			"To see each hook, chain and rule, the verdicts, NAT and why a packet stopped, capture with tracing:",
			"  hooktrace --trace [--netns NS,...] 'FILTER'",
			"  hooktrace explain [--netns NS,...] 'FILTER'   (waits for one packet and explains it)",
		} {
			out = append(out, wrap(l, w, "    ")...)
		}
		out = append(out, "")
	}
	out = append(out, t.title.Render("timeline"))
	var buf bytes.Buffer
	if err := ui.NewText(&buf, m.opt.Location).Journey(j); err == nil {
		for _, l := range strings.Split(buf.String(), "\n") {
			if stepLineRE.MatchString(l) {
				out = append(out, wrap(l, w, "                     ")...)
			}
		}
	}
	return out
}

// traced says whether anything beyond device captures saw the packet.
func traced(j *decode.Journey) bool {
	for _, st := range j.Steps {
		switch st.Kind {
		case decode.StepCapture, decode.StepNAT, decode.StepEncap, decode.StepDecap, decode.StepICMPError, decode.StepReset:
		default:
			return true
		}
	}
	return false
}

// pathLines draws the path: a line per stay in a namespace, its steps
// joined by arrows; a move to another namespace ends the line with ══▶.
func (m *Model) pathLines(j *decode.Journey, w int) []string {
	t := m.theme
	nsw := 2
	for _, st := range j.Steps {
		nsw = max(nsw, len(nsName(st.Netns)))
	}
	nsw = min(nsw, 14)
	var out []string
	var cur []token
	ns := ""
	flush := func(next bool) {
		if len(cur) == 0 {
			return
		}
		if next {
			cur = append(cur, token{text: "══▶"})
		}
		out = append(out, layoutTokens(fit(nsName(ns), nsw)+"  ", cur, w)...)
		cur = nil
	}
	left := leftHooks(j)
	for i := range j.Steps {
		st := &j.Steps[i]
		if st.Kind == decode.StepHook && !st.First {
			continue
		}
		if len(cur) > 0 && st.Netns != ns {
			flush(true)
		}
		ns = st.Netns
		tok := m.stepToken(st, left)
		if len(cur) > 0 {
			cur = append(cur, token{text: "─▶"})
		}
		cur = append(cur, tok...)
	}
	flush(false)
	_ = t
	return out
}

// leftHooks lists the hooks a packet was seen leaving, per namespace.
func leftHooks(j *decode.Journey) map[string]bool {
	m := map[string]bool{}
	for _, st := range j.Steps {
		if st.Kind == decode.StepHook && !st.First {
			m[st.Netns+"/"+st.Hook] = true
		}
	}
	return m
}

func nsName(ns string) string {
	if ns == "" {
		return "-"
	}
	return ns
}

// stepToken is one step of the path.
func (m *Model) stepToken(st *decode.Step, left map[string]bool) []token {
	t := m.theme
	good, bad := t.good, t.bad
	switch st.Kind {
	case decode.StepCapture:
		dev := st.Iface
		if dev == "" {
			dev = "captured"
		}
		return []token{{text: strings.TrimSpace(dev + " " + st.Dir)}}
	case decode.StepHook:
		h := strings.ToUpper(st.Hook)
		if st.Family == "bridge" {
			h = "bridge " + h
		}
		if left[st.Netns+"/"+st.Hook] {
			return []token{{text: h}, {text: "✓", style: &good}}
		}
		return []token{{text: h}}
	case decode.StepRule, decode.StepPolicy:
		what := st.Family + " " + st.Table + " " + st.Chain
		switch {
		case st.Kind == decode.StepPolicy:
			what += " policy"
		case st.RuleNumber != 0:
			what += " #" + strconv.Itoa(st.RuleNumber)
		case st.Handle != 0:
			what += " #" + strconv.FormatUint(st.Handle, 10)
		}
		if st.Rule != "" {
			what += "  " + st.Rule
		}
		v := strings.ToUpper(st.Verdict)
		switch strings.ToLower(st.Verdict) {
		case "accept":
			return []token{{text: what}, {text: "✓ " + v, style: &good}}
		case "drop", "reject":
			return []token{{text: what}, {text: "✗ " + v, style: &bad}}
		}
		if st.JumpTarget != "" {
			v += " " + st.JumpTarget
		}
		return []token{{text: what}, {text: "→ " + v}}
	case decode.StepRoute:
		s := "route: "
		if st.Route != nil {
			s += st.Route.Kind
			if st.Route.Dev != "" {
				s += " via " + st.Route.Dev
			}
			if st.Route.Table != "" {
				s += " (table " + st.Route.Table + ")"
			}
			if st.Route.Error != "" {
				s += " " + st.Route.Error
			}
		}
		return []token{{text: s}}
	case decode.StepNAT:
		if st.Before == nil || st.After == nil {
			return []token{{text: "NAT"}}
		}
		return []token{{text: fmt.Sprintf("NAT %s > %s ⇒ %s > %s", ep(st.Before.Src), ep(st.Before.Dst), ep(st.After.Src), ep(st.After.Dst))}}
	case decode.StepEncap, decode.StepDecap:
		s := string(st.Kind) + " " + strings.ToUpper(st.Tunnel)
		if st.VNI != 0 {
			s += " " + strconv.FormatUint(uint64(st.VNI), 10)
		}
		return []token{{text: s}}
	case decode.StepNFLOG:
		return []token{{text: "log " + strconv.Quote(st.Prefix)}}
	case decode.StepDrop:
		return []token{{text: "kernel drop " + st.Reason}, {text: "✗", style: &bad}}
	case decode.StepICMPError, decode.StepReset:
		return []token{{text: "answer: " + st.Detail}}
	}
	return []token{{text: string(st.Kind)}}
}

func ep(a interface{ String() string }) string {
	s := a.String()
	return strings.TrimSuffix(s, ":0")
}

// layoutTokens lays tokens out in lines of w cells after prefix,
// continuing lines indented by the prefix's width; a token too long for
// a line is cut.
func layoutTokens(prefix string, toks []token, w int) []string {
	indent := strings.Repeat(" ", len([]rune(prefix)))
	var out []string
	var b strings.Builder
	b.WriteString(prefix)
	used := len([]rune(prefix))
	for i, tk := range toks {
		tw := len([]rune(tk.text))
		sep := 0
		if i > 0 {
			sep = 1
		}
		if used+sep+tw > w && used > len(indent) {
			out = append(out, b.String())
			b.Reset()
			b.WriteString(indent)
			used = len(indent)
			sep = 0
		}
		text := tk.text
		if used+sep+tw > w {
			text = fit(text, max(1, w-used-sep))
			tw = len([]rune(text))
		}
		if sep == 1 {
			b.WriteByte(' ')
		}
		if tk.style != nil {
			b.WriteString(tk.style.Render(text))
		} else {
			b.WriteString(text)
		}
		used += sep + tw
	}
	return append(out, b.String())
}
