// Package tui is hooktrace's terminal UI: a virtualised packet list over
// everything loaded, the selected packet's layers, bytes and journey, a
// display filter, statistics and saving. Sources hand it Batches through
// a bounded channel, which it drains on a tick.
package tui

import (
	"fmt"
	"io"
	"os"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/hooktrace/hooktrace/decode"
)

// tickInterval is how often the model drains its source.
const tickInterval = 100 * time.Millisecond

// drainBudget bounds the time one tick spends taking batches, so keys
// are answered while a large file loads.
const drainBudget = 30 * time.Millisecond

// Options configure a Model.
type Options struct {
	// Source names what is shown (a file path, "live"), in the status bar.
	Source string
	// Batches delivers the packets; the model drains it on a tick.
	Batches <-chan Batch
	// Location is the time zone of absolute times (default time.Local).
	Location *time.Location
	// Color turns colours on; off, only bold and reverse video are used
	// (NO_COLOR, monochrome terminals, tests).
	Color bool
	// SaveDir is where saved captures go (default: the working directory).
	SaveDir string
	// Now gives the wall clock, for the names of saved files (default
	// time.Now).
	Now func() time.Time
	// File, if set, is the capture file that batches with Offsets point
	// into: packets are read again from it when shown, not kept in memory.
	File io.ReaderAt
	// Spool, if set, is an empty file the packets that batches hand over
	// as bytes (not Offsets), and the records beside them (trace events,
	// kernel drops, losses), are written to and read again from, so that
	// memory holds only the list: for a live capture, a compressed file,
	// a recorded incident. The caller removes it.
	Spool interface {
		io.Writer
		io.ReaderAt
	}
	// Filter is the display filter to start with.
	Filter string
	// Live is set for live sources: the status bar shows their counters.
	Live bool
	// Counters, if set, returns the source's loss counters to show in the
	// status bar and statistics (name and value, such as "kernel drops").
	Counters func() []Counter
	// Playback, if set, paces the source: its keys change the speed,
	// pause and step, and the status bar shows its state and clock.
	Playback *Playback
	// Incident, if set, gives a saved file what explains its records
	// beside them: interface names and ruleset snapshots. Nil: saved
	// files hold frames, trace events, kernel drops and losses only.
	Incident IncidentContext
}

// IncidentContext is what the source knows beside its records that a
// saved file needs (as `hooktrace --trace -w` records it). Its methods
// are called on the UI's goroutine while the source runs.
type IncidentContext interface {
	// IfName names an interface index of a namespace ("": unknown);
	// NFLOG messages and kernel drops carry only indexes.
	IfName(netns string, index uint32) string
	// Rulesets returns the ruleset snapshots of a namespace: a
	// recording's, or one taken now; an error says why one could not be
	// taken (the snapshots returned are good).
	Rulesets(netns string) ([]decode.RulesetSnapshot, error)
}

// Counter is a named count a source reports.
type Counter struct {
	Name  string
	Value uint64
}

type pane int

const (
	paneList pane = iota
	paneLayers
	paneHex
	paneJourney
	paneCount
)

var paneNames = [paneCount]string{"Packets", "Layers", "Hex", "Journey"}

type inputMode int

const (
	inputNone inputMode = iota
	inputFilter
	inputSearch
	inputGoto
	inputSave
	inputSaveJourney
)

type timeMode int

const (
	timeAbsolute timeMode = iota
	timeRelative
	timeDelta
	timeModeCount
)

var timeModeNames = [timeModeCount]string{"absolute", "relative", "delta"}

// Model is the bubbletea model of the terminal UI.
type Model struct {
	opt   Options
	st    *store
	theme theme
	dec   *decode.Decoder

	// The list: view holds the row numbers that pass the filter among
	// the first shown rows (all of them unless paused); with no filter
	// it is nil and row i is view entry i.
	filt    *displayFilter
	view    []uint32
	shown   int // rows taken into the view
	checked int // rows tested against the filter
	sel     int // selected view entry
	top     int // first view entry on screen
	follow  bool
	tmode   timeMode
	paused  bool
	cols    colCache

	focus      pane
	lastDetail pane // the detail pane shown when the list has focus
	maximised  bool
	help       bool
	stats      bool
	statsTop   int
	// The rulesets view (rulesets.go): its lines and the first shown.
	rulesets     bool
	rulesetLines []string
	rulesetTop   int

	mode     inputMode
	input    textinput.Model
	inputErr string
	search   string
	message  string

	width, height int

	loading     bool
	listed      bool // every packet is listed; journeys are still loading
	read, total int64
	loadErr     error
	shed        uint64
	started     time.Time

	detail detail
}

