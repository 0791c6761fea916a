package tui

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

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

// save writes the packets the list shows to path as pcapng, with what
// else their journeys were built from.
func (m *Model) save(path string) {
	n, err := m.writePcapng(path)
	if err != nil {
		m.setMessage("save failed: %v", err)
		return
	}
	msg := fmt.Sprintf("%d packets written to %s", n.frames-n.nflog, path)
	var with []string
	for _, c := range []struct {
		n    int
		what string
	}{{n.nflog, "NFLOG message"}, {n.traces, "trace event"}, {n.drops, "kernel drop"}} {
		if c.n > 0 {
			with = append(with, plural(c.n, c.what))
		}
	}
	switch len(with) {
	case 0:
	case 1:
		msg += ", with their journeys' " + with[0]
	default:
		msg += ", with their journeys' " + strings.Join(with[:len(with)-1], ", ") + " and " + with[len(with)-1]
	}
	m.setMessage("%s%s", msg, n.leftOut())
}

// savedCounts counts what a save wrote.
type savedCounts struct {
	frames int
	nflog  int // of the frames, NFLOG messages the filter did not show
	traces int
	drops  int
	// rulesetsLeft says why a namespace's ruleset could not be written.
	rulesetsLeft error
}

// add counts a record.
func (c *savedCounts) add(r decode.Recorded) {
	switch {
	case r.Trace != nil:
		c.traces++
	case r.Drop != nil:
		c.drops++
	}
}

// writePcapng writes the packets the list shows. When the source has
// records beside its frames (trace events, kernel drops, NFLOG messages,
// interface names, rulesets), the file holds those of the packets'
// journeys too, as a recorded incident does, so that `hooktrace -r`
// builds the same journeys: NFLOG messages of the journeys that the
// filter hides, their trace events and kernel drops, every loss notice,
// and the names and rulesets they need.
func (m *Model) writePcapng(path string) (savedCounts, error) {
	rows := make([]int, m.viewLen())
	for i := range rows {
		rows[i] = m.rowAt(i)
	}
	var got savedCounts
	if m.opt.Incident == nil && len(m.st.recs) == 0 {
		err := m.writeFile(path, func(w *capture.PcapngWriter) error {
			for _, r := range rows {
				if err := w.WritePacket(m.st.frame(r)); err != nil {
					return err
				}
				got.frames++
			}
			return nil
		})
		return got, err
	}
	jr := m.viewJourneys(rows)
	got.nflog = len(jr.nflog)
	if len(jr.nflog) > 0 {
		rows = append(rows, jr.nflog...)
		slices.Sort(rows)
	}
	err := m.writeFile(path, func(w *capture.PcapngWriter) error {
		iw := m.incidentWriter(w)
		if err := m.writeRulesets(iw, jr.netns, &got); err != nil {
			return err
		}
		return m.st.merged(rows, jr.kept, func(r int) error {
			fr := m.st.frame(r)
			got.frames++
			return iw.Frame(&fr)
		}, func(k keptRecord) error {
			rec, err := m.st.decodeRecord(k)
			if err != nil {
				return err
			}
			got.add(rec)
			return iw.Recorded(rec)
		})
	})
	return got, err
}

// journeyExtras is what the journeys of the rows a save writes add.
type journeyExtras struct {
	nflog []int        // rows of NFLOG messages of the journeys, not among the rows
	kept  []keptRecord // their trace events and kernel drops, and every loss notice, in order
	netns []string     // the namespaces the rows and journeys name
}

