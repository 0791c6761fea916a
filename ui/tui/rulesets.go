package tui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/ui"
)

// The rulesets view (R) shows the ruleset snapshots of the namespaces the
// selected packet's journey crossed (or of the packet's own namespace):
// a recording's, as `nft -a list ruleset` gave them when it started, or,
// live, as they are now. The rule that dropped the journey's packet is
// marked, and the view opens on it.

// rulesetMark is put before the rule that dropped the packet.
const rulesetMark = "▶ "

// openRulesets opens the rulesets view, or says why there is nothing to
// show.
func (m *Model) openRulesets() {
	if m.opt.Incident == nil {
		m.setMessage("no rulesets: only recordings of hooktrace --trace -w and live tracing have them")
		return
	}
	var namespaces []string
	var drop *decode.Drop
	if j, _ := m.selectedJourney(); j != nil {
		namespaces, drop = j.Namespaces(), j.Drop
	} else if r := m.selectedRow(); r >= 0 {
		namespaces = []string{m.st.strs[m.st.rows[r].netns]}
	}
	if len(namespaces) == 0 {
		m.setMessage("no packet selected: R shows the rulesets of the selected packet's namespaces")
		return
	}
	var lines []string
	mark := -1
	var failed []string
	for _, ns := range namespaces {
		snaps, err := m.opt.Incident.Rulesets(ns)
		if err != nil {
			failed = append(failed, strings.ReplaceAll(err.Error(), "\n", "; "))
		}
		for _, rs := range snaps {
			lines = append(lines, rulesetHeading(&rs))
			at := -1
			if drop != nil && drop.Netns == ns && drop.Handle != 0 {
				at = droppingRule(rs.Text, drop)
			}
			for i, l := range strings.Split(strings.TrimSuffix(rs.Text, "\n"), "\n") {
				prefix := "  "
				if i == at {
					prefix, mark = rulesetMark, len(lines)
				}
				lines = append(lines, prefix+strings.ReplaceAll(l, "\t", "  "))
			}
			lines = append(lines, "")
		}
	}
	switch {
	case len(lines) == 0 && len(failed) > 0:
		m.setMessage("%s", strings.Join(failed, "; "))
		return
	case len(lines) == 0:
		m.setMessage("no ruleset recorded for %s", namespaceList(namespaces))
		return
	}
	for _, f := range failed {
		lines = append(lines, "# "+f)
	}
	m.rulesets, m.rulesetLines, m.rulesetTop = true, lines, max(0, mark-2)
}

// rulesetHeading names a snapshot's namespace and time.
func rulesetHeading(rs *decode.RulesetSnapshot) string {
	return fmt.Sprintf("# %s, %s", ui.RulesetNamespace(rs.Netns), rs.Time.UTC().Format("2006-01-02 15:04:05 UTC"))
}

// droppingRule returns the line of text (a ruleset as nft -a lists it)
// holding the rule that dropped a packet: the one with its handle in its
// table; -1 when there is none.
func droppingRule(text string, d *decode.Drop) int {
	table := fmt.Sprintf("table %s %s {", d.Family, d.Table)
	suffix := fmt.Sprintf("# handle %d", d.Handle)
	in := false
	for i, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "table "):
			in = strings.HasPrefix(l, table)
		case in && strings.HasSuffix(l, suffix) && !strings.HasPrefix(strings.TrimSpace(l), "chain "):
			return i
		}
	}
	return -1
}

// namespaceList lists namespace names for a message, hooktrace's own
// ("") by that name.
func namespaceList(namespaces []string) string {
	names := slices.Clone(namespaces)
	for i, ns := range names {
		if ns == "" {
			names[i] = "hooktrace's own namespace"
		}
	}
	return strings.Join(names, ", ")
}

// rulesetsKey scrolls the rulesets view.
func (m *Model) rulesetsKey(s string) {
	if cur, ok := move(s, m.rulesetTop, len(m.rulesetLines), m.height-2); ok {
		m.rulesetTop = cur
	}
}

// rulesetsView shows the rulesets view.
func (m *Model) rulesetsView(r rect) []string {
	return m.pageView(" Rulesets (R or esc: back; ▶ marks the rule that dropped the packet)", m.rulesetLines, &m.rulesetTop, r)
}
