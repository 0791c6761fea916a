package tui

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hooktrace/hooktrace/decode"
)

// rowText is what the list shows of one packet, decoded when the row
// comes on screen.
type rowText struct {
	src, dst, proto, info string
	summary               string
}

// colCache keeps the decoded text of rows recently on screen.
type colCache map[int]rowText

func (m *Model) rowText(r int) rowText {
	if t, ok := m.cols[r]; ok {
		return t
	}
	if m.cols == nil || len(m.cols) > 4096 {
		m.cols = colCache{}
	}
	t := describe(m.dec.Decode(m.st.frame(r)))
	m.cols[r] = t
	return t
}

// describe reads the columns of a decoded packet: the innermost
// (non-quoted) packet's addresses and protocol, with the tunnel it came
// through, and the rest of its summary segment.
func describe(p *decode.Packet) rowText {
	var t rowText
	sum := string(p.AppendSummary(nil))
	t.summary = sum
	depth := 0
	tunnel := ""
	var aw addrWriter
	var proto decode.Proto
	for i := range p.Layers {
		l := &p.Layers[i]
		if l.Quoted {
			break
		}
		if l.Tunnel != decode.TunnelNone && l.Tunnel != decode.TunnelICMP {
			tunnel = l.Tunnel.String()
		}
		if l.Depth > depth {
			depth = l.Depth
			aw = addrWriter{}
		}
		if l.Err != nil && !l.Short {
			continue
		}
		proto = l.Proto
		aw.layer = l.Proto
		l.WriteFields(&aw)
	}
	t.proto = strings.ToUpper(proto.String())
	if tunnel != "" && depth > 0 {
		t.proto += "/" + strings.ToUpper(tunnel)
	}
	t.src, t.dst = aw.endpoints()
	seg := sum
	if i := strings.LastIndex(sum, " | "); i >= 0 {
		seg = sum[i+3:]
	}
	t.info = seg
	if i := strings.Index(seg, " > "); i >= 0 {
		rest := seg[i+3:]
		if j := strings.IndexByte(rest, ' '); j >= 0 {
			t.info = rest[j+1:]
		} else {
			t.info = ""
		}
	}
	return t
}

// addrWriter collects the addresses and ports of one depth's layers.
type addrWriter struct {
	nopWriter
	layer              decode.Proto
	srcIP, dstIP       netip.Addr
	srcMAC, dstMAC     string
	sport, dport       uint64
	hasPorts, hasProto bool
}

func (a *addrWriter) IP(key string, b []byte) {
	ip, ok := netip.AddrFromSlice(b)
	if !ok || a.layer != decode.ProtoIPv4 && a.layer != decode.ProtoIPv6 {
		return
	}
	switch key {
	case "src":
		a.srcIP = ip
	case "dst":
		a.dstIP = ip
	}
}

func (a *addrWriter) MAC(key string, b []byte) {
	s := macString(b)
	switch key {
	case "src":
		a.srcMAC = s
	case "dst":
		a.dstMAC = s
	}
}

func (a *addrWriter) Uint(key string, v uint64) {
	if a.layer != decode.ProtoTCP && a.layer != decode.ProtoUDP && a.layer != decode.ProtoSCTP {
		return
	}
	switch key {
	case "sport":
		a.sport, a.hasPorts = v, true
	case "dport":
		a.dport, a.hasPorts = v, true
	}
}

func (a *addrWriter) endpoints() (string, string) {
	if !a.srcIP.IsValid() {
		return a.srcMAC, a.dstMAC
	}
	if !a.hasPorts {
		return a.srcIP.String(), a.dstIP.String()
	}
	return netip.AddrPortFrom(a.srcIP, uint16(a.sport)).String(), netip.AddrPortFrom(a.dstIP, uint16(a.dport)).String()
}

func macString(b []byte) string {
	var buf bytes.Buffer
	for i, c := range b {
		if i > 0 {
			buf.WriteByte(':')
		}
		const hex = "0123456789abcdef"
		buf.WriteByte(hex[c>>4])
		buf.WriteByte(hex[c&15])
	}
	return buf.String()
}

// searchLine is the text a search looks in: namespace, interface and the
// packet's summary.
func (m *Model) searchLine(r int) string {
	row := &m.st.rows[r]
	return m.st.strs[row.netns] + " " + m.st.strs[row.iface] + " " + m.rowText(r).summary + " " + string(m.st.outcome(r))
}

// column is one column of the list.
type column struct {
	name  string
	width int
	right bool
	cell  func(m *Model, vi, r int, t *rowText) string
}

