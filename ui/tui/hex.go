package tui

import (
	"fmt"
	"strings"
)

// hexWidth is how many bytes a hex line shows in w cells: 16, or 8 on
// a narrow pane.
func hexWidth(w int) int {
	switch {
	case w >= 6+16*3+1+1+16:
		return 16
	case w >= 6+8*3+1+1+8:
		return 8
	}
	return 4
}

func (m *Model) hexKey(s string) {
	d := m.ensureDetail()
	if d == nil {
		return
	}
	l := m.layout()
	r := l.detail
	if l.right == paneHex {
		r = l.rightRect
	}
	n := (len(d.pkt.Frame.Data) + hexWidth(r.w) - 1) / hexWidth(r.w)
	if cur, ok := move(s, d.hexTop, n, r.h-1); ok {
		d.hexTop = cur
	}
}

// span is the byte range the layers pane selects, (0, 0) for none: the
// layer's header for a layer's line, the field's bytes for a field's.
// A field with no bytes of its own (a payload length) selects none.
func (d *detail) span() (off, n int) {
	node := d.selectedNode()
	if node == nil || node.layer < 0 || node.layer >= len(d.pkt.Layers) {
		return 0, 0
	}
	l := &d.pkt.Layers[node.layer]
	if node.path == "" {
		return l.Span(d.pkt.Frame.Data)
	}
	for _, s := range l.FieldSpans(d.pkt.Frame.Data) {
		if s.Key == node.path {
			return s.Off, s.Len
		}
	}
	return 0, 0
}

func (m *Model) hexView(r rect) []string {
	out := []string{m.titleLine(paneHex, paneNames[paneHex], r.w)}
	d := m.ensureDetail()
	if d == nil {
		return pad(out, r)
	}
	data := d.pkt.Frame.Data
	bw := hexWidth(r.w)
	lines := (len(data) + bw - 1) / bw
	off, n := d.span()
	h := r.h - 1
	if m.focus != paneHex && n > 0 {
		// Bring the selection's first byte on screen.
		first := off / bw
		if first < d.hexTop || first >= d.hexTop+h {
			d.hexTop = first
		}
	}
	d.hexTop = max(0, min(d.hexTop, lines-h))
	for li := d.hexTop; li < min(lines, d.hexTop+h); li++ {
		var b strings.Builder
		fmt.Fprintf(&b, "%04x  ", li*bw)
		var ascii strings.Builder
		for j := 0; j < bw; j++ {
			i := li*bw + j
			if j == bw/2 {
				b.WriteByte(' ')
			}
			if i >= len(data) {
				b.WriteString("   ")
				ascii.WriteByte(' ')
				continue
			}
			c := data[i]
			hx := fmt.Sprintf("%02x", c)
			ch := "."
			if c >= 0x20 && c < 0x7f {
				ch = string(rune(c))
			}
			gap := " "
			if i >= off && i < off+n {
				// The gap before the next byte, when it is selected too
				// and in the same half line, is highlighted with them:
				// the selection reads as one bar.
				if i+1 < off+n && j+1 < bw && j+1 != bw/2 {
					hx, gap = hx+" ", ""
				}
				hx, ch = m.theme.highlight.Render(hx), m.theme.highlight.Render(ch)
			}
			b.WriteString(hx)
			b.WriteString(gap)
			ascii.WriteString(ch)
		}
		line := b.String() + " " + ascii.String()
		out = append(out, line+strings.Repeat(" ", max(0, r.w-(6+bw*3+1+1+bw))))
	}
	if len(data) < d.pkt.Frame.Len {
		out = append(out, fit(fmt.Sprintf("(captured %d of %d bytes)", len(data), d.pkt.Frame.Len), r.w))
	}
	return pad(out, r)
}
