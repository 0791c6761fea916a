package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
)

// recordSource is what a replay reads: one capture file, or several
// merged in time order (capture.Merged).
type recordSource interface {
	NextRecord() (capture.Record, error)
	OnWarning(func(error))
	Path() string
	Close() error
}

// maxShiftSeconds is the largest time shift, in whole seconds: a
// time.Duration holds ±2^63 ns.
const maxShiftSeconds = math.MaxInt64 / int64(time.Second)

// parseTimeShift reads a --time-shift value, FILE=OFFSET: FILE is one of
// the -r files (as given, or its base name when that names only one), and
// OFFSET a signed duration ("+1.5ms", "-2s") or a number of seconds as
// editcap -t takes it ("-0.0015"). It returns the file's index among
// files.
func parseTimeShift(spec string, files []string) (int, time.Duration, error) {
	i := strings.LastIndexByte(spec, '=')
	if i <= 0 {
		return 0, 0, fmt.Errorf("--time-shift %q: want FILE=OFFSET, e.g. b.pcapng=-1.5ms", spec)
	}
	name, val := spec[:i], spec[i+1:]
	d, err := time.ParseDuration(val)
	if err != nil {
		secs, ferr := strconv.ParseFloat(val, 64)
		if ferr != nil && !errors.Is(ferr, strconv.ErrRange) || math.IsNaN(secs) {
			return 0, 0, fmt.Errorf("--time-shift %q: %q is neither a duration (+1.5ms) nor seconds (0.0015)", spec, val)
		}
		// A time.Duration holds ±2^63 ns; beyond, the conversion wraps.
		ns := secs * float64(time.Second)
		if ns < math.MinInt64 || ns >= math.MaxInt64 {
			return 0, 0, fmt.Errorf("--time-shift %q: %s seconds is out of range (at most ±%d, 292 years)", spec, val, maxShiftSeconds)
		}
		d = time.Duration(ns)
	}
	if idx := slices.Index(files, name); idx >= 0 {
		return idx, d, nil
	}
	idx := -1
	for k, f := range files {
		if filepath.Base(f) == name {
			if idx >= 0 {
				return 0, 0, fmt.Errorf("--time-shift %q: %s names two -r files; give the path as -r has it", spec, name)
			}
			idx = k
		}
	}
	if idx < 0 {
		return 0, 0, fmt.Errorf("--time-shift %q: %s is not one of the -r files", spec, name)
	}
	return idx, d, nil
}

// merging says whether the replay reads through a merge: several files,
// or a time shift.
func merging(o *options) bool {
	return len(o.readFiles) > 1 || o.timeShifts != nil
}

// openMerge opens the -r files as one time-ordered source, and says in
// one line each what the reader should know: files of different link
// types (a warning); namespaces qualified because two hosts name them
// alike. A file whose link types hooktrace cannot decode is an error.
func openMerge(o *options, warn func(error), stderr io.Writer) (*capture.Merged, error) {
	inputs := make([]capture.MergeInput, len(o.readFiles))
	for i, path := range o.readFiles {
		inputs[i] = capture.MergeInput{Path: path}
		if o.timeShifts != nil {
			inputs[i].Shift = o.timeShifts[i]
		}
	}
	m, err := capture.OpenMerge(inputs, warn)
	if err != nil {
		return nil, err
	}
	files := m.Files()
	for _, f := range files {
		if len(f.LinkTypes) > 0 && !slices.ContainsFunc(f.LinkTypes, decode.SupportsLinkType) {
			m.Close()
			return nil, fmt.Errorf("%s: unknown link type %d: hooktrace reads Ethernet, Linux cooked (SLL, SLL2), raw IP, loopback and NFLOG captures", f.Path, f.LinkTypes[0])
		}
	}
	if len(files) > 1 && !sameLinkTypes(files) {
		var desc []string
		for _, f := range files {
			var names []string
			for _, lt := range f.LinkTypes {
				names = append(names, linkTypeName(lt))
			}
			desc = append(desc, f.Path+": "+strings.Join(names, " and "))
		}
		warn(fmt.Errorf("the files have different link types (%s): each packet is decoded as its own file declares it", strings.Join(desc, ", ")))
	}
	for _, f := range files {
		var names []string
		for from, to := range f.Renamed {
			if from != "" { // a capture's unnamed namespace: the label says which file
				names = append(names, from+" as "+to)
			}
		}
		if len(names) == 0 {
			continue
		}
		slices.Sort(names)
		fmt.Fprintf(stderr, "hooktrace: %s (host %s): namespaces another host's file names too are shown qualified: %s\n", f.Path, f.Label, strings.Join(names, ", "))
	}
	return m, nil
}