// New returns a model reading opt.Batches.
func New(opt Options) *Model {
	if opt.Location == nil {
		opt.Location = time.Local
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	ti := textinput.New()
	ti.Prompt = ""
	m := &Model{
		opt: opt, st: newStore(), theme: newTheme(opt.Color), dec: decode.NewDecoder(),
		follow: opt.Live, input: ti, loading: opt.Batches != nil, lastDetail: paneLayers,
		width: 80, height: 24, started: opt.Now(),
	}
	m.detail.row = -1
	if opt.Spool != nil {
		m.st.spool = newSpool(opt.Spool)
	}
	if opt.File != nil {
		m.st.file = newBlockCache(opt.File, "the capture")
		if st, ok := opt.File.(interface{ Stat() (os.FileInfo, error) }); ok {
			if fi, err := st.Stat(); err == nil {
				m.st.fileSize = fi.Size()
			}
		}
	}
	if opt.Filter != "" {
		if f, err := compileFilter(opt.Filter); err != nil {
			m.setMessage("filter %q: %v", opt.Filter, err)
		} else {
			m.filt, m.view = f, []uint32{}
		}
	}
	return m
}

type tickMsg time.Time

func tick() tea.Cmd {
	return tea.Tick(tickInterval, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Init starts the tick that drains the source.
func (m *Model) Init() tea.Cmd {
	if m.opt.Batches == nil {
		return nil
	}
	return tea.Batch(m.drainCmd(), tick())
}

// drainCmd drains at once what is there, so the first screen does not
// wait for the first tick.
func (m *Model) drainCmd() tea.Cmd {
	return func() tea.Msg { return tickMsg(time.Now()) }
}

// Update handles a message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.clampList()
	case tickMsg:
		m.drain()
		if m.loading {
			return m, tick()
		}
	case tea.KeyPressMsg:
		return m, m.key(msg)
	case tea.MouseWheelMsg:
		m.wheel(msg.Mouse())
	case tea.MouseClickMsg:
		m.click(msg.Mouse())
	default:
		if m.mode != inputNone {
			var cmd tea.Cmd
			m.input, cmd = m.input.Update(msg)
			return m, cmd
		}
	}
	return m, nil
}

// drain takes the batches waiting, within the budget.
func (m *Model) drain() {
	deadline := time.Now().Add(drainBudget)
	if cur := m.selectedRow(); cur >= 0 && !m.follow && m.filt != nil && m.filt.journeys {
		// Rows may leave or join the view before the selected one: it
		// stays selected.
		defer func() {
			m.sel = m.nearest(cur)
			m.clampList()
		}()
	}
	for m.loading && time.Now().Before(deadline) {
		select {
		case b, ok := <-m.opt.Batches:
			if !ok {
				m.loading = false
				break
			}
			m.ingest(b)
		default:
			m.refresh()
			return
		}
	}
	m.refresh()
}

// ingest adds a batch to the store.
func (m *Model) ingest(b Batch) {
	for i, f := range b.Frames {
		if b.Offsets != nil {
			m.st.addAt(f, b.Offsets[i], b.CapLens[i], b.VNIs[i])
		} else {
			m.st.add(f, b.VNIs[i])
		}
	}
	for _, r := range b.Records {
		m.st.addRecord(r)
	}
	changed := len(m.st.rows) // the first row whose journey fields changed
	if len(b.Frames) == 0 && len(b.VNIs) > 0 {
		// VNIs of rows an indexer listed before.
		for i, v := range b.VNIs {
			if r := b.First + i; r < len(m.st.rows) {
				m.st.rows[r].vni = v
			}
		}
		for i, v := range b.Ifindexes {
			if r := b.First + i; r < len(m.st.rows) && v != 0 {
				m.st.rows[r].ifindex = v
			}
		}
		changed = min(changed, b.First)
	}
	for _, j := range b.Journeys {
		m.st.addJourney(j)
		if len(j.Rows) > 0 {
			changed = min(changed, int(j.Rows[0]))
		}
	}
	if m.filt != nil && m.filt.journeys && changed < m.checked {
		// Test those rows again.
		m.view = m.view[:m.nearestAfter(changed)]
		m.checked = changed
	}
	m.listed = m.listed || b.Listed
	if b.Read != 0 || b.Total != 0 || b.Done {
		m.read, m.total = b.Read, b.Total
	}
	m.shed += b.Shed
	if b.Done {
		m.loading = false
		m.loadErr = b.Err
	}
}

// refresh takes newly loaded rows into the view, unless paused.
func (m *Model) refresh() {
	if !m.paused {
		m.shown = len(m.st.rows)
	}
	if m.filt != nil {
		for i := m.checked; i < m.shown; i++ {
			if m.filt.match(m.st, i) {
				m.view = append(m.view, uint32(i))
			}
		}
		m.checked = m.shown
	}
	if m.follow {
		m.sel = max(0, m.viewLen()-1)
	}
	m.clampList()
}

// viewLen is the number of rows the list shows.
func (m *Model) viewLen() int {
	if m.filt == nil {
		return m.shown
	}
	return len(m.view)
}

// rowAt returns the row number of view entry i.
func (m *Model) rowAt(i int) int {
	if m.filt == nil {
		return i
	}
	return int(m.view[i])
}

// selectedRow is the selected packet's row number, -1 when none.
func (m *Model) selectedRow() int {
	if m.viewLen() == 0 {
		return -1
	}
	return m.rowAt(m.sel)
}

// setFilter applies f to every row loaded, keeping the selected packet
// selected when it passes.
func (m *Model) setFilter(f *displayFilter) {
	cur := m.selectedRow()
	m.filt = f
	m.view = nil
	m.checked = 0
	if f != nil {
		m.view = make([]uint32, 0, 1024)
	}
	m.refresh()
	m.sel = 0
	if cur >= 0 {
		m.sel = m.nearest(cur)
	}
	if m.follow {
		m.sel = max(0, m.viewLen()-1)
	}
	m.clampList()
}

// nearestAfter returns the first view entry of row r or a later one
// (the view's length when there is none).
func (m *Model) nearestAfter(r int) int {
	lo, hi := 0, len(m.view)
	for lo < hi {
		mid := (lo + hi) / 2
		if int(m.view[mid]) < r {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// nearest returns the view entry of row r, or of the last row before it.
func (m *Model) nearest(r int) int {
	if m.filt == nil {
		return min(r, max(0, m.shown-1))
	}
	lo, hi := 0, len(m.view)
	for lo < hi {
		mid := (lo + hi) / 2
		if int(m.view[mid]) <= r {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return max(0, lo-1)
}

// status is a one-line message for the status bar.
func (m *Model) setMessage(format string, args ...any) {
	m.message = fmt.Sprintf(format, args...)
}