// viewJourneys returns what the journeys of rows (ascending) add to
// them.
func (m *Model) viewJourneys(rows []int) journeyExtras {
	st := m.st
	var out journeyExtras
	seen := make([]bool, len(st.journeys))
	nsSeen := map[uint16]bool{}
	addNS := func(name string) {
		if !slices.Contains(out.netns, name) {
			out.netns = append(out.netns, name)
		}
	}
	for _, r := range rows {
		row := &st.rows[r]
		if !nsSeen[row.netns] {
			nsSeen[row.netns] = true
			addNS(st.strs[row.netns])
		}
		if row.jid == 0 || seen[row.jid] {
			continue
		}
		seen[row.jid] = true
		sum := st.journeys[row.jid]
		for o := sum.first; o <= sum.last; o++ {
			if st.rows[o].jid == row.jid && st.rows[o].lt == capture.LinkTypeNFLOG {
				if _, shown := slices.BinarySearch(rows, int(o)); !shown {
					out.nflog = append(out.nflog, int(o))
				}
			}
		}
		if own := st.ownRecords(row.jid); len(own) > 0 {
			out.kept = append(out.kept, own...)
			for _, name := range st.journeyNetns(row.jid) {
				addNS(name)
			}
		}
	}
	for _, i := range st.kinds.losses {
		out.kept = append(out.kept, keptRecord{i, capture.CustomLoss})
	}
	sortKept(out.kept)
	out.kept = slices.CompactFunc(out.kept, func(a, b keptRecord) bool { return a.i == b.i })
	return out
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

// saveJourney writes the selected packet's journey: its packets, trace
// events and kernel drops to path as pcapng, with the interface names
// and rulesets they need (hooktrace -r builds the same journey from
// them), and its Markdown summary, to paste into an issue, beside it
// (ui.MarkdownPath).
func (m *Model) saveJourney(path string) {
	j, rows := m.selectedJourney()
	if j == nil {
		m.setMessage("no journey to save: this packet has none (yet)")
		return
	}
	n, err := m.writeJourney(path, j, rows)
	if err != nil {
		m.setMessage("save failed: %v", err)
		return
	}
	m.setMessage("journey %d: %s, %s, %s written to %s, its summary to %s%s", j.ID,
		plural(n.frames, "packet"), plural(n.traces, "trace event"), plural(n.drops, "kernel drop"), path, ui.MarkdownPath(path), n.leftOut())
}

func (m *Model) writeJourney(path string, j *decode.Journey, rows []int) (savedCounts, error) {
	kept := m.st.ownRecords(m.st.rows[rows[0]].jid)
	var recs []ui.JourneyRecord
	var got savedCounts
	err := m.st.merged(rows, kept, func(r int) error {
		fails := m.st.readFail
		fr := m.st.frame(r)
		if err := m.st.failedSince(fails); err != nil {
			return fmt.Errorf("read packet %d again: %w", r+1, err)
		}
		fr.Data = bytes.Clone(fr.Data) // read again from a file: valid until the next read
		recs = append(recs, ui.JourneyRecord{Frame: &fr})
		got.frames++
		return nil
	}, func(k keptRecord) error {
		rec, err := m.st.decodeRecord(k)
		if err != nil {
			return err
		}
		recs = append(recs, ui.JourneyRecord{Trace: rec.Trace, Drop: rec.Drop})
		got.add(rec)
		return nil
	})
	if err != nil {
		return got, err
	}
	err = m.writeFile(path, func(w *capture.PcapngWriter) error {
		iw := m.incidentWriter(w)
		if err := m.writeRulesets(iw, j.Namespaces(), &got); err != nil {
			return err
		}
		return iw.Journey(j, recs)
	})
	if err != nil {
		return got, err
	}
	md, err := os.Create(ui.MarkdownPath(path))
	if err != nil {
		return got, err
	}
	err = ui.WriteMarkdown(md, []*decode.Journey{j}, ui.MarkdownOptions{Location: m.opt.Location, Recording: filepath.Base(path)})
	if cerr := md.Close(); err == nil {
		err = cerr
	}
	return got, err
}

// writeFile creates path and writes a pcapng file into it with fn.
func (m *Model) writeFile(path string, fn func(*capture.PcapngWriter) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	fails := m.st.readFail
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := capture.NewPcapngWriter(bw, "hooktrace")
	if err == nil {
		err = fn(w)
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = m.st.failedSince(fails) // packets or records could not be read again
	}
	if err != nil {
		os.Remove(path) // not a file that looks whole
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// incidentWriter writes records into w, naming interface indexes as the
// source does.
func (m *Model) incidentWriter(w *capture.PcapngWriter) *ui.IncidentWriter {
	var ifname func(string, uint32) string
	if m.opt.Incident != nil {
		ifname = m.opt.Incident.IfName
	}
	return ui.NewIncidentWriter(w, ifname)
}

// writeRulesets writes the ruleset snapshots of the namespaces the
// source has; one it could not have is left out, and got says why.
func (m *Model) writeRulesets(iw *ui.IncidentWriter, namespaces []string, got *savedCounts) error {
	if m.opt.Incident == nil {
		return nil
	}
	for _, ns := range namespaces {
		snaps, err := m.opt.Incident.Rulesets(ns)
		if err != nil && got.rulesetsLeft == nil {
			got.rulesetsLeft = err
		}
		for _, rs := range snaps {
			if err := iw.Ruleset(&rs); err != nil {
				return err
			}
		}
	}
	return nil
}

// leftOut says, after a save's message, which ruleset was left out.
func (n savedCounts) leftOut() string {
	if n.rulesetsLeft == nil {
		return ""
	}
	return "; ruleset left out: " + strings.ReplaceAll(n.rulesetsLeft.Error(), "\n", "; ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
