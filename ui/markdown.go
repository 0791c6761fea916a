package ui

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hooktrace/hooktrace/decode"
)

// MarkdownOptions configure WriteMarkdown.
type MarkdownOptions struct {
	// Location is the time zone of the times shown (nil: UTC).
	Location *time.Location
	// Recording names the pcapng file saved beside the summary; the
	// summary then says how to replay it. Empty: nothing is said.
	Recording string
}

// MarkdownPath is where the Markdown summary of a saved journey goes,
// beside its pcapng file: the name with .md in place of .pcapng or .pcap
// (or added).
func MarkdownPath(pcapng string) string {
	for _, ext := range []string{".pcapng", ".pcap"} {
		if base, ok := strings.CutSuffix(pcapng, ext); ok && base != "" && !strings.HasSuffix(base, "/") {
			return base + ".md"
		}
	}
	return pcapng + ".md"
}

// WriteMarkdown writes journeys as a Markdown summary to paste into an
// issue: for each, a table (outcome, packet, time, path, who dropped it,
// the kernel's reason), why it stopped, the rule's text and the hint as
// code blocks, and the timeline in a collapsed block.
func WriteMarkdown(w io.Writer, js []*decode.Journey, opt MarkdownOptions) error {
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	var b bytes.Buffer
	for i, j := range js {
		if i > 0 {
			b.WriteString("\n---\n\n")
		}
		if err := markdownJourney(&b, j, opt); err != nil {
			return err
		}
	}
	if opt.Recording != "" {
		fmt.Fprintf(&b, "\nThe packets, trace events and kernel drops behind this are in %s: %s replays %s.\n",
			mdInline(opt.Recording), mdInline("hooktrace -r "+shellWord(opt.Recording)+" --print"), map[bool]string{true: "them", false: "it"}[len(js) > 1])
	}
	_, err := w.Write(b.Bytes())
	return err
}

func markdownJourney(b *bytes.Buffer, j *decode.Journey, opt MarkdownOptions) error {
	summary := "journey " + strconv.FormatUint(j.ID, 10)
	if len(j.Frame.Data) > 0 {
		summary = string(decode.NewDecoder().Decode(j.Frame).AppendSummary(nil))
	}
	fmt.Fprintf(b, "### hooktrace: %s\n\n", outcomeHeadline(j))
	b.WriteString("| | |\n| --- | --- |\n")
	row := func(k, v string) { fmt.Fprintf(b, "| **%s** | %s |\n", k, v) }
	oc := string(j.Outcome)
	if j.Outcome == decode.OutcomeUnknown && j.LastSeen != "" {
		oc += " (last seen in " + j.LastSeen + ")"
	}
	if j.Incomplete {
		oc += " (incomplete: the kernel reported lost events while it was traced)"
	}
	row("Outcome", mdCell(oc))
	row("Packet", mdCode(summary))
	row("Seen", mdCell(fmt.Sprintf("%s, for %s", j.First.In(opt.Location).Format("2006-01-02 15:04:05.000000 MST"), j.Last.Sub(j.First))))
	if nss := pathNamespaces(j); len(nss) > 0 {
		var cells []string
		for _, ns := range nss {
			cells = append(cells, mdCode(nsName(ns)))
		}
		row("Namespaces", strings.Join(cells, " → "))
	}
	d := j.Drop
	if d != nil {
		row(map[bool]string{true: "Rejected by", false: "Dropped by"}[j.Outcome == decode.OutcomeRejected], mdCell(dropWhere(d)))
		if d.Probable {
			row("Match", "probable: the kernel drop was matched by time only")
		}
	}
	if reason, loc := kernelReason(j); reason != "" {
		v := mdCode(reason)
		if loc != "" {
			v += " at " + mdCode(loc)
		}
		row("Kernel reason", v)
	}
	b.WriteString("\n")
	writeMarkdownPath(b, j)
	if d != nil {
		if d.Explanation != "" {
			fmt.Fprintf(b, "**Why:** %s\n\n", mdText(d.Explanation))
		}
		if d.Rule != "" {
			b.WriteString("**Rule:**\n\n")
			mdBlock(b, "nft", d.Rule)
		}
		if d.Hint != "" {
			writeHint(b, d.Hint)
		}
	}
	var tl bytes.Buffer
	if err := NewText(&tl, opt.Location).Journey(j); err != nil {
		return err
	}
	fmt.Fprintf(b, "<details><summary>Timeline (%d steps)</summary>\n\n", len(j.Steps))
	mdBlock(b, "text", strings.TrimRight(tl.String(), "\n"))
	b.WriteString("</details>\n")
	return nil
}

// outcomeHeadline is a journey's title: its flow and how it ended.
func outcomeHeadline(j *decode.Journey) string {
	flow := j.Proto
	if j.Flow.Src.IsValid() {
		flow = strings.ToUpper(j.Proto) + " " + endpoint(j.Flow.Src) + " > " + endpoint(j.Flow.Dst)
	}
	switch j.Outcome {
	case decode.OutcomeDropped, decode.OutcomeRejected:
		where := ""
		if j.Drop != nil && j.Drop.Netns != "" {
			where = " in " + j.Drop.Netns
		}
		return mdText(flow + " " + string(j.Outcome) + where)
	case decode.OutcomeUnknown:
		return mdText(flow + ": lost from sight")
	}
	return mdText(flow + " " + string(j.Outcome))
}

