package tui

import (
	"charm.land/lipgloss/v2"

	"github.com/hooktrace/hooktrace/decode"
)

// theme holds the styles; without colour it uses only bold and reverse
// video, so a monochrome terminal (or NO_COLOR) still shows the
// selection, focus and verdicts.
type theme struct {
	color      bool
	title      lipgloss.Style // a pane's title
	titleFocus lipgloss.Style
	header     lipgloss.Style // column headings
	selected   lipgloss.Style
	status     lipgloss.Style
	errText    lipgloss.Style
	highlight  lipgloss.Style // hex bytes of the selected layer
	dim        lipgloss.Style
	good, bad  lipgloss.Style // verdicts
	warn       lipgloss.Style
	boundary   lipgloss.Style // a tunnel boundary in the layers pane
	box        lipgloss.Style
}

func newTheme(color bool) theme {
	s := lipgloss.NewStyle
	t := theme{
		color:      color,
		title:      s().Bold(true),
		titleFocus: s().Bold(true).Reverse(true),
		header:     s().Bold(true).Underline(true),
		selected:   s().Reverse(true),
		status:     s().Reverse(true),
		errText:    s().Bold(true),
		highlight:  s().Reverse(true),
		dim:        s(),
		good:       s().Bold(true),
		bad:        s().Bold(true),
		warn:       s().Bold(true),
		boundary:   s().Bold(true),
		box:        s().Border(lipgloss.NormalBorder()).Padding(0, 1),
	}
	if color {
		t.titleFocus = s().Bold(true).Foreground(lipgloss.Color("0")).Background(lipgloss.Color("6"))
		t.selected = s().Foreground(lipgloss.Color("0")).Background(lipgloss.Color("12"))
		t.status = s().Foreground(lipgloss.Color("15")).Background(lipgloss.Color("8"))
		t.errText = s().Bold(true).Foreground(lipgloss.Color("9"))
		t.highlight = s().Foreground(lipgloss.Color("0")).Background(lipgloss.Color("11"))
		t.dim = s().Foreground(lipgloss.Color("8"))
		t.good = s().Foreground(lipgloss.Color("10"))
		t.bad = s().Bold(true).Foreground(lipgloss.Color("9"))
		t.warn = s().Foreground(lipgloss.Color("11"))
		t.boundary = s().Bold(true).Foreground(lipgloss.Color("13"))
		t.box = t.box.BorderForeground(lipgloss.Color("9"))
	}
	return t
}

// outcomeStyle colours an outcome.
func (t theme) outcomeStyle(o decode.Outcome) lipgloss.Style {
	switch o {
	case decode.OutcomeDelivered, decode.OutcomeForwarded, decode.OutcomeSent:
		return t.good
	case decode.OutcomeDropped, decode.OutcomeRejected:
		return t.bad
	case decode.OutcomeUnknown:
		return t.warn
	}
	return lipgloss.NewStyle()
}
