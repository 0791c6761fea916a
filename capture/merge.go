package capture

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// MergeInput is one capture file of a merge.
type MergeInput struct {
	Path string
	// Shift is added to every time in the file, frames and hooktrace
	// records alike, as editcap -t does: a recording made on a host whose
	// clock ran 1.5 ms ahead merges right with a Shift of -1.5ms.
	Shift time.Duration
}

// MergedFile says how a Merge reads one of its files.
type MergedFile struct {
	Path      string
	Label     string     // the host label its namespaces are qualified with, when they are
	Host      Host       // as the file recorded it; zero when it did not
	LinkTypes []LinkType // every link type the file declares (after a scan; see OpenMerge)
	// Renamed maps the namespaces of the file that another host's file
	// names too to their qualified names.
	Renamed map[string]string
}

// Merged reads several capture files as one, in time order: it keeps the
// next record of each file and returns the earliest (a heap), frames and
// hooktrace records alike; records of one file keep their order. A
// namespace name that files of two hosts both use is qualified, in that
// namespace's frames and records, with the host label of its file:
// "LABEL:NS", or "LABEL" for a capture's unnamed namespace. The label is
// the recorded host name when the hosts' names differ, otherwise the
// file's name without its extension. Files from the same boot of the same
// host (hooktrace records the boot id) share their namespaces.
//
// A file that turns out damaged leaves the merge at the damage; the
// others are read to their end, and then the first such error is
// returned in place of io.EOF.
type Merged struct {
	files   []*mergeFile
	heap    mergeHeap
	pending *mergeFile // its head was returned last: read on at the next call
	err     error
	warn    func(error)
}

type mergeFile struct {
	MergedFile
	shift time.Duration
	f     *File
	head  Record
	key   int64 // head's time in Unix nanoseconds; the previous one when head has none
	idx   int
	pos   int // in the heap
}

// OpenMerge opens the files for reading as one. With more than one file,
// each is first read through once, to learn its namespaces, link types and
// host (standard input, "-", can therefore only be read alone). warn, when
// not nil, is told about records the files skip (NextRecord's warnings).
func OpenMerge(inputs []MergeInput, warn func(error)) (*Merged, error) {
	if len(inputs) == 0 {
		return nil, errors.New("merge: no capture file")
	}
	m := &Merged{warn: warn}
	for i, in := range inputs {
		if in.Path == "-" && len(inputs) > 1 {
			return nil, errors.New("standard input (-r -) cannot be merged with other files: it can be read only once")
		}
		m.files = append(m.files, &mergeFile{MergedFile: MergedFile{Path: in.Path}, shift: in.Shift, idx: i})
	}
	if len(inputs) > 1 {
		if err := m.scan(); err != nil {
			return nil, err
		}
	}
	for _, mf := range m.files {
		if err := mf.open(); err != nil {
			m.Close()
			return nil, err
		}
		mf.f.OnWarning(warn)
		if mf.advance(m) {
			heap.Push(&m.heap, mf)
		}
	}
	return m, nil
}

// scan reads every file once for its namespaces, link types and host,
// and decides the labels and renames.
func (m *Merged) scan() error {
	names := make([]map[string]bool, len(m.files))
	for i, mf := range m.files {
		var err error
		if names[i], err = mf.scan(); err != nil {
			return err
		}
	}
	labels, groups := hostLabels(m.files)
	byName := map[string]map[int]bool{} // namespace name: the host groups that have it
	for i, ns := range names {
		for n := range ns {
			if byName[n] == nil {
				byName[n] = map[int]bool{}
			}
			byName[n][groups[i]] = true
		}
	}
	for i, mf := range m.files {
		mf.Label = labels[i]
		for n := range names[i] {
			if len(byName[n]) < 2 {
				continue
			}
			if mf.Renamed == nil {
				mf.Renamed = map[string]string{}
			}
			mf.Renamed[n] = QualifiedNetns(labels[i], n)
		}
	}
	return nil
}

// QualifiedNetns is the name a merge gives namespace ns of the host
// labelled label: "LABEL:NS", or LABEL for the unnamed namespace.
func QualifiedNetns(label, ns string) string {
	if ns == "" {
		return label
	}
	return label + ":" + ns
}

