package tui

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/fixtures/synth"
)

// recordingSource reads a recorded incident as hooktrace's file source
// does: the frames, and the trace events, kernel drops and losses of its
// hooktrace records; the interface names and rulesets are kept by a
// decode.Recording, which names them for saves too.
type recordingSource struct {
	f          *capture.File
	rec        *decode.Recording
	frame      capture.Frame
	rulesetErr error // Rulesets fails with it, when set
}

func openRecording(t *testing.T, path string) *recordingSource {
	t.Helper()
	f, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &recordingSource{f: f, rec: decode.NewRecording()}
}

func (s *recordingSource) NextRecord() (Record, error) {
	for {
		c, err := s.f.NextRecord()
		if err != nil {
			return Record{}, err
		}
		if c.Custom == nil {
			s.frame = c.Frame
			s.rec.FillIndex(&s.frame)
			return Record{Frame: &s.frame}, nil
		}
		got, err := s.rec.TakeRecord(c.Custom)
		switch {
		case err != nil:
			return Record{}, err
		case got.Trace != nil:
			return Record{Trace: got.Trace}, nil
		case got.Drop != nil:
			return Record{Drop: got.Drop}, nil
		case got.Loss != nil:
			return Record{Loss: got.Loss}, nil
		}
	}
}

func (s *recordingSource) IfName(netns string, index uint32) string {
	return s.rec.IfName(netns, index)
}

func (s *recordingSource) Rulesets(netns string) ([]decode.RulesetSnapshot, error) {
	if s.rulesetErr != nil { // as a live source whose nft fails
		return nil, s.rulesetErr
	}
	var out []decode.RulesetSnapshot
	for _, rs := range s.rec.Rulesets() {
		if rs.Netns == netns {
			out = append(out, rs)
		}
	}
	return out, nil
}

// replayJourneys builds the journeys of a recorded incident, as `hooktrace
// -r FILE --json` builds them.
func replayJourneys(t *testing.T, path string) ([]*decode.Journey, *recordingSource) {
	t.Helper()
	src := openRecording(t, path)
	b := decode.NewJourneyBuilder(decode.JourneyOptions{IfName: src.IfName})
	dec := decode.NewDecoder()
	var js []*decode.Journey
	for {
		r, err := src.NextRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("replay %s: %v", path, err)
		}
		if r.Frame != nil {
			b.AddPacket(dec.Decode(*r.Frame))
		} else {
			b.AddRecorded(decode.Recorded{Trace: r.Trace, Drop: r.Drop, Loss: r.Loss})
		}
		js = append(js, b.Closed()...)
	}
	return append(js, b.Flush()...), src
}

// comparable returns what a replay of a saved journey must give again:
// all but its id, the numbers of its records (the saved file numbers them
// anew) and its route steps (asked of the live kernel).
func comparable(j *decode.Journey) decode.Journey {
	c := *j
	c.ID, c.Packets, c.Traces, c.Drops = 0, nil, nil, nil
	c.Steps = nil
	for _, st := range j.Steps {
		if st.Kind != decode.StepRoute {
			c.Steps = append(c.Steps, st)
		}
	}
	return c
}

// byFirst finds the journey first seen at t.
func byFirst(js []*decode.Journey, t time.Time) *decode.Journey {
	for _, j := range js {
		if j.First.Equal(t) {
			return j
		}
	}
	return nil
}

// loadIncident opens a recorded incident in a model as hooktrace -r
// does: frames listed ahead by offset and read again from the file, the
// records beside them in a spool file, names and rulesets from the
// recording.
func loadIncident(t *testing.T, path string) *Model {
	t.Helper()
	src := openRecording(t, path)
	idx, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	back, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	spool, err := os.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); idx.Close(); back.Close(); spool.Close() })
	ch := make(chan Batch, 4)
	go FeedRecords(ctx, src, ch, FeedOptions{Index: idx, Offset: idx.FrameOffset, Journeys: decode.JourneyOptions{IfName: src.IfName}})
	m := New(Options{Source: "test", Batches: ch, Location: time.UTC, Now: func() time.Time { return fixedNow },
		SaveDir: t.TempDir(), File: back, Spool: spool, Incident: src})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	for deadline := time.Now().Add(20 * time.Second); m.loading; {
		if time.Now().After(deadline) {
			t.Fatal("loading did not end")
		}
		m.Update(tickMsg(time.Now()))
	}
	if m.loadErr != nil {
		t.Fatal(m.loadErr)
	}
	return m
}

func writeIncident(t *testing.T, frames int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "incident.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := synth.WriteIncident(f, frames, 1); err != nil {
		t.Fatal(err)
	}
	return path
}

// saveAs answers the save prompt key opens with path.
func saveAs(t *testing.T, m *Model, key, path string) {
	t.Helper()
	keys(m, key)
	if m.mode != inputSave && m.mode != inputSaveJourney {
		t.Fatalf("%s opens no prompt: %q", key, m.message)
	}
	m.input.SetValue(path)
	keys(m, "enter")
}

