package tui

import (
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"
)

// keyHelp lists every key, for the help overlay.
var keyHelp = [][2]string{
	{"q, ctrl+c", "quit"},
	{"?", "this help (any key closes it)"},
	{"tab, shift+tab", "next / previous pane"},
	{"z", "maximise the focused pane, or restore"},
	{"up/k, down/j", "move one line"},
	{"pgup/ctrl+b, pgdown/ctrl+f", "move one page"},
	{"home/g, end/G", "first / last line"},
	{"enter, right/l", "layers: expand the field; list: show the layers"},
	{"left/h", "layers: collapse the field"},
	{"e, E", "layers: expand all / collapse all"},
	{"f", "follow: keep the newest packet selected (stops when you move up)"},
	{"t", "time column: absolute, relative to the first packet, delta to the previous"},
	{"/", "display filter: tcpdump expression and journey fields, e.g. tcp port 80 and outcome == dropped"},
	{"s, n, N", "search text in the packet lines; next / previous match"},
	{":", "go to packet number"},
	{"S, R", "statistics; rulesets of the journey's namespaces (▶ the dropping rule)"},
	{"p", "pause / resume the view (loading goes on)"},
	{"P, ., <, >", "playback (--speed): pause/resume, step one packet, slower/faster"},
	{"w", "write the shown packets and their journeys' records to a pcapng file"},
	{"W", "write the selected packet's journey (packets, trace events, drops) to a pcapng file, its summary beside it (.md)"},
	{"esc", "cancel the prompt, close help, statistics or rulesets"},
	{"mouse", "wheel scrolls the pane under the pointer; click selects a packet or pane"},
}

// filterHelp lists the journey fields a filter can compare.
const filterHelp = "journey fields: outcome (delivered, forwarded, sent, dropped, rejected, unknown, none), netns, iface, chain, hook, vni, reason; == or !="

func (m *Model) key(k tea.KeyPressMsg) tea.Cmd {
	s := k.String()
	if m.mode != inputNone {
		return m.inputKey(k)
	}
	if s == "ctrl+c" || s == "q" {
		return tea.Quit
	}
	if m.help {
		m.help = false
		return nil
	}
	m.message = ""
	switch s {
	case "?":
		m.help = true
		return nil
	case "esc":
		m.stats, m.rulesets, m.maximised = false, false, false
		return nil
	case "S":
		m.stats, m.rulesets = !m.stats, false
		m.statsTop = 0
		return nil
	case "R":
		if m.rulesets {
			m.rulesets = false
		} else {
			m.stats = false
			m.openRulesets()
		}
		return nil
	}
	if m.stats {
		m.statsKey(s)
		return nil
	}
	if m.rulesets {
		m.rulesetsKey(s)
		return nil
	}
	switch s {
	case "tab":
		m.setFocus((m.focus + 1) % paneCount)
	case "shift+tab":
		m.setFocus((m.focus + paneCount - 1) % paneCount)
	case "z":
		m.maximised = !m.maximised
	case "t":
		m.tmode = (m.tmode + 1) % timeModeCount
		m.setMessage("time: %s", timeModeNames[m.tmode])
	case "f":
		m.follow = true
		m.sel = max(0, m.viewLen()-1)
		m.clampList()
	case "p":
		m.paused = !m.paused
		if !m.paused {
			m.refresh()
		}
	case "P", ".", "<", ">":
		m.playbackKey(s)
	case "/":
		return m.startInput(inputFilter, m.filterText())
	case "s":
		return m.startInput(inputSearch, m.search)
	case ":":
		return m.startInput(inputGoto, "")
	case "w":
		return m.startInput(inputSave, m.saveName())
	case "W":
		if j, _ := m.selectedJourney(); j == nil {
			m.setMessage("no journey to save: this packet has none (yet)")
			return nil
		}
		return m.startInput(inputSaveJourney, m.saveJourneyName())
	case "n":
		m.findNext(1)
	case "N":
		m.findNext(-1)
	default:
		m.paneKey(s)
	}
	return nil
}

func (m *Model) setFocus(p pane) {
	m.focus = p
	if p != paneList {
		m.lastDetail = p
	}
}

func (m *Model) filterText() string {
	if m.filt == nil {
		return ""
	}
	return m.filt.text
}

// paneKey sends a movement key to the focused pane.
func (m *Model) paneKey(s string) {
	switch m.focus {
	case paneList:
		m.listKey(s)
	case paneLayers:
		m.layersKey(s)
	case paneHex:
		m.hexKey(s)
	case paneJourney:
		m.journeyKey(s)
	}
}

