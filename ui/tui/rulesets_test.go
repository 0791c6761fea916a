package tui

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/hooktrace/hooktrace/decode"
)

// TestRulesetsView opens a recorded incident, selects a dropped packet
// and presses R: the view shows its namespace's recorded ruleset with the
// dropping rule marked, scrolls, and closes with esc; a file without
// rulesets, or a model without them, says so instead.
func TestRulesetsView(t *testing.T) {
	m := loadIncident(t, writeIncident(t, 3000))
	keys(m, "/")
	typeText(m, "outcome == dropped and icmp")
	keys(m, "enter", "home")
	if m.viewLen() == 0 {
		t.Fatal("no dropped ICMP packet")
	}
	keys(m, "R")
	if !m.rulesets {
		t.Fatalf("R opened nothing: %q", m.message)
	}
	screen := m.Render()
	if !strings.Contains(screen, "# namespace hxbench, 2026-01-02 12:00:00 UTC") {
		t.Errorf("no heading:\n%s", screen)
	}
	var marked []string
	for _, l := range strings.Split(screen, "\n") {
		if strings.HasPrefix(l, rulesetMark) {
			marked = append(marked, l)
		}
	}
	if len(marked) != 1 || !strings.Contains(marked[0], "icmp type echo-request") || !strings.HasSuffix(strings.TrimSpace(marked[0]), "drop # handle 7") {
		t.Errorf("marked lines %q in\n%s", marked, screen)
	}
	for _, l := range strings.Split(screen, "\n") {
		if n := ansi.StringWidth(l); n > 120 {
			t.Errorf("line of %d cells: %q", n, l)
		}
	}
	// In a short window the view opens on the marked rule, and scrolls.
	keys(m, "esc")
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 6})
	keys(m, "R")
	if screen := m.Render(); !strings.Contains(screen, rulesetMark) || strings.Contains(screen, "# namespace hxbench") {
		t.Errorf("a short view opens elsewhere than on the marked rule:\n%s", screen)
	}
	keys(m, "home")
	if screen := m.Render(); !strings.Contains(screen, "# namespace hxbench") {
		t.Errorf("home shows no heading:\n%s", screen)
	}
	keys(m, "end")
	if screen := m.Render(); !strings.Contains(screen, "\n  }"+strings.Repeat(" ", 117)+"\n") { // the table's end, padded
		t.Errorf("end shows no end of the ruleset:\n%s", screen)
	}
	keys(m, "esc")
	if m.rulesets || strings.Contains(m.Render(), rulesetMark) {
		t.Error("esc left the view open")
	}

	// A source that cannot list them (a live one whose nft fails) says
	// why, on R and after a save.
	m.opt.Incident.(*recordingSource).rulesetErr = errors.New("list the ruleset of namespace \"hxbench\": nft gave no answer")
	keys(m, "R")
	if m.rulesets || !strings.Contains(m.message, "nft gave no answer") {
		t.Errorf("R with a failing source: open %v, message %q", m.rulesets, m.message)
	}
	saveAs(t, m, "W", filepath.Join(t.TempDir(), "j.pcapng"))
	if !strings.Contains(m.message, "written to") || !strings.Contains(m.message, "; ruleset left out: list the ruleset of namespace \"hxbench\": nft gave no answer") {
		t.Errorf("save with a failing source: %q", m.message)
	}
	// No packet selected.
	keys(m, "/")
	m.input.SetValue("port 1") // in place of the filter shown
	keys(m, "enter", "R")
	if m.rulesets || !strings.Contains(m.message, "no packet selected") {
		t.Errorf("R with no packet: open %v, message %q", m.rulesets, m.message)
	}

	// Without rulesets to show.
	bare := newTestModel(80, 24, nil)
	keys(bare, "R")
	if bare.rulesets || !strings.Contains(bare.message, "no rulesets") {
		t.Errorf("a model without rulesets: open %v, message %q", bare.rulesets, bare.message)
	}
}

// TestDroppingRule finds a dropping rule's line by table and handle, not
// a chain's or another table's with the same handle.
func TestDroppingRule(t *testing.T) {
	text := "table ip nat { # handle 1\n\tchain pre { # handle 2\n\t\tdnat to 10.0.0.1 # handle 2\n\t}\n}\ntable inet filter { # handle 3\n\tchain input { # handle 2\n\t\ttcp dport 22 drop # handle 2\n\t}\n}\n"
	for _, tc := range []struct {
		d    decode.Drop
		want int
	}{
		{decode.Drop{Family: "inet", Table: "filter", Handle: 2}, 7},
		{decode.Drop{Family: "ip", Table: "nat", Handle: 2}, 2},
		{decode.Drop{Family: "inet", Table: "filter", Handle: 9}, -1},
		{decode.Drop{Family: "ip", Table: "filter", Handle: 2}, -1},
	} {
		if got := droppingRule(text, &tc.d); got != tc.want {
			t.Errorf("%+v: line %d, want %d", tc.d, got, tc.want)
		}
	}
}
