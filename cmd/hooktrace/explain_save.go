package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/nflog"
	"github.com/hooktrace/hooktrace/ui"
)

// inputKeep is how long, in the records' own time, the journeys' input
// log keeps a record for `explain --save`: far longer than a journey
// stays open.
const inputKeep = time.Minute

// inputLog keeps the records the journeys' builder took, numbered as the
// builder numbers them (a journey's Packets, Traces and Drops), so that
// `explain --save` finds a journey's own records again. It is used by the
// journeys' goroutine only, and after it ended.
type inputLog struct {
	kinds [3]inputSeq // frames, trace events, kernel drops
	seq   uint64
}

// inputSeq is the kept records of one kind; items[0] is number base.
type inputSeq struct {
	base  uint64
	items []loggedInput
}

type loggedInput struct {
	seq uint64 // arrival order across kinds
	at  time.Time
	in  journeyInput
}

// add keeps a record the builder is about to take; the journeys' frames,
// trace events and drops are their own copies.
func (l *inputLog) add(in journeyInput) {
	k, at := 0, time.Time{}
	switch {
	case in.Frame != nil:
		at = in.Frame.Time
	case in.Trace != nil:
		k, at = 1, in.Trace.Time
	case in.Drop != nil:
		k, at = 2, in.Drop.Time
	}
	l.seq++
	s := &l.kinds[k]
	s.items = append(s.items, loggedInput{seq: l.seq, at: at, in: in})
	if len(s.items)&1023 != 0 {
		return
	}
	i := 0
	for i < len(s.items)-1 && at.Sub(s.items[i].at) > inputKeep {
		i++
	}
	if i > 0 {
		s.base += uint64(i)
		s.items = append(s.items[:0], s.items[i:]...)
	}
}

// journey returns the records a journey was built from, in the order the
// builder took them; ok is false when some were forgotten already.
func (l *inputLog) journey(j *decode.Journey) (recs []ui.JourneyRecord, ok bool) {
	var got []loggedInput
	ok = true
	for k, nums := range [3][]uint64{j.Packets, j.Traces, j.Drops} {
		s := &l.kinds[k]
		for _, n := range nums {
			if n < s.base || n-s.base >= uint64(len(s.items)) {
				ok = false
				continue
			}
			got = append(got, s.items[n-s.base])
		}
	}
	slices.SortFunc(got, func(a, b loggedInput) int { return int(a.seq - b.seq) })
	for _, g := range got {
		recs = append(recs, ui.JourneyRecord{Frame: g.in.Frame, Trace: g.in.Trace, Drop: g.in.Drop})
	}
	return recs, ok
}

// journeySaver writes the journeys `explain --save FILE` shows: FILE, a
// pcapng file with each journey's own records (frames, trace events,
// kernel drops, with the names of the interfaces they need and the
// rulesets of the namespaces it crossed), which `hooktrace -r FILE`
// builds into the same journey; and beside it a Markdown summary
// (ui.MarkdownPath).
type journeySaver struct {
	path     string
	log      *inputLog
	refs     []nflog.NetnsRef
	ifname   func(netns string, index int) string
	f        *os.File
	bw       *bufio.Writer
	rec      *recorder
	rulesets map[string]bool
	journeys []*decode.Journey
	records  [3]int
	err      error
}

// newJourneySaver checks the file name; nothing is written before a
// journey is kept.
func newJourneySaver(path string) (*journeySaver, error) {
	if strings.HasSuffix(path, ".md") {
		return nil, fmt.Errorf("--save %s: give the name of the pcapng file; the Markdown summary is written beside it (%s)", path, ui.MarkdownPath(path+".pcapng"))
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("--save %s: no directory %s to write it in", path, filepath.Dir(path))
	}
	return &journeySaver{path: path, rulesets: map[string]bool{}}, nil
}

// start makes the journeys keep their records for the saver; call before
// they take any. ifname names interfaces as the capture knows them.
func (s *journeySaver) start(j *journeys, refs []nflog.NetnsRef, ifname func(netns string, index int) string) {
	s.log, s.refs, s.ifname = &inputLog{}, refs, ifname
	j.log.Store(s.log)
}

// keep writes a journey's records to the file, which it creates first.
// It runs on the journeys' goroutine (or after it ended).
func (s *journeySaver) keep(j *decode.Journey) {
	if s.err != nil || s.log == nil {
		return
	}
	if s.f == nil {
		if s.err = s.open(); s.err != nil {
			return
		}
	}
	recs, complete := s.log.journey(j)
	if !complete {
		s.err = fmt.Errorf("journey %d: some of its records were older than %v and no longer kept", j.ID, inputKeep)
		return
	}
	for _, ns := range j.Namespaces() {
		if s.rulesets[ns] {
			continue
		}
		s.rulesets[ns] = true
		for _, ref := range s.refs {
			if ref.Name == ns {
				s.rec.ruleset(ref)
			}
		}
	}
	s.rec.write(func(iw *ui.IncidentWriter) error { return iw.Journey(j, recs) })
	for _, r := range recs {
		switch {
		case r.Frame != nil:
			s.records[0]++
		case r.Trace != nil:
			s.records[1]++
		default:
			s.records[2]++
		}
	}
	s.journeys = append(s.journeys, j)
}

func (s *journeySaver) open() error {
	f, err := os.Create(s.path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is said once
		}
		return fmt.Errorf("save journey to %s: %w", s.path, err)
	}
	s.f, s.bw = f, bufio.NewWriter(f)
	w, err := capture.NewPcapngWriterHost(s.bw, version, capture.LocalHost())
	if err != nil {
		return err
	}
	s.rec = newRecorder(w, s.ifname, func(err error) {
		if s.err == nil {
			s.err = err
		}
	})
	return nil
}

// close finishes the file and writes the Markdown summary beside it; it
// says what was saved, or why not. Without a journey, nothing is written;
// a file that could not be written whole is removed.
func (s *journeySaver) close() (string, error) {
	if s.f == nil {
		return "", s.err
	}
	err := s.err
	if ferr := s.bw.Flush(); err == nil {
		err = ferr
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f = nil
	if err != nil {
		os.Remove(s.path)
		return "", fmt.Errorf("save %s: %w", s.path, err)
	}
	md := ui.MarkdownPath(s.path)
	mf, err := os.Create(md)
	if err != nil {
		return "", fmt.Errorf("save the summary: %w", err)
	}
	err = ui.WriteMarkdown(mf, s.journeys, ui.MarkdownOptions{Location: time.Local, Recording: filepath.Base(s.path)})
	if cerr := mf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("save %s: %w", md, err)
	}
	what := "journey"
	if len(s.journeys) > 1 {
		what = fmt.Sprintf("%d journeys", len(s.journeys))
	}
	return fmt.Sprintf("%s saved to %s (%s, %s, %s; hooktrace -r %s --print replays it) and summarised in %s",
		what, s.path, plural(s.records[0], "packet"), plural(s.records[1], "trace event"), plural(s.records[2], "kernel drop"), s.path, md), nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