// move returns the new position of a cursor at cur in n lines after key
// s, with page lines per page; ok is false for keys that do not move.
func move(s string, cur, n, page int) (int, bool) {
	switch s {
	case "up", "k":
		cur--
	case "down", "j":
		cur++
	case "pgup", "ctrl+b":
		cur -= max(1, page)
	case "pgdown", "ctrl+f", "space":
		cur += max(1, page)
	case "home", "g":
		cur = 0
	case "end", "G":
		cur = n - 1
	default:
		return cur, false
	}
	return max(0, min(cur, n-1)), true
}

func (m *Model) listKey(s string) {
	if s == "enter" || s == "right" || s == "l" {
		m.setFocus(paneLayers)
		return
	}
	n := m.viewLen()
	cur, ok := move(s, m.sel, n, m.listRows())
	if !ok {
		return
	}
	m.sel = cur
	m.follow = n > 0 && cur == n-1 && (s == "end" || s == "G" || m.follow && (s == "down" || s == "j" || s == "pgdown" || s == "ctrl+f" || s == "space"))
	m.clampList()
}

// startInput opens the prompt.
func (m *Model) startInput(mode inputMode, val string) tea.Cmd {
	m.mode = mode
	m.inputErr = ""
	m.input.SetValue(val)
	m.input.CursorEnd()
	m.input.SetWidth(max(10, m.width-12))
	return m.input.Focus()
}

// inputKey edits the prompt; a filter is validated as it is typed.
func (m *Model) inputKey(k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "esc", "ctrl+c":
		m.mode = inputNone
		m.input.Blur()
		return nil
	case "enter":
		m.submit()
		return nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	if m.mode == inputFilter {
		m.inputErr = ""
		if _, err := compileFilter(m.input.Value()); err != nil {
			m.inputErr = err.Error()
		}
	}
	return cmd
}

// submit acts on the prompt's value. An invalid filter keeps the prompt
// open with its error, and the old filter applied.
func (m *Model) submit() {
	v := strings.TrimSpace(m.input.Value())
	switch m.mode {
	case inputFilter:
		f, err := compileFilter(v)
		if err != nil {
			m.inputErr = err.Error()
			return
		}
		m.setFilter(f)
		m.setMessage("%d of %d packets shown", m.viewLen(), m.shown)
	case inputSearch:
		m.search = v
		if v != "" {
			m.findNext(1)
		}
	case inputGoto:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			m.inputErr = "a packet number, 1 or more"
			return
		}
		m.gotoPacket(n)
	case inputSave, inputSaveJourney:
		if v == "" {
			m.inputErr = "a file name"
			return
		}
		if m.mode == inputSave {
			m.save(v)
		} else {
			m.saveJourney(v)
		}
	}
	m.mode = inputNone
	m.input.Blur()
}

// gotoPacket selects packet n (1-based), or the nearest one shown
// before it.
func (m *Model) gotoPacket(n int) {
	if m.viewLen() == 0 {
		return
	}
	m.sel = m.nearest(n - 1)
	if m.rowAt(m.sel) != n-1 {
		m.setMessage("packet %d is not shown; nearest before it selected", n)
	}
	m.follow = false
	m.clampList()
}

// findNext selects the next (dir 1) or previous (-1) packet whose line
// contains the search text, wrapping around.
func (m *Model) findNext(dir int) {
	if m.search == "" {
		m.setMessage("no search text: s to enter one")
		return
	}
	n := m.viewLen()
	needle := strings.ToLower(m.search)
	for k := 1; k <= n; k++ {
		i := ((m.sel+dir*k)%n + n) % n
		if strings.Contains(strings.ToLower(m.searchLine(m.rowAt(i))), needle) {
			m.sel = i
			m.follow = false
			m.clampList()
			return
		}
	}
	m.setMessage("%q not found", m.search)
}

// wheel scrolls the pane under the pointer, or the statistics or
// rulesets view over them.
func (m *Model) wheel(ms tea.Mouse) {
	key := "down"
	if ms.Button == tea.MouseWheelUp {
		key = "up"
	}
	if m.stats || m.rulesets {
		for range 3 {
			if m.stats {
				m.statsKey(key)
			} else {
				m.rulesetsKey(key)
			}
		}
		return
	}
	p := m.paneAt(ms.X, ms.Y)
	old := m.focus
	m.focus = p
	for range 3 {
		m.paneKey(key)
	}
	m.focus = old
}

// click focuses the pane under the pointer and selects the packet (not
// through the statistics or rulesets view, which hides them).
func (m *Model) click(ms tea.Mouse) {
	if m.stats || m.rulesets {
		return
	}
	p := m.paneAt(ms.X, ms.Y)
	m.setFocus(p)
	if p == paneList {
		l := m.layout()
		i := m.top + ms.Y - l.list.y - 2 // below the title and headings
		if ms.Y >= l.list.y+2 && i < m.viewLen() {
			m.sel = i
			m.follow = false
		}
	}
}