func sameLinkTypes(files []capture.MergedFile) bool {
	for _, f := range files[1:] {
		a, b := slices.Clone(f.LinkTypes), slices.Clone(files[0].LinkTypes)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			return false
		}
	}
	return true
}

// replayWarner prints replay warnings, one line each, at most
// maxReplayWarnings of them.
func replayWarner(stderr io.Writer, what string) func(error) {
	var mu sync.Mutex // the reader and the journeys' stage both warn
	warnings := 0
	return func(err error) {
		mu.Lock()
		defer mu.Unlock()
		warnings++
		switch {
		case warnings <= maxReplayWarnings:
			fmt.Fprintf(stderr, "hooktrace: warning: %v\n", err)
		case warnings == maxReplayWarnings+1:
			fmt.Fprintf(stderr, "hooktrace: warning: further warnings about %s are left out\n", what)
		}
	}
}

// linkTypeName names a link type for messages.
func linkTypeName(lt capture.LinkType) string {
	switch lt {
	case capture.LinkTypeEthernet:
		return "Ethernet"
	case capture.LinkTypeLinuxSLL:
		return "Linux cooked (SLL)"
	case capture.LinkTypeLinuxSLL2:
		return "Linux cooked (SLL2)"
	case capture.LinkTypeRaw, capture.LinkTypeIPv4, capture.LinkTypeIPv6, capture.LinkTypeRawDLT12, capture.LinkTypeRawDLT14:
		return fmt.Sprintf("raw IP (%d)", lt)
	case capture.LinkTypeNull, capture.LinkTypeLoop:
		return fmt.Sprintf("loopback (%d)", lt)
	case capture.LinkTypeNFLOG:
		return "NFLOG"
	}
	return fmt.Sprintf("link type %d", lt)
}

// readFilesFrom sets the -r files and their --time-shift offsets.
func (o *options) readFilesFrom(reads, shifts []string) error {
	o.readFiles = reads
	if len(reads) > 0 {
		o.readFile = reads[0]
	}
	if len(reads) > 1 && slices.Contains(reads, "-") {
		return errors.New("-r -: standard input can be read only once, so it cannot be merged with other files")
	}
	if len(shifts) > 0 && len(reads) == 0 {
		return errors.New("--time-shift moves the times of a -r file: give -r FILE too")
	}
	for _, spec := range shifts {
		i, d, err := parseTimeShift(spec, reads)
		if err != nil {
			return err
		}
		if o.timeShifts == nil {
			o.timeShifts = make([]time.Duration, len(reads))
		}
		sum := o.timeShifts[i] + d
		if (d > 0 && sum < o.timeShifts[i]) || (d < 0 && sum > o.timeShifts[i]) {
			return fmt.Errorf("--time-shift %q: the offsets of %s add up to more than ±%d seconds (292 years)", spec, reads[i], maxShiftSeconds)
		}
		o.timeShifts[i] = sum
	}
	return nil
}

// openTUISource opens what the terminal UI reads: the -r file, with a
// count of the bytes read for the progress bar, or the -r files merged.
// What a merge has to say is held in held until the terminal is given
// back.
func openTUISource(o *options, held *heldLog) (capture.Source, func() (int64, int64), func(), error) {
	if !merging(o) {
		return openCounted(o.readFile)
	}
	m, err := openMerge(o, replayWarner(held, o.readFile), held)
	if err != nil {
		return nil, nil, nil, err
	}
	return m, m.Progress, func() { m.Close() }, nil
}