// columns chooses the columns that fit width, dropping the least useful
// first; info takes what is left.
func (m *Model) columns(width int) []column {
	st := m.st
	hasNS, hasIface, hasDir, hasJ := st.nsWidth > 0, st.ifWidth > 0, st.hasDir, len(st.journeys) > 1
	nsw, ifw := max(5, st.nsWidth), max(5, st.ifWidth)
	now := len(strconv.Itoa(max(1, len(st.rows))))
	tw := 15
	if m.tmode != timeAbsolute {
		tw = 12
	}
	cols := []column{
		{name: "No.", width: max(3, now), right: true, cell: func(m *Model, vi, r int, t *rowText) string { return strconv.Itoa(r + 1) }},
		{name: "Time", width: tw, cell: (*Model).timeCell},
	}
	if hasNS {
		cols = append(cols, column{name: "Netns", width: min(nsw, 12), cell: func(m *Model, vi, r int, t *rowText) string { return m.st.strs[m.st.rows[r].netns] }})
	}
	if hasIface {
		cols = append(cols, column{name: "Iface", width: min(ifw, 12), cell: func(m *Model, vi, r int, t *rowText) string { return m.st.strs[m.st.rows[r].iface] }})
	}
	if hasDir {
		cols = append(cols, column{name: "Dir", width: 3, cell: func(m *Model, vi, r int, t *rowText) string { return m.st.rows[r].dir.String() }})
	}
	cols = append(cols,
		column{name: "Source", width: 21, cell: func(m *Model, vi, r int, t *rowText) string { return t.src }},
		column{name: "Destination", width: 21, cell: func(m *Model, vi, r int, t *rowText) string { return t.dst }},
		column{name: "Proto", width: 10, cell: func(m *Model, vi, r int, t *rowText) string { return t.proto }},
		column{name: "Len", width: 5, right: true, cell: func(m *Model, vi, r int, t *rowText) string { return strconv.Itoa(int(m.st.rows[r].wirelen)) }},
	)
	if hasJ {
		cols = append(cols, column{name: "Outcome", width: 9, cell: func(m *Model, vi, r int, t *rowText) string { return string(m.st.outcome(r)) }})
	}
	const infoMin = 16
	total := func() int {
		n := 0
		for _, c := range cols {
			n += c.width + 1
		}
		return n
	}
	drop := []string{"Outcome", "Dir", "Iface", "Len"}
	for total()+infoMin > width {
		shrunk := false
		for i := range cols {
			if (cols[i].name == "Source" || cols[i].name == "Destination") && cols[i].width > 15 {
				cols[i].width--
				shrunk = true
			}
		}
		if shrunk {
			continue
		}
		if len(drop) == 0 {
			break
		}
		name := drop[0]
		drop = drop[1:]
		for i := range cols {
			if cols[i].name == name {
				cols = append(cols[:i], cols[i+1:]...)
				break
			}
		}
	}
	cols = append(cols, column{name: "Info", width: max(0, width-total()), cell: func(m *Model, vi, r int, t *rowText) string { return t.info }})
	return cols
}

func (m *Model) timeCell(vi, r int, _ *rowText) string {
	t := m.st.rows[r].t
	switch m.tmode {
	case timeRelative:
		return seconds(t - m.st.rows[0].t)
	case timeDelta:
		if vi == 0 {
			return seconds(0)
		}
		return seconds(t - m.st.rows[m.rowAt(vi-1)].t)
	}
	return time.Unix(0, t).In(m.opt.Location).Format("15:04:05.000000")
}

func seconds(ns int64) string {
	return strconv.FormatFloat(float64(ns)/1e9, 'f', 6, 64)
}

// listRows is how many packet lines the list pane shows.
func (m *Model) listRows() int {
	return max(1, m.layout().list.h-2)
}

// clampList keeps the selection inside the list and on screen.
func (m *Model) clampList() {
	n := m.viewLen()
	m.sel = max(0, min(m.sel, n-1))
	rows := m.listRows()
	if m.sel < m.top {
		m.top = m.sel
	}
	if m.sel >= m.top+rows {
		m.top = m.sel - rows + 1
	}
	m.top = max(0, min(m.top, n-rows))
}

// listView renders the list: a title, the column headings and only the
// rows on screen.
func (m *Model) listView(r rect) []string {
	lines := make([]string, 0, r.h)
	title := paneNames[paneList] + " " + m.countText()
	if m.follow {
		title += "  [follow]"
	}
	if m.paused {
		title += "  [paused]"
	}
	lines = append(lines, m.titleLine(paneList, title, r.w))
	cols := m.columns(r.w)
	var hb strings.Builder
	for i, c := range cols {
		if i > 0 {
			hb.WriteByte(' ')
		}
		if c.right {
			hb.WriteString(fitRight(c.name, c.width))
		} else {
			hb.WriteString(fit(c.name, c.width))
		}
	}
	lines = append(lines, m.theme.header.Render(fit(hb.String(), r.w)))
	n := m.viewLen()
	for vi := m.top; vi < min(n, m.top+r.h-2); vi++ {
		row := m.rowAt(vi)
		t := m.rowText(row)
		var b strings.Builder
		for i, c := range cols {
			if i > 0 {
				b.WriteByte(' ')
			}
			v := c.cell(m, vi, row, &t)
			if c.right {
				b.WriteString(fitRight(v, c.width))
			} else {
				b.WriteString(fit(v, c.width))
			}
		}
		line := fit(b.String(), r.w)
		switch {
		case vi == m.sel:
			line = m.theme.selected.Render(line)
		case m.theme.color:
			if o := m.st.outcome(row); o != "" {
				line = m.theme.outcomeStyle(o).Render(line)
			}
		}
		lines = append(lines, line)
	}
	if n == 0 {
		msg := "no packets"
		switch {
		case m.loading:
			msg = "loading..."
		case m.filt != nil && m.shown > 0:
			msg = "no packet matches the filter"
		}
		lines = append(lines, fit("  "+msg, r.w))
	}
	for len(lines) < r.h {
		lines = append(lines, strings.Repeat(" ", r.w))
	}
	return lines
}

// countText says how many packets are shown.
func (m *Model) countText() string {
	if m.filt != nil {
		return strconv.Itoa(m.viewLen()) + " of " + strconv.Itoa(m.shown)
	}
	return strconv.Itoa(m.shown)
}
