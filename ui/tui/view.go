package tui

import (
	"fmt"
	"path/filepath"
	"strings"

	tea "charm.land/bubbletea/v2"
)

// View draws the screen: the list, the detail panes, and the status or
// prompt line; help and statistics replace the panes.
func (m *Model) View() tea.View {
	v := tea.NewView(m.Render())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "hooktrace " + m.opt.Source
	return v
}

// Render returns the screen's text.
func (m *Model) Render() string {
	if m.width < 20 || m.height < 5 {
		return "hooktrace: the terminal is too small"
	}
	var lines []string
	switch {
	case m.help:
		lines = m.helpView()
	case m.stats:
		lines = m.statsView(rect{0, 0, m.width, m.height - 1})
	case m.rulesets:
		lines = m.rulesetsView(rect{0, 0, m.width, m.height - 1})
	default:
		lines = m.panes()
	}
	lines = append(lines, m.bottomLine())
	return strings.Join(lines, "\n")
}

func (m *Model) panes() []string {
	l := m.layout()
	var lines []string
	if l.list.h > 0 {
		lines = append(lines, m.listView(l.list)...)
	}
	if l.left < 0 {
		return lines
	}
	left := m.paneView(l.left, l.detail)
	if l.right < 0 {
		return append(lines, left...)
	}
	right := m.paneView(l.right, l.rightRect)
	for i := range left {
		lines = append(lines, left[i]+"│"+right[i])
	}
	return lines
}

func (m *Model) paneView(p pane, r rect) []string {
	switch p {
	case paneList:
		return m.listView(r)
	case paneLayers:
		return m.layersView(r)
	case paneHex:
		return m.hexView(r)
	}
	return m.journeyView(r)
}

// bottomLine is the prompt while one is open, else the status bar:
// source, loading progress, counts, filter and losses.
func (m *Model) bottomLine() string {
	w := m.width
	if m.mode != inputNone {
		label := map[inputMode]string{inputFilter: "filter: ", inputSearch: "search: ", inputGoto: "go to packet: ", inputSave: "save to: ", inputSaveJourney: "save journey to: "}[m.mode]
		if m.inputErr == "" {
			m.input.SetWidth(max(10, w-len(label)-2))
			return label + m.input.View()
		}
		// The error follows the text, on the same line.
		vw := len([]rune(m.input.Value())) + 1
		m.input.SetWidth(vw)
		return label + m.input.View() + "  " + m.theme.errText.Render(fit(m.inputErr, max(10, w-len(label)-vw-3)))
	}
	var parts []string
	parts = append(parts, m.opt.Source)
	switch {
	case m.loading && m.listed && m.total > 0:
		parts = append(parts, "journeys "+progressBar(m.read, m.total, 12))
	case m.loading && m.total > 0:
		parts = append(parts, progressBar(m.read, m.total, 12))
	case m.loading && m.opt.Live:
		parts = append(parts, "capturing")
	case m.loading:
		parts = append(parts, "loading")
	case m.loadErr != nil:
		parts = append(parts, "read error: "+m.loadErr.Error())
	case m.opt.Live:
		parts = append(parts, "capture ended")
	}
	parts = append(parts, fmt.Sprintf("%d packets", len(m.st.rows)))
	if m.filt != nil {
		parts = append(parts, fmt.Sprintf("filter: %s (%d shown)", m.filt.text, m.viewLen()))
	}
	if err := m.st.storeErr(); err != nil {
		parts = append(parts, err.Error())
	}
	if m.shed > 0 {
		parts = append(parts, fmt.Sprintf("%d shed by the UI", m.shed))
	}
	if m.opt.Counters != nil {
		for _, c := range m.opt.Counters() {
			if c.Value > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", c.Value, c.Name))
			}
		}
	}
	if pb := m.playbackStatus(); pb != "" {
		parts = append(parts, pb)
	}
	if m.paused {
		parts = append(parts, "PAUSED")
	}
	if m.message != "" {
		parts = append(parts, m.message)
	}
	parts = append(parts, "? help")
	line := " " + strings.Join(parts, " │ ")
	if len([]rune(line)) > w && parts[0] != filepath.Base(parts[0]) {
		// Short of room: the file's name without its directory.
		parts[0] = filepath.Base(parts[0])
		line = " " + strings.Join(parts, " │ ")
	}
	return m.theme.status.Render(fit(line, w))
}

// progressBar draws read of total as a bar with a percentage.
func progressBar(read, total int64, w int) string {
	f := min(1, float64(read)/float64(total))
	n := int(f * float64(w))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", w-n) + fmt.Sprintf("] %3.0f%%", f*100)
}

// helpView lists every key.
func (m *Model) helpView() []string {
	w, h := m.width, m.height-1
	out := []string{m.theme.titleFocus.Render(fit(" hooktrace keys (any key closes)", w))}
	kw := 0
	for _, k := range keyHelp {
		kw = max(kw, len(k[0]))
	}
	kw = min(kw, w/3)
	for _, k := range keyHelp {
		out = append(out, wrap("  "+fit(k[0], kw)+"  "+k[1], w, strings.Repeat(" ", kw+4))...)
	}
	out = append(out, "")
	out = append(out, wrap("  "+filterHelp, w, "    ")...)
	for i := range out {
		if i > 0 {
			out[i] = fit(out[i], w)
		}
	}
	return pad(out, rect{w: w, h: h})
}
