package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testCustom struct {
	kind    CustomKind
	at      time.Time
	netns   string
	payload []byte
}

func testCustoms() []testCustom {
	t0 := time.Date(2026, 1, 2, 12, 0, 0, 500, time.UTC)
	return []testCustom{
		{CustomRuleset, t0, "hxs", []byte("table inet filter { # handle 1\n}\n")},
		{CustomTrace, t0.Add(time.Microsecond), "hxs", []byte{1, 2, 3}},
		{CustomDrop, t0.Add(2 * time.Microsecond), "", nil},
		{CustomLoss, time.Time{}, "hxc", []byte("x")},
		{CustomInterface, t0.Add(3 * time.Millisecond), "hxc", []byte{0, 0, 0, 0, 9}},
	}
}

// writeMixed writes the test frames with a custom record after each.
func writeMixed(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewPcapngWriter(&buf, "hooktrace test")
	if err != nil {
		t.Fatal(err)
	}
	cs := testCustoms()
	for i, f := range testFrames() {
		if err := w.WritePacket(f); err != nil {
			t.Fatal(err)
		}
		c := cs[i%len(cs)]
		if err := w.WriteCustom(c.kind, c.at, c.netns, c.payload); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// readRecords reads every record, describing each as a line, and returns
// the warnings given.
func readRecords(t *testing.T, data []byte) (lines, warnings []string, err error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), "test")
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	r.OnWarning(func(err error) { warnings = append(warnings, err.Error()) })
	for {
		rec, err := r.NextRecord()
		if errors.Is(err, io.EOF) {
			return lines, warnings, nil
		}
		if err != nil {
			return lines, warnings, err
		}
		lines = append(lines, describeRecord(rec))
	}
}

func describeRecord(rec Record) string {
	if c := rec.Custom; c != nil {
		at := "-"
		if !c.Time.IsZero() {
			at = fmt.Sprint(c.Time.UnixNano())
		}
		return fmt.Sprintf("custom %s v%d %s %q %x", c.Kind, c.Version, at, c.Netns, c.Payload)
	}
	f := rec.Frame
	return fmt.Sprintf("frame %d %s/%s %x", f.Time.UnixNano(), f.Netns, f.Iface, f.Data)
}

func wantMixed() []string {
	var want []string
	cs := testCustoms()
	for i, f := range testFrames() {
		want = append(want, describeRecord(Record{Frame: f}))
		c := cs[i%len(cs)]
		want = append(want, describeRecord(Record{Custom: &CustomRecord{Kind: c.kind, Version: CustomVersion, Time: c.at, Netns: c.netns, Payload: c.payload}}))
	}
	return want
}

func TestCustomRoundTrip(t *testing.T) {
	data := writeMixed(t)
	got, warnings, err := readRecords(t, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %q", warnings)
	}
	if g, w := strings.Join(got, "\n"), strings.Join(wantMixed(), "\n"); g != w {
		t.Errorf("read\n%s\nwant\n%s", g, w)
	}
	// Next, for callers that want frames only, skips the custom blocks.
	frames, err := readAll(t, data)
	if err != nil || len(frames) != len(testFrames()) {
		t.Errorf("Next read %d frames (%v), want %d", len(frames), err, len(testFrames()))
	}
}

// customBlock builds a custom block body by hand: PEN, then data.
func customBlock(pen uint32, data []byte) []byte {
	body := binary.LittleEndian.AppendUint32(nil, pen)
	body = appendPad(append(body, data...))
	b := binary.LittleEndian.AppendUint32(nil, blockCustomCopy)
	b = binary.LittleEndian.AppendUint32(b, uint32(12+len(body)))
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, uint32(12+len(body)))
}

func TestCustomSkipped(t *testing.T) {
	good := appendCustomData(nil, CustomTrace, 1, "ns", []byte("payload"))
	newer := bytes.Clone(good)
	newer[4] = CustomVersion + 1
	damaged := bytes.Clone(good)
	damaged[len(damaged)-1] ^= 1
	short := bytes.Clone(good)
	binary.LittleEndian.PutUint32(short[16:], 1000)
	tests := []struct {
		name, block, warning string
	}{
		{"foreign", string(customBlock(99, []byte("someone else's"))), "enterprise number 99 is not hooktrace's"},
		{"newer version", string(customBlock(HooktracePEN, newer)), "format version 2 (this hooktrace reads version 1; a newer hooktrace wrote it)"},
		{"damaged payload", string(customBlock(HooktracePEN, damaged)), "trace event record is damaged"},
		{"length beyond block", string(customBlock(HooktracePEN, short)), "claims 1026 bytes in a 36-byte block"},
		{"no header", string(customBlock(HooktracePEN, []byte("HKT"))), "has no hooktrace header"},
		{"empty", string(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, blockCustomCopy), 12), 12)), "custom block too short (0 bytes)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := writeMixed(t)
			// The bad block goes after the first frame and its record.
			cut := bytes.Index(data, []byte(customMagic)) - 12
			cut += int(binary.LittleEndian.Uint32(data[cut+4:]))
			mixed := append(append(bytes.Clone(data[:cut]), tc.block...), data[cut:]...)
			got, warnings, err := readRecords(t, mixed)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := strings.Join(got, "\n"), strings.Join(wantMixed(), "\n"); g != w {
				t.Errorf("read\n%s\nwant\n%s", g, w)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], tc.warning) || !strings.HasPrefix(warnings[0], fmt.Sprintf("test: byte %d: ", cut)) {
				t.Errorf("warnings %q, want one at byte %d saying %q", warnings, cut, tc.warning)
			}
		})
	}
}