// scan reads the file through once. A file that cannot be opened is an
// error; damage further on is left for the merge to report when it gets
// there.
func (mf *mergeFile) scan() (map[string]bool, error) {
	f, err := Open(mf.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := map[string]bool{}
	for {
		rec, err := f.NextRecord()
		if err != nil {
			break
		}
		switch c := rec.Custom; {
		case c == nil:
			names[rec.Frame.Netns] = true
		case c.Kind == CustomLoss && c.Netns == "":
			// a loss of every namespace, not one named ""
		default:
			names[c.Netns] = true
		}
	}
	mf.Host = f.Host()
	for _, lt := range f.LinkTypes() {
		if !slices.Contains(mf.LinkTypes, lt) {
			mf.LinkTypes = append(mf.LinkTypes, lt)
		}
	}
	return names, nil
}

// hostLabels groups the files by host (same boot of the same machine)
// and labels each group: by host name when every group has its own,
// else by its first file's name.
func hostLabels(files []*mergeFile) (labels []string, groups []int) {
	groups = make([]int, len(files))
	var first []int // each group's first file
	for i, mf := range files {
		groups[i] = len(first)
		for g, j := range first {
			if mf.Host.Same(files[j].Host) {
				groups[i] = g
				break
			}
		}
		if groups[i] == len(first) {
			first = append(first, i)
		}
	}
	byHost := true
	seen := map[string]bool{}
	for _, j := range first {
		n := files[j].Host.Name
		if n == "" || seen[n] {
			byHost = false
		}
		seen[n] = true
	}
	glabel := make([]string, len(first))
	used := map[string]bool{}
	for g, j := range first {
		l := files[j].Host.Name
		if !byHost {
			l = fileLabel(files[j].Path)
		}
		if used[l] {
			l = fmt.Sprintf("%s#%d", l, j+1)
		}
		used[l] = true
		glabel[g] = l
	}
	labels = make([]string, len(files))
	for i := range files {
		labels[i] = glabel[groups[i]]
	}
	return labels, groups
}

// fileLabel is a file's name without its directory and capture
// extensions.
func fileLabel(path string) string {
	l := filepath.Base(path)
	for _, ext := range []string{".gz", ".pcapng", ".pcap", ".ntar", ".cap"} {
		l = strings.TrimSuffix(l, ext)
	}
	if l == "" {
		l = filepath.Base(path)
	}
	return l
}

// open opens the file for the merge, counting the bytes read.
func (mf *mergeFile) open() error {
	if mf.Path == "-" {
		f, err := NewReader(os.Stdin, "-")
		if err != nil {
			return err
		}
		mf.f = f
		return nil
	}
	f, err := Open(mf.Path)
	if err != nil {
		return err
	}
	mf.f = f
	return nil
}

// advance reads the file's next record into head, shifted and renamed;
// false at its end or damage (then m.err or warn has it).
func (mf *mergeFile) advance(m *Merged) bool {
	rec, err := mf.f.NextRecord()
	if err != nil {
		if !errors.Is(err, io.EOF) {
			if m.err == nil {
				m.err = err
			} else if m.warn != nil {
				m.warn(err)
			}
		}
		return false
	}
	var t *time.Time
	var netns *string
	if c := rec.Custom; c != nil {
		t, netns = &c.Time, &c.Netns
		c.Shift = mf.shift
		if c.Kind == CustomLoss && c.Netns == "" {
			netns = nil // every namespace, not one named ""
		}
	} else {
		t, netns = &rec.Frame.Time, &rec.Frame.Netns
	}
	if !t.IsZero() {
		*t = t.Add(mf.shift)
		mf.key = t.UnixNano()
	}
	if netns != nil {
		if n, ok := mf.Renamed[*netns]; ok {
			*netns = n
			if rec.Custom != nil {
				rec.Custom.Renamed = true
			}
		}
	}
	mf.head = rec
	return true
}

// NextRecord returns the earliest next record of the files, or io.EOF
// when every file ended (the first file's error instead, when one was
// damaged). The record's data belong to the merge until the next call.
func (m *Merged) NextRecord() (Record, error) {
	if mf := m.pending; mf != nil {
		m.pending = nil
		if mf.advance(m) {
			heap.Fix(&m.heap, mf.pos)
		} else {
			heap.Remove(&m.heap, mf.pos)
		}
	}
	if len(m.heap) == 0 {
		if m.err != nil {
			return Record{}, m.err
		}
		return Record{}, io.EOF
	}
	m.pending = m.heap[0]
	return m.pending.head, nil
}

// Next returns the next frame of the merge, skipping hooktrace records.
func (m *Merged) Next() (Frame, error) {
	for {
		rec, err := m.NextRecord()
		if err != nil || rec.Custom == nil {
			return rec.Frame, err
		}
	}
}

// OnWarning sets the function told about what the files skip.
func (m *Merged) OnWarning(fn func(error)) {
	m.warn = fn
	for _, mf := range m.files {
		if mf.f != nil {
			mf.f.OnWarning(fn)
		}
	}
}

// Files describes the files of the merge, in the order given.
func (m *Merged) Files() []MergedFile {
	out := make([]MergedFile, len(m.files))
	for i, mf := range m.files {
		out[i] = mf.MergedFile
		if len(out[i].LinkTypes) == 0 && mf.f != nil {
			out[i].LinkTypes = mf.f.LinkTypes()
		}
	}
	return out
}

// Path names the files, for messages.
func (m *Merged) Path() string {
	names := make([]string, len(m.files))
	for i, mf := range m.files {
		names[i] = mf.Path
	}
	return strings.Join(names, ", ")
}

// Progress returns the bytes read of all the files and their total size
// (0 when unknown), for a progress bar.
func (m *Merged) Progress() (read, total int64) {
	for _, mf := range m.files {
		r, t := mf.f.Progress()
		if t == 0 {
			return read, 0
		}
		read += r
		total += t
	}
	return read, total
}

// Close closes every file.
func (m *Merged) Close() error {
	var err error
	for _, mf := range m.files {
		if mf.f != nil {
			if cerr := mf.f.Close(); err == nil {
				err = cerr
			}
		}
	}
	return err
}

// mergeHeap orders the files by their head's time, then by their place
// on the command line.
type mergeHeap []*mergeFile

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if h[i].key != h[j].key {
		return h[i].key < h[j].key
	}
	return h[i].idx < h[j].idx
}
func (h mergeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *mergeHeap) Push(x any) {
	mf := x.(*mergeFile)
	mf.pos = len(*h)
	*h = append(*h, mf)
}
func (h *mergeHeap) Pop() any {
	old := *h
	mf := old[len(old)-1]
	*h = old[:len(old)-1]
	return mf
}
