package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var mergeT0 = time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)

// mergeEntry is a frame (kind 0) or a custom record to write.
type mergeEntry struct {
	ms    int // milliseconds after mergeT0
	netns string
	kind  CustomKind
}

// writeMergeFile writes a hooktrace file of host h with the entries, in
// the order given.
func writeMergeFile(t *testing.T, dir, name string, h Host, entries []mergeEntry) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewPcapngWriterHost(&buf, "hooktrace test", h)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		at := mergeT0.Add(time.Duration(e.ms) * time.Millisecond)
		if e.kind == 0 {
			err = w.WritePacket(Frame{Time: at, Netns: e.netns, Iface: "eth0", LinkType: LinkTypeEthernet, Len: 14, Data: bytes.Repeat([]byte{byte(i)}, 14)})
		} else {
			err = w.WriteCustom(e.kind, at, e.netns, []byte(name))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// mergeLines reads a merge to its end, one line per record: time in ms,
// namespace, and the file a record came from.
func mergeLines(t *testing.T, m *Merged) ([]string, error) {
	t.Helper()
	var lines []string
	for {
		rec, err := m.NextRecord()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return lines, err
		}
		if c := rec.Custom; c != nil {
			lines = append(lines, fmt.Sprintf("%d %s %s %s shift=%v renamed=%v", c.Time.Sub(mergeT0).Milliseconds(), c.Netns, c.Kind, c.Payload, c.Shift, c.Renamed))
		} else {
			lines = append(lines, fmt.Sprintf("%d %s frame", rec.Frame.Time.Sub(mergeT0).Milliseconds(), rec.Frame.Netns))
		}
	}
}

// TestMerge merges two hosts' recordings: records come in time order,
// each file's own order kept; the namespace both hosts have is
// qualified with each host's name, the other is not; a shift moves a
// file's frames and records alike.
func TestMerge(t *testing.T) {
	dir := t.TempDir()
	a := writeMergeFile(t, dir, "a.pcapng", Host{Name: "alpha", BootID: "1"}, []mergeEntry{
		{0, "hxa", CustomRuleset}, {1, "hxa", 0}, {3, "", 0}, {5, "hxa", CustomTrace}, {4, "hxa", 0},
	})
	b := writeMergeFile(t, dir, "b.pcapng", Host{Name: "beta", BootID: "2"}, []mergeEntry{
		{2, "hxb", 0}, {3, "", CustomTrace}, {0, "", CustomLoss}, {6, "hxb", 0},
	})
	m, err := OpenMerge([]MergeInput{{Path: a}, {Path: b, Shift: 10 * time.Millisecond}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, err := mergeLines(t, m)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"0 hxa ruleset snapshot a.pcapng shift=0s renamed=false",
		"1 hxa frame",
		"3 alpha frame",
		"5 hxa trace event a.pcapng shift=0s renamed=false",
		"4 hxa frame", // a file's order is kept
		"12 hxb frame",
		"13 beta trace event b.pcapng shift=10ms renamed=true",
		"10  loss notice b.pcapng shift=10ms renamed=false", // "" is every namespace of a loss, not a name
		"16 hxb frame",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("merged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	files := m.Files()
	if files[0].Label != "alpha" || files[1].Label != "beta" || files[0].Host.BootID != "1" {
		t.Errorf("files: %+v", files)
	}
	if len(files[0].Renamed) != 1 || files[0].Renamed[""] != "alpha" {
		t.Errorf("renamed in a: %v", files[0].Renamed)
	}
}

// TestMergeLabels: without host names, files are labelled by their
// names; files of one boot of one host share their namespaces.
func TestMergeLabels(t *testing.T) {
	dir := t.TempDir()
	a := writeMergeFile(t, dir, "left.pcapng", Host{}, []mergeEntry{{1, "hx", 0}})
	b := writeMergeFile(t, dir, "right.pcapng", Host{}, []mergeEntry{{2, "hx", 0}})
	m, err := OpenMerge([]MergeInput{{Path: a}, {Path: b}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := mergeLines(t, m)
	m.Close()
	if want := "1 left:hx frame\n2 right:hx frame"; strings.Join(got, "\n") != want {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}

	same := Host{Name: "h", BootID: "b"}
	a = writeMergeFile(t, dir, "one.pcapng", same, []mergeEntry{{1, "hx", 0}})
	b = writeMergeFile(t, dir, "two.pcapng", same, []mergeEntry{{2, "hx", 0}})
	m, err = OpenMerge([]MergeInput{{Path: a}, {Path: b}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = mergeLines(t, m)
	m.Close()
	if want := "1 hx frame\n2 hx frame"; strings.Join(got, "\n") != want {
		t.Errorf("one host: got\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
}

// TestMergeBadInput: a missing file and standard input beside a file are
// errors at open; a damaged file ends at its damage, the others are read
// to their end, then its error comes.
func TestMergeBadInput(t *testing.T) {
	dir := t.TempDir()
	a := writeMergeFile(t, dir, "a.pcapng", Host{}, []mergeEntry{{1, "hx", 0}, {5, "hx", 0}})
	if _, err := OpenMerge([]MergeInput{{Path: a}, {Path: filepath.Join(dir, "missing.pcapng")}}, nil); err == nil || !strings.Contains(err.Error(), "missing.pcapng") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := OpenMerge([]MergeInput{{Path: a}, {Path: "-"}}, nil); err == nil {
		t.Error("standard input merged")
	}
	b := writeMergeFile(t, dir, "b.pcapng", Host{}, []mergeEntry{{2, "hy", 0}, {3, "hy", 0}})
	data, _ := os.ReadFile(b)
	bad := filepath.Join(dir, "bad.pcapng")
	os.WriteFile(bad, data[:len(data)-10], 0o644) // the last block cut short
	m, err := OpenMerge([]MergeInput{{Path: a}, {Path: bad}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, err := mergeLines(t, m)
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Path != bad {
		t.Errorf("error %v, want the damaged file's", err)
	}
	if want := "1 hx frame\n2 hy frame\n5 hx frame"; strings.Join(got, "\n") != want {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
}

// TestHostRoundTrip reads back the host a writer recorded.
func TestHostRoundTrip(t *testing.T) {
	h := Host{Name: "alpha", BootID: "0f1e"}
	path := writeMergeFile(t, t.TempDir(), "h.pcapng", h, []mergeEntry{{1, "hx", 0}})
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Next(); err != nil {
		t.Fatal(err)
	}
	if f.Host() != h {
		t.Errorf("host %+v, want %+v", f.Host(), h)
	}
	tsharkLines(t, "-r", path) // no warning about the options
}
