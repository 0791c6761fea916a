package tui

import (
	"bytes"
	"strings"

	"github.com/hooktrace/hooktrace/decode"
)

// detail is what the layers, hex and journey panes show of the selected
// packet; only that packet is decoded in full.
type detail struct {
	row    int // the row it was made for; -1: none
	dec    *decode.Decoder
	pkt    *decode.Packet
	tree   []*treeNode
	cursor int // layers pane
	ltop   int
	hexTop int
	jid    uint32
	jour   *decode.Journey
	jtop   int
}

// ensureDetail decodes the selected packet when the selection changed.
func (m *Model) ensureDetail() *detail {
	d := &m.detail
	r := m.selectedRow()
	if r < 0 {
		d.row = -1
		return nil
	}
	if d.row != r {
		if d.dec == nil {
			d.dec = decode.NewDecoder()
		}
		d.row = r
		f := m.st.frame(r)
		f.Data = bytes.Clone(f.Data) // the store's bytes are valid until its next read
		d.pkt = d.dec.Decode(f)
		d.tree = buildTree(d.pkt)
		d.cursor, d.ltop, d.hexTop, d.jtop = 0, 0, 0, 0
	}
	// The journey: looked up again when it closes after the packet came.
	if jid := m.st.rows[r].jid; jid != d.jid || jid != 0 && d.jour == nil {
		d.jid, d.jour = jid, nil
		if jid != 0 {
			d.jour = m.rebuildJourney(jid)
		}
	}
	return d
}

// rebuildJourney assembles journey jid again from the packets that
// joined it, as the loader did over the whole input.
func (m *Model) rebuildJourney(jid uint32) *decode.Journey {
	sum := m.st.journeys[jid]
	if j := m.st.full[jid]; j != nil {
		return j
	}
	var opt decode.JourneyOptions
	if m.opt.Incident != nil {
		opt.IfName = m.opt.Incident.IfName
	}
	b := decode.NewJourneyBuilder(opt)
	dec := decode.NewDecoder()
	var rows []int
	for r := sum.first; r <= sum.last; r++ {
		if m.st.rows[r].jid == jid {
			rows = append(rows, int(r))
		}
	}
	// Its packets and its own trace events and drops, in the order the
	// loader took them.
	err := m.st.merged(rows, m.st.ownRecords(jid), func(r int) error {
		b.AddPacket(dec.Decode(m.st.frame(r)))
		return nil
	}, func(k keptRecord) error {
		rec, err := m.st.decodeRecord(k)
		if err != nil {
			return err
		}
		b.AddRecorded(rec)
		return nil
	})
	if err != nil {
		m.setMessage("journey %d: %v", sum.id, err)
	}
	var best *decode.Journey
	for _, j := range b.Flush() {
		if best == nil || len(j.Steps) > len(best.Steps) {
			best = j
		}
	}
	if best != nil {
		best.ID = sum.id
	}
	return best
}

// rect is a pane's place on the screen.
type rect struct{ x, y, w, h int }

// screenLayout places the panes.
type screenLayout struct {
	list, detail rect
	left, right  pane // the detail panes shown; right is -1 for one
	rightRect    rect
}

// layout places the list above the detail panes: two side by side when
// the terminal is wide enough, else the focused one (or the last one
// focused). A maximised pane takes the whole screen but the status line.
func (m *Model) layout() screenLayout {
	w, h := m.width, m.height-1 // the status line
	var l screenLayout
	l.right = -1
	if m.maximised {
		if m.focus == paneList {
			l.list = rect{0, 0, w, h}
			l.left = -1
			return l
		}
		l.left = m.focus
		l.detail = rect{0, 0, w, h}
		return l
	}
	lh := max(4, h*2/5)
	l.list = rect{0, 0, w, lh}
	dh := h - lh
	l.left = m.lastDetail
	if w >= 140 {
		lw := w * 2 / 5
		l.left = paneLayers
		l.right = paneJourney
		if m.lastDetail == paneHex {
			l.right = paneHex
		}
		l.detail = rect{0, lh, lw, dh}
		l.rightRect = rect{lw + 1, lh, w - lw - 1, dh}
		return l
	}
	l.detail = rect{0, lh, w, dh}
	return l
}

// paneAt is the pane at a screen position.
func (m *Model) paneAt(x, y int) pane {
	l := m.layout()
	switch {
	case y < l.list.y+l.list.h && l.list.h > 0:
		return paneList
	case l.right >= 0 && x >= l.rightRect.x:
		return l.right
	case l.left >= 0:
		return l.left
	}
	return m.focus
}

// titleLine is a pane's title, reversed when it has the focus; the
// detail panes' title names the other panes Tab reaches.
func (m *Model) titleLine(p pane, title string, w int) string {
	st := m.theme.title
	if m.focus == p {
		st = m.theme.titleFocus
	}
	if p != paneList {
		var tabs []string
		for q := paneLayers; q < paneCount; q++ {
			if q != p {
				tabs = append(tabs, paneNames[q])
			}
		}
		title += "   (tab: " + strings.Join(tabs, ", ") + ")"
	}
	return st.Render(fit(" "+title, w))
}
