package tui

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/ui"
)

// saveName proposes a file name for saving.
func (m *Model) saveName() string {
	name := "hooktrace-" + m.opt.Now().Format("20060102-150405") + ".pcapng"
	if m.opt.SaveDir != "" {
		name = filepath.Join(m.opt.SaveDir, name)
	}
	return name
}

// save writes the packets the list shows to path as pcapng.
func (m *Model) save(path string) {
	n, err := m.writePcapng(path)
	if err != nil {
		m.setMessage("save failed: %v", err)
		return
	}
	m.setMessage("%d packets written to %s", n, path)
}

func (m *Model) writePcapng(path string) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := capture.NewPcapngWriter(bw, "hooktrace")
	if err != nil {
		f.Close()
		return 0, err
	}
	n := m.viewLen()
	for i := 0; i < n; i++ {
		if err := w.WritePacket(m.st.frame(m.rowAt(i))); err != nil {
			f.Close()
			return i, fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return n, fmt.Errorf("write %s: %w", path, err)
	}
	return n, f.Close()
}

// saveJourneyName proposes a file name for saving the selected journey.
func (m *Model) saveJourneyName() string {
	name := "hooktrace-journey-" + m.opt.Now().Format("20060102-150405") + ".pcapng"
	if m.opt.SaveDir != "" {
		name = filepath.Join(m.opt.SaveDir, name)
	}
	return name
}

// selectedJourney returns the selected packet's journey and the rows of
// the packets that joined it; nil when it has none (yet).
func (m *Model) selectedJourney() (*decode.Journey, []int) {
	d := m.ensureDetail()
	if d == nil || d.jour == nil || d.jid == 0 {
		return nil, nil
	}
	sum := m.st.journeys[d.jid]
	var rows []int
	for r := sum.first; r <= sum.last; r++ {
		if m.st.rows[r].jid == d.jid {
			rows = append(rows, int(r))
		}
	}
	return d.jour, rows
}

// saveJourney writes the selected packet's journey: its packets to path
// as pcapng (hooktrace -r replays them), and its Markdown summary, to
// paste into an issue, beside it (ui.MarkdownPath).
func (m *Model) saveJourney(path string) {
	j, rows := m.selectedJourney()
	if j == nil {
		m.setMessage("no journey to save: this packet has none (yet)")
		return
	}
	if err := m.writeJourney(path, j, rows); err != nil {
		m.setMessage("save failed: %v", err)
		return
	}
	m.setMessage("journey %d: %d packets written to %s, its summary to %s", j.ID, len(rows), path, ui.MarkdownPath(path))
}

func (m *Model) writeJourney(path string, j *decode.Journey, rows []int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := capture.NewPcapngWriter(bw, "hooktrace")
	if err != nil {
		f.Close()
		return err
	}
	iw := ui.NewIncidentWriter(w, nil)
	for _, r := range rows {
		fr := m.st.frame(r)
		if err := iw.Frame(&fr); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	md, err := os.Create(ui.MarkdownPath(path))
	if err != nil {
		return err
	}
	err = ui.WriteMarkdown(md, []*decode.Journey{j}, ui.MarkdownOptions{Location: m.opt.Location, Recording: filepath.Base(path)})
	if cerr := md.Close(); err == nil {
		err = cerr
	}
	return err
}
