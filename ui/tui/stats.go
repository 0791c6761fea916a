package tui

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

func (m *Model) statsKey(s string) {
	if cur, ok := move(s, m.statsTop, 1<<20, m.height-2); ok {
		m.statsTop = cur
	}
}

// statsView shows totals, rates, losses, outcomes, drop reasons and
// chains, the top conversations and the counts per namespace and
// interface, over the packets the filter shows.
func (m *Model) statsView(r rect) []string {
	return m.pageView(" Statistics (S or esc: back)", m.statsLines(), &m.statsTop, r)
}

// pageView shows a full-screen view of lines under a title, from line
// *top on (kept within the lines).
func (m *Model) pageView(title string, lines []string, top *int, r rect) []string {
	*top = max(0, min(*top, len(lines)-(r.h-1)))
	out := []string{m.theme.titleFocus.Render(fit(title, r.w))}
	for i := *top; i < min(len(lines), *top+r.h-1); i++ {
		out = append(out, fit(lines[i], r.w))
	}
	return pad(out, r)
}

type count struct {
	key string
	n   uint64
	b   uint64
}

func top(c map[string]*count, n int) []*count {
	var out []*count
	for _, v := range c {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		return out[i].key < out[j].key
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func add(c map[string]*count, k string, b uint64) {
	e := c[k]
	if e == nil {
		e = &count{key: k}
		c[k] = e
	}
	e.n++
	e.b += b
}

func (m *Model) statsLines() []string {
	n := m.viewLen()
	var out []string
	scope := "all packets"
	if m.filt != nil {
		scope = "packets the filter shows: " + m.filt.text
	}
	out = append(out, "Totals ("+scope+")")
	var bytes uint64
	ifaces := map[string]*count{}
	nss := map[string]*count{}
	outcomes := map[string]*count{}
	reasons := map[string]*count{}
	convs := map[string]*count{}
	seenJ := map[uint32]bool{}
	// Conversations need a decode of each packet (about 5 µs): the last
	// convLimit packets are counted, so that the view opens at once.
	const convLimit = 50000
	for vi := 0; vi < n; vi++ {
		r := m.rowAt(vi)
		row := &m.st.rows[r]
		bytes += uint64(row.wirelen)
		add(ifaces, nsName(m.st.strs[row.netns])+"/"+m.st.strs[row.iface], uint64(row.wirelen))
		add(nss, nsName(m.st.strs[row.netns]), uint64(row.wirelen))
		if row.jid != 0 && !seenJ[row.jid] {
			seenJ[row.jid] = true
			j := m.st.journeys[row.jid]
			outcome := outcomeNames[j.outcome]
			add(outcomes, string(outcome), 0)
			for _, a := range m.st.sets[j.attrs] {
				s := m.st.strs[a]
				if (strings.HasPrefix(s, "reason=") || strings.HasPrefix(s, "chain=")) && (outcome == "dropped" || outcome == "rejected") {
					add(reasons, strings.Replace(s, "=", " ", 1), 0)
				}
			}
		}
		if vi >= n-convLimit {
			t := m.rowText(r)
			a, b := t.src, t.dst
			if b < a {
				a, b = b, a
			}
			add(convs, t.proto+" "+a+" <-> "+b, uint64(row.wirelen))
		}
	}
	var dur time.Duration
	if n > 1 {
		dur = time.Duration(m.st.rows[m.rowAt(n-1)].t - m.st.rows[m.rowAt(0)].t)
	}
	out = append(out, fmt.Sprintf("  packets %d   bytes %d   span %s", n, bytes, dur.Round(time.Microsecond)))
	if dur > 0 {
		out = append(out, fmt.Sprintf("  rate %.1f packets/s   %.1f bytes/s", float64(n)/dur.Seconds(), float64(bytes)/dur.Seconds()))
	}
	out = append(out, "", "Losses")
	out = append(out, fmt.Sprintf("  shed by the UI (its queue was full): %d", m.shed))
	if m.opt.Counters != nil {
		for _, c := range m.opt.Counters() {
			out = append(out, fmt.Sprintf("  %s: %d", c.Name, c.Value))
		}
	} else {
		out = append(out, "  (a file: no kernel or capture counters)")
	}
	section := func(title string, c map[string]*count, limit int, withBytes bool) {
		out = append(out, "", title)
		if len(c) == 0 {
			out = append(out, "  none")
			return
		}
		for _, e := range top(c, limit) {
			if withBytes {
				out = append(out, fmt.Sprintf("  %8d packets %10d bytes  %s", e.n, e.b, e.key))
			} else {
				out = append(out, fmt.Sprintf("  %8d  %s", e.n, e.key))
			}
		}
	}
	section("Journey outcomes", outcomes, 10, false)
	section("Drops by chain and kernel reason", reasons, 10, false)
	convTitle := "Top conversations"
	if n > convLimit {
		convTitle = fmt.Sprintf("Top conversations (of the last %d packets)", convLimit)
	}
	section(convTitle, convs, 10, true)
	section("Per namespace", nss, 20, true)
	section("Per interface", ifaces, 30, true)
	return out
}