// TestSaveIncidentJourney opens a recorded incident (trace events, kernel
// drops, NFLOG copies, a ruleset), selects a dropped packet and presses
// W: the saved file holds its frames, trace events and drop with the
// interface names and the ruleset, and replays to the same journey as
// the original file.
func TestSaveIncidentJourney(t *testing.T) {
	orig := writeIncident(t, 3000)
	m := loadIncident(t, orig)
	if len(m.st.kinds.traces) == 0 || len(m.st.kinds.drops) == 0 {
		t.Fatalf("the model kept %d trace events, %d drops", len(m.st.kinds.traces), len(m.st.kinds.drops))
	}
	keys(m, "/")
	typeText(m, "outcome == dropped")
	keys(m, "enter", "home")
	if m.viewLen() == 0 {
		t.Fatal("no dropped packet")
	}
	path := filepath.Join(t.TempDir(), "journey.pcapng")
	saveAs(t, m, "W", path)
	if !strings.Contains(m.message, "3 packets, 2 trace events, 1 kernel drop written to "+path) {
		t.Errorf("message %q", m.message)
	}
	// The journey the UI shows, rebuilt from the packets and records it
	// keeps, is the one the whole file replays to.
	want := m.rebuildJourney(m.st.rows[m.selectedRow()].jid)
	if want == nil {
		t.Fatal("the selected packet has no journey")
	}
	all, _ := replayJourneys(t, orig)
	if o := byFirst(all, want.First); o == nil || !reflect.DeepEqual(comparable(o), comparable(want)) {
		t.Errorf("the UI shows the journey as\n%+v\nthe file replays to\n%+v", comparable(want), o)
	}
	saved, rec := replayJourneys(t, path)
	if len(saved) != 1 {
		t.Fatalf("the saved file replays to %d journeys, want 1", len(saved))
	}
	if got := comparable(saved[0]); !reflect.DeepEqual(got, comparable(want)) {
		t.Errorf("the saved journey replays as\n%+v\nwant\n%+v", got, comparable(want))
	}
	if got := saved[0]; got.Outcome != decode.OutcomeDropped || got.Drop == nil || !strings.Contains(got.Drop.Rule, "icmp type echo-request") {
		t.Errorf("replayed %s, drop %+v", got.Outcome, got.Drop)
	}
	if rs, _ := rec.Rulesets(want.Steps[0].Netns); len(rs) != 1 || !strings.Contains(rs[0].Text, "chain input") {
		t.Errorf("rulesets saved: %+v", rs)
	}
	if rec.IfName("hxbench", 2) != "eth0" {
		t.Errorf("interface 2 of hxbench named %q in the saved file", rec.IfName("hxbench", 2))
	}
	if _, err := os.Stat(strings.TrimSuffix(path, ".pcapng") + ".md"); err != nil {
		t.Errorf("no summary: %v", err)
	}
}

// TestSaveIncidentFiltered: w with a display filter writes the packets it
// shows and the records of their journeys; the saved file replays to the
// same journeys.
func TestSaveIncidentFiltered(t *testing.T) {
	orig := writeIncident(t, 3000)
	m := loadIncident(t, orig)
	all, _ := replayJourneys(t, orig)
	keys(m, "/")
	typeText(m, "outcome == dropped or icmp")
	keys(m, "enter")
	shown := map[uint32]bool{}
	for i := 0; i < m.viewLen(); i++ {
		shown[m.st.rows[m.rowAt(i)].jid] = true
	}
	path := filepath.Join(t.TempDir(), "filtered.pcapng")
	saveAs(t, m, "w", path)
	if !strings.Contains(m.message, "packets written to "+path+", with ") {
		t.Errorf("message %q", m.message)
	}
	saved, _ := replayJourneys(t, path)
	if len(saved) != len(shown) {
		t.Errorf("%d journeys replayed from the saved file, %d shown", len(saved), len(shown))
	}
	dropped := 0
	for _, j := range saved {
		want := byFirst(all, j.First)
		if want == nil {
			t.Errorf("journey first seen at %v is not in the original", j.First)
			continue
		}
		if got := comparable(j); !reflect.DeepEqual(got, comparable(want)) {
			t.Errorf("journey first seen at %v replays as\n%+v\nwant\n%+v", j.First, got, comparable(want))
		}
		if j.Outcome == decode.OutcomeDropped {
			dropped++
		}
	}
	if dropped == 0 {
		t.Error("no dropped journey saved")
	}
	t.Logf("%s; %d journeys, %d dropped", m.message, len(saved), dropped)
}

// TestIncidentJourneysRebuilt: every journey of a recorded incident that
// the UI keeps as its own records (not whole) is rebuilt, when shown, as
// the whole file replays it.
func TestIncidentJourneysRebuilt(t *testing.T) {
	orig := writeIncident(t, 3000)
	m := loadIncident(t, orig)
	all, _ := replayJourneys(t, orig)
	if len(m.st.own) < 100 {
		t.Fatalf("only %d journeys kept as their records (%d whole)", len(m.st.own), len(m.st.full))
	}
	for jid := range m.st.own {
		got := m.rebuildJourney(jid)
		if got == nil {
			t.Fatalf("journey %d not rebuilt", jid)
		}
		if want := byFirst(all, got.First); want == nil || !reflect.DeepEqual(comparable(got), comparable(want)) {
			t.Fatalf("journey %d rebuilt as\n%+v\nthe file replays to\n%+v", jid, comparable(got), want)
		}
	}
}
