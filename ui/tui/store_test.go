package tui

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
)

// testFrames returns n frames of varied sizes, some larger than a cache
// block, with bytes that tell them apart.
func testFrames(n int) []capture.Frame {
	out := make([]capture.Frame, n)
	for i := range out {
		size := 40 + (i*7919)%1500
		if i%97 == 0 {
			size = blockSize + 1000 // spans two blocks
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i + j*31)
		}
		out[i] = capture.Frame{Time: time.Unix(1, int64(i)), Netns: fmt.Sprintf("ns%d", i%3), Iface: "eth0", LinkType: capture.LinkTypeEthernet, Len: size, Data: data}
	}
	return out
}

// checkRows reads every row back, in order and then from the end, and
// compares it with the frame it was made of.
func checkRows(t *testing.T, s *store, frames []capture.Frame) {
	t.Helper()
	if len(s.rows) != len(frames) {
		t.Fatalf("%d rows, want %d", len(s.rows), len(frames))
	}
	for pass, order := range [][2]int{{0, 1}, {len(frames) - 1, -1}} {
		for i := order[0]; i >= 0 && i < len(frames); i += order[1] {
			f := s.frame(i)
			if !bytes.Equal(f.Data, frames[i].Data) || f.Netns != frames[i].Netns || !f.Time.Equal(frames[i].Time) {
				t.Fatalf("pass %d: row %d: got %d bytes in %s, want %d in %s (read error %v)", pass, i, len(f.Data), f.Netns, len(frames[i].Data), frames[i].Netns, s.readErr)
			}
		}
	}
}

func TestStoreInMemory(t *testing.T) {
	frames := testFrames(500)
	s := newStore()
	for _, f := range frames {
		s.add(f, 0)
	}
	checkRows(t, s, frames)
}

// TestStoreFileBacked lists frames by their offsets in a file and reads
// them again through the block cache.
func TestStoreFileBacked(t *testing.T) {
	frames := testFrames(500)
	var file bytes.Buffer
	s := newStore()
	offs := make([]int64, len(frames))
	for i, f := range frames {
		file.Write([]byte("header.."))
		offs[i] = int64(file.Len())
		file.Write(f.Data)
	}
	s.file = newBlockCache(bytes.NewReader(file.Bytes()), "the capture")
	s.fileSize = int64(file.Len())
	for i, f := range frames {
		f.Data = nil
		s.addAt(f, offs[i], uint32(len(frames[i].Data)), 0)
	}
	checkRows(t, s, frames)
	if cap(s.rows) > len(frames)*11/10+1024 {
		t.Errorf("rows reserved: %d for %d", cap(s.rows), len(frames))
	}
}

// TestStoreSpool writes frames to a spool file as they come and reads
// them again, also while the file grows under cached blocks.
func TestStoreSpool(t *testing.T) {
	frames := testFrames(600)
	f, err := os.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := newStore()
	s.spool = newSpool(f)
	for i, fr := range frames {
		s.add(fr, 0)
		if i%50 == 0 {
			s.flushSpool()
			checkRows(t, s, frames[:i+1]) // reads blocks the next frames grow
		}
	}
	checkRows(t, s, frames)
	s.flushSpool()
	checkRows(t, s, frames)
	if len(s.chunks) != 0 {
		t.Errorf("%d chunks in memory with a spool", len(s.chunks))
	}
}

// failingWriter takes limit bytes, then fails.
type failingWriter struct {
	f     *os.File
	limit int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.limit {
		n, _ := w.f.Write(p[:w.limit])
		w.limit = 0
		return n, errors.New("no space left on device")
	}
	w.limit -= len(p)
	return w.f.Write(p)
}

// TestStoreSpoolFull keeps every frame when the spool cannot be written
// to any more: the rest goes to memory, and the error is kept to show.
func TestStoreSpoolFull(t *testing.T) {
	frames := testFrames(300)
	f, err := os.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := newStore()
	s.spool = &spool{w: &failingWriter{f: f, limit: 500 << 10}, cache: newBlockCache(f, "the spool")}
	for _, fr := range frames {
		s.add(fr, 0)
	}
	s.flushSpool()
	if s.spool.err == nil {
		t.Fatal("the spool was never full: make the frames bigger")
	}
	checkRows(t, s, frames)
}

// TestStoreFileGrows lists a file that grew after it was opened (a
// capture still being written): rows past its size at opening are kept.
func TestStoreFileGrows(t *testing.T) {
	s := newStore()
	s.fileSize = 1 << 20
	for i := range 50000 {
		s.addAt(capture.Frame{Time: time.Unix(0, int64(i)), Len: 100}, int64(i)*100, 100, 0)
	}
	if len(s.rows) != 50000 {
		t.Fatalf("%d rows, want 50000", len(s.rows))
	}
}

// TestSaveAfterReadError saves a file-backed list whose file shrank after
// an earlier read already failed: the save fails, says so and leaves no
// file, rather than writing packets without their bytes.
func TestSaveAfterReadError(t *testing.T) {
	frames := testFrames(200)
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "cap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	offs := make([]int64, len(frames))
	var off int64
	b := Batch{Done: true}
	for i, fr := range frames {
		f.Write([]byte("header.."))
		offs[i] = off + 8
		f.Write(fr.Data)
		off += 8 + int64(len(fr.Data))
		b.CapLens = append(b.CapLens, uint32(len(fr.Data)))
		fr.Data = nil
		b.Frames = append(b.Frames, fr)
		b.Offsets = append(b.Offsets, offs[i])
		b.VNIs = append(b.VNIs, 0)
	}
	ch := make(chan Batch, 1)
	ch <- b
	m := New(Options{Source: "t", Batches: ch, Location: time.UTC, Now: func() time.Time { return fixedNow }, File: f})
	for deadline := time.Now().Add(5 * time.Second); m.loading; {
		if time.Now().After(deadline) {
			t.Fatal("loading did not end")
		}
		m.Update(tickMsg(time.Now()))
	}
	if err := f.Truncate(offs[100]); err != nil {
		t.Fatal(err)
	}
	if d := m.st.data(199); d != nil || m.st.readErr == nil {
		t.Fatalf("the shrunk file read: %d bytes, error %v", len(d), m.st.readErr)
	}
	out := filepath.Join(dir, "out.pcapng")
	m.save(out)
	if !strings.Contains(m.message, "save failed") || !strings.Contains(m.message, "read the capture again") {
		t.Errorf("save after a read error says %q", m.message)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed save left %s (%v)", out, err)
	}
}
