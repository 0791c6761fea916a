package tui

import (
	"strings"
	"unicode/utf8"
)

// fit pads or cuts s to exactly w cells (the UI's text is one cell per
// rune); a cut ends with "~".
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	n := utf8.RuneCountInString(s)
	switch {
	case n == w:
		return s
	case n < w:
		return s + strings.Repeat(" ", w-n)
	}
	r := []rune(s)
	if w == 1 {
		return string(r[:1])
	}
	return string(r[:w-1]) + "~"
}

// fitRight right-aligns s in w cells.
func fitRight(s string, w int) string {
	n := utf8.RuneCountInString(s)
	if n >= w {
		return fit(s, w)
	}
	return strings.Repeat(" ", w-n) + s
}

// wrap splits s into lines of at most w cells, continuing with indent.
func wrap(s string, w int, indent string) []string {
	if w <= len(indent)+4 {
		return []string{fit(s, w)}
	}
	var out []string
	r := []rune(s)
	first := true
	for len(r) > 0 {
		lim := w
		prefix := ""
		if !first {
			prefix = indent
			lim = w - utf8.RuneCountInString(indent)
		}
		if len(r) <= lim {
			out = append(out, prefix+string(r))
			break
		}
		cut := lim
		for i := lim; i > lim/2; i-- {
			if r[i] == ' ' {
				cut = i
				break
			}
		}
		out = append(out, prefix+strings.TrimRight(string(r[:cut]), " "))
		r = []rune(strings.TrimLeft(string(r[cut:]), " "))
		first = false
	}
	return out
}