// TestCustomCutOff cuts a recording at every byte, as a kill -9 while
// writing can: every block complete before the cut is read, then the
// reader reports where the file ends.
func TestCustomCutOff(t *testing.T) {
	data := writeMixed(t)
	want := wantMixed()
	// Block boundaries, and where each record (packet or custom block)
	// ends.
	var ends, recordEnds []int
	for off := 0; off < len(data); {
		typ := binary.LittleEndian.Uint32(data[off:])
		off += int(binary.LittleEndian.Uint32(data[off+4:]))
		ends = append(ends, off)
		if typ == blockEnhancedPacket || typ == blockCustomCopy {
			recordEnds = append(recordEnds, off)
		}
	}
	for cut := 1; cut < len(data); cut++ {
		got, _, err := readRecords(t, data[:cut])
		complete := 0
		for _, e := range recordEnds {
			if e <= cut {
				complete++
			}
		}
		if len(got) != complete || strings.Join(got, "\n") != strings.Join(want[:complete], "\n") {
			t.Fatalf("cut at %d: read %d records, want the %d complete", cut, len(got), complete)
		}
		atBoundary := false
		for _, e := range ends {
			atBoundary = atBoundary || e == cut
		}
		var fe *FormatError
		if atBoundary && err != nil {
			t.Fatalf("cut at block end %d: %v", cut, err)
		}
		if !atBoundary && cut > 28 && !errors.As(err, &fe) {
			t.Fatalf("cut at %d: error %v, want a FormatError", cut, err)
		}
	}
}

func TestCustomConcurrentWrites(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewPcapngWriter(&buf, "hooktrace test")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			if err := w.WriteCustom(CustomTrace, time.Unix(1, int64(i)), "ns", []byte{byte(i)}); err != nil {
				t.Error(err)
			}
		}
	}()
	for i := 0; i < 200; i++ {
		if err := w.WritePacket(testFrames()[i%5]); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	got, warnings, err := readRecords(t, buf.Bytes())
	if err != nil || len(warnings) > 0 || len(got) != 400 {
		t.Fatalf("read %d records, warnings %q, error %v; want 400", len(got), warnings, err)
	}
}

// wiresharkTool runs editcap, mergecap or tshark, failing on any message
// on stderr but the one about running as root.
func wiresharkTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed", name)
		}
		t.Skipf("%s is not installed", name)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if l != "" && !strings.Contains(l, "Running as user") {
			t.Errorf("%s warns: %s", name, l)
		}
	}
	return stdout.String()
}

// TestCustomWithWiresharkTools: tshark reads a file with custom records
// without a word and counts the frames only; editcap and mergecap keep
// the records.
func TestCustomWithWiresharkTools(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mixed.pcapng")
	if err := os.WriteFile(path, writeMixed(t), 0o644); err != nil {
		t.Fatal(err)
	}
	// tshark 4 lists each custom block as a record of its own, without
	// an encapsulation; the packets are the records with one.
	lines := tsharkLines(t, "-r", path, "-Y", "frame.encap_type", "-T", "fields", "-e", "frame.number")
	if len(lines) != len(testFrames()) {
		t.Errorf("tshark counts %d frames, want %d: %q", len(lines), len(testFrames()), lines)
	}
	edited := filepath.Join(dir, "edited.pcapng")
	wiresharkTool(t, "editcap", "-F", "pcapng", path, edited)
	merged := filepath.Join(dir, "merged.pcapng")
	wiresharkTool(t, "mergecap", "-F", "pcapng", "-w", merged, path)
	for _, out := range []string{edited, merged} {
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		got, warnings, err := readRecords(t, data)
		if err != nil || len(warnings) > 0 {
			t.Fatalf("%s: %v, warnings %q", filepath.Base(out), err, warnings)
		}
		var customs []string
		for _, l := range got {
			if strings.HasPrefix(l, "custom") {
				customs = append(customs, l)
			}
		}
		var want []string
		for _, l := range wantMixed() {
			if strings.HasPrefix(l, "custom") {
				want = append(want, l)
			}
		}
		if strings.Join(customs, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s keeps\n%s\nwant\n%s", filepath.Base(out), strings.Join(customs, "\n"), strings.Join(want, "\n"))
		}
	}
}

// FuzzFileRecords feeds arbitrary bytes to NextRecord: records or an
// error, never a panic, never a loop without progress, every custom
// record within the input.
func FuzzFileRecords(f *testing.F) {
	var buf bytes.Buffer
	w, _ := NewPcapngWriter(&buf, "hooktrace fuzz")
	w.WritePacket(testFrames()[0])
	for _, c := range testCustoms() {
		w.WriteCustom(c.kind, c.at, c.netns, c.payload)
	}
	f.Add(buf.Bytes())
	damaged := bytes.Clone(buf.Bytes())
	damaged[len(damaged)-8] ^= 0xff
	f.Add(damaged)
	f.Add(append(bytes.Clone(buf.Bytes()[:len(buf.Bytes())-20]), customBlock(7, []byte("x"))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		defer r.Close()
		r.OnWarning(func(err error) {
			if err.Error() == "" {
				t.Fatal("empty warning")
			}
		})
		for i := 0; i <= len(data); i++ {
			rec, err := r.NextRecord()
			if err != nil {
				return
			}
			if c := rec.Custom; c != nil && len(c.Payload)+len(c.Netns) > len(data) {
				t.Fatalf("custom record of %d bytes from %d input bytes", len(c.Payload)+len(c.Netns), len(data))
			}
		}
		t.Fatalf("more records than input bytes")
	})
}