// dropWhere says who dropped the packet, and where.
func dropWhere(d *decode.Drop) string {
	var s string
	switch d.By {
	case "rule":
		s = fmt.Sprintf("rule %s %s %s", d.Family, d.Table, d.Chain)
		switch {
		case d.RuleNumber != 0:
			s += fmt.Sprintf(" #%d", d.RuleNumber)
		case d.Handle != 0:
			s += fmt.Sprintf(" handle %d", d.Handle)
		}
	case "policy":
		s = fmt.Sprintf("policy of %s %s %s", d.Family, d.Table, d.Chain)
	default:
		s = d.By
	}
	if d.Netns != "" {
		s += " in namespace " + d.Netns
	}
	if d.Hook != "" {
		s += ", hook " + d.Hook
	}
	return s
}

// kernelReason is the kernel's drop reason and where it freed the
// packet: the drop's own, or the kernel drop step's.
func kernelReason(j *decode.Journey) (reason, location string) {
	if j.Drop != nil && j.Drop.Reason != "" {
		reason = j.Drop.Reason
	}
	for i := len(j.Steps) - 1; i >= 0; i-- {
		if st := &j.Steps[i]; st.Kind == decode.StepDrop && (reason == "" || st.Reason == reason) {
			return st.Reason, st.Location
		}
	}
	return reason, ""
}

// pathNamespaces lists the namespaces of the journey in the order it
// visited them, each once per visit.
func pathNamespaces(j *decode.Journey) []string {
	var out []string
	for i := range j.Steps {
		ns := j.Steps[i].Netns
		if len(out) == 0 || out[len(out)-1] != ns {
			out = append(out, ns)
		}
	}
	return out
}

// writeMarkdownPath lists, per namespace visited, what happened there.
func writeMarkdownPath(b *bytes.Buffer, j *decode.Journey) {
	type visit struct {
		ns    string
		items []string
	}
	var vs []visit
	for i := range j.Steps {
		st := &j.Steps[i]
		item := pathItem(st)
		if item == "" {
			continue
		}
		if len(vs) == 0 || vs[len(vs)-1].ns != st.Netns {
			vs = append(vs, visit{ns: st.Netns})
		}
		v := &vs[len(vs)-1]
		if len(v.items) == 0 || v.items[len(v.items)-1] != item {
			v.items = append(v.items, item)
		}
	}
	if len(vs) == 0 {
		return
	}
	b.WriteString("**Path:**\n\n")
	for i, v := range vs {
		fmt.Fprintf(b, "%d. %s: %s\n", i+1, mdInline(nsName(v.ns)), strings.Join(v.items, " → "))
	}
	b.WriteString("\n")
}

// pathItem is one step of the path list; "" for steps it leaves to the
// timeline (rules that let the packet on, hooks left, routes).
func pathItem(st *decode.Step) string {
	switch st.Kind {
	case decode.StepCapture:
		return mdText(st.Iface + " " + st.Dir)
	case decode.StepHook:
		if st.First {
			return strings.ToUpper(st.Hook)
		}
	case decode.StepRule, decode.StepPolicy:
		switch st.Verdict {
		case "drop", "reject":
			what := "rule"
			if st.Kind == decode.StepPolicy {
				what = "policy"
			}
			return mdText(fmt.Sprintf("✗ %s %s %s (%s)", what, st.Table, st.Chain, st.Verdict))
		}
	case decode.StepNAT:
		if st.Before != nil && st.After != nil {
			return mdText(fmt.Sprintf("NAT %s > %s ⇒ %s > %s", endpoint(st.Before.Src), endpoint(st.Before.Dst), endpoint(st.After.Src), endpoint(st.After.Dst)))
		}
	case decode.StepEncap, decode.StepDecap:
		s := st.Tunnel
		if st.VNI != 0 {
			s += fmt.Sprintf(" vni %d", st.VNI)
		}
		return mdText(string(st.Kind) + " " + s)
	case decode.StepDrop:
		return mdText("✗ kernel drop " + st.Reason)
	case decode.StepICMPError, decode.StepReset:
		return mdText("↩ " + st.Detail)
	case decode.StepNFLOG:
		return mdText(fmt.Sprintf("logged %q", st.Prefix))
	}
	return ""
}

// writeHint writes a hint: its sentences as text, its indented lines
// (commands to run) as a shell block.
func writeHint(b *bytes.Buffer, hint string) {
	var text, cmds []string
	for _, l := range strings.Split(hint, "\n") {
		if strings.HasPrefix(l, "  ") {
			cmds = append(cmds, strings.TrimSpace(l))
		} else if strings.TrimSpace(l) != "" {
			text = append(text, l)
		}
	}
	fmt.Fprintf(b, "**Hint:** %s\n\n", mdText(strings.Join(text, " ")))
	if len(cmds) > 0 {
		mdBlock(b, "sh", strings.Join(cmds, "\n"))
	}
}

func nsName(ns string) string {
	if ns == "" {
		return "(this namespace)"
	}
	return ns
}

// mdCell makes text safe in a table cell.
func mdCell(s string) string {
	return strings.ReplaceAll(mdText(s), "|", `\|`)
}

// mdText makes text safe in running Markdown: no line breaks, and the
// characters that would start markup escaped.
func mdText(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '<', '[', ']', '|':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdCode is s as inline code in a table cell: mdInline with pipes
// escaped (GitHub reads \| as a pipe in code in tables).
func mdCode(s string) string {
	return mdInline(strings.ReplaceAll(s, "|", `\|`))
}

// mdInline is s as inline code: fenced with one more backtick than the
// longest run inside.
func mdInline(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return fence + pad + s + pad + fence
}

// mdBlock writes a fenced code block, its fence longer than any run of
// backticks in the text.
func mdBlock(b *bytes.Buffer, lang, text string) {
	fence := strings.Repeat("`", max(3, longestRun(text, '`')+1))
	fmt.Fprintf(b, "%s%s\n%s\n%s\n\n", fence, lang, text, fence)
}

func longestRun(s string, c byte) int {
	best, n := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}

// shellWord quotes a file name for a shell command line when it needs it.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+:@,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
