package capture

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testFrames() []Frame {
	t0 := time.Date(2026, 1, 2, 12, 0, 0, 123456789, time.UTC)
	return []Frame{
		{Time: t0, Netns: "hxs", Iface: "s0", Dir: DirOut, LinkType: LinkTypeEthernet, Len: 70, Data: bytes.Repeat([]byte{1}, 60)},
		{Time: t0.Add(time.Nanosecond), Netns: "hxc", Iface: "c0", Dir: DirIn, LinkType: LinkTypeEthernet, Len: 61, Data: bytes.Repeat([]byte{2}, 61), Comment: "seen twice"},
		{Time: t0.Add(time.Millisecond), Netns: "hxs", Iface: "tun0", Dir: DirIn, LinkType: LinkTypeRaw, Len: 20, Data: append([]byte{0x45}, make([]byte, 19)...)},
		{Time: t0.Add(2 * time.Millisecond), Iface: "eth0", LinkType: LinkTypeEthernet, Len: 14, Data: make([]byte, 14)},
		{Time: t0.Add(3 * time.Millisecond), Netns: "hxs", Iface: "s0", Dir: DirIn, LinkType: LinkTypeEthernet, Len: 60, Data: bytes.Repeat([]byte{3}, 60)},
		// Frames that named no interface (a merge of plain pcaps gives
		// each file's a namespace).
		{Time: t0.Add(4 * time.Millisecond), Netns: "hxp", LinkType: LinkTypeEthernet, Len: 60, Data: bytes.Repeat([]byte{4}, 60)},
		{Time: t0.Add(5 * time.Millisecond), LinkType: LinkTypeEthernet, Len: 60, Data: bytes.Repeat([]byte{5}, 60)},
	}
}

func writeTestPcapng(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewPcapngWriter(&buf, "hooktrace test")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range testFrames() {
		if err := w.WritePacket(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteInterfaceStats("hxs", "s0", LinkTypeEthernet, 2, 1, 0, time.Unix(1767355201, 0)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "w.pcapng")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPcapngWriterRoundTrip(t *testing.T) {
	path := writeTestPcapng(t)
	data, _ := os.ReadFile(path)
	got, err := readAll(t, data)
	if err != nil {
		t.Fatal(err)
	}
	want := testFrames()
	if len(got) != len(want) {
		t.Fatalf("read %d frames, wrote %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) || g.Netns != w.Netns || g.Iface != w.Iface || g.Dir != w.Dir ||
			g.LinkType != w.LinkType || g.Len != w.Len || !bytes.Equal(g.Data, w.Data) || g.Comment != w.Comment {
			t.Errorf("frame %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// tsharkLines runs tshark and returns its output lines without the root
// notice; it fails the test on any other message on stderr.
func tsharkLines(t *testing.T, args ...string) []string {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tshark is not installed")
		}
		t.Skip("tshark is not installed")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("tshark", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if l != "" && !strings.Contains(l, "Running as user") {
			t.Errorf("tshark warns: %s", l)
		}
	}
	return strings.Split(strings.TrimSpace(stdout.String()), "\n")
}

func TestPcapngWriterOpensInTshark(t *testing.T) {
	path := writeTestPcapng(t)
	lines := tsharkLines(t, "-r", path, "-T", "fields", "-e", "frame.interface_name", "-e", "frame.packet_flags_direction", "-e", "frame.comment")
	want := []string{"hxs/s0\t0x00000002\t", "hxc/c0\t0x00000001\tseen twice", "hxs/tun0\t0x00000001\t", "eth0\t\t", "hxs/s0\t0x00000001\t", "hxp/\t\t", "an unnamed interface"} // tshark names an interface without if_name by its description
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("tshark reads\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestPcapngSurvivesWiresharkTools runs hooktrace's pcapng through editcap
// (which keeps the section header) and mergecap (which rewrites it): the
// namespace, interface and direction of every packet come back.
func TestPcapngSurvivesWiresharkTools(t *testing.T) {
	path := writeTestPcapng(t)
	for _, tool := range []struct {
		name string
		args func(out string) []string
	}{
		{"editcap", func(out string) []string { return []string{"-F", "pcapng", path, out} }},
		{"mergecap", func(out string) []string { return []string{"-F", "pcapng", "-w", out, path} }},
	} {
		t.Run(tool.name, func(t *testing.T) {
			if _, err := exec.LookPath(tool.name); err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s is not installed", tool.name)
				}
				t.Skipf("%s is not installed", tool.name)
			}
			out := filepath.Join(t.TempDir(), "out.pcapng")
			if b, err := exec.Command(tool.name, tool.args(out)...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v %s", tool.name, err, b)
			}
			data, _ := os.ReadFile(out)
			got, err := readAll(t, data)
			if err != nil {
				t.Fatal(err)
			}
			want := testFrames()
			if len(got) != len(want) {
				t.Fatalf("%d frames after %s, want %d", len(got), tool.name, len(want))
			}
			for i, w := range want {
				if got[i].Netns != w.Netns || got[i].Iface != w.Iface || got[i].Dir != w.Dir {
					t.Errorf("frame %d after %s: %s/%s %v, want %s/%s %v", i, tool.name, got[i].Netns, got[i].Iface, got[i].Dir, w.Netns, w.Iface, w.Dir)
				}
			}
		})
	}
}

func TestPcapngWriterAllocatesNothing(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewPcapngWriter(&buf, "hooktrace test")
	if err != nil {
		t.Fatal(err)
	}
	frames := append(testFrames(), Frame{Time: time.Unix(1767355200, 0), Ifindex: 7, LinkType: LinkTypeEthernet, Len: 60, Data: make([]byte, 60)})
	for _, f := range frames {
		w.WritePacket(f)
	}
	for i, f := range frames {
		if n := testing.AllocsPerRun(100, func() {
			buf.Reset()
			w.WritePacket(f)
		}); n != 0 {
			t.Errorf("WritePacket of frame %d allocates %.0f times per packet", i, n)
		}
	}
}

// TestPcapngWriterNamesUnknownInterfaces: a frame that gave only its
// interface index is on "ifN"; one that gave no interface (a plain pcap's)
// comes back with none.
func TestPcapngWriterNamesUnknownInterfaces(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewPcapngWriter(&buf, "hooktrace test")
	t0 := time.Unix(1767355200, 0)
	for _, f := range []Frame{{Time: t0, Ifindex: 7, LinkType: 1, Data: []byte{1}}, {Time: t0, Netns: "hxs", LinkType: 1, Data: []byte{2}}, {Time: t0, LinkType: 1, Data: []byte{3}}} {
		if err := w.WritePacket(f); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readAll(t, buf.Bytes())
	if err != nil || len(got) != 3 || got[0].Iface != "if7" || got[1].Netns != "hxs" || got[1].Iface != "" || got[2].Netns != "" || got[2].Iface != "" {
		t.Fatalf("read back %v %+v", err, got)
	}
}

func TestPcapngWriterRefusesWhatPcapngCannotHold(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewPcapngWriter(&buf, "hooktrace test")
	for name, f := range map[string]Frame{
		"long comment": {Time: time.Unix(1, 0), Iface: "e", LinkType: 1, Data: []byte{1}, Comment: strings.Repeat("x", 1<<16)},
		"before 1970":  {Time: time.Unix(-1, 0), Iface: "e", LinkType: 1, Data: []byte{1}},
		"zero time":    {Iface: "e", LinkType: 1, Data: []byte{1}},
	} {
		if err := w.WritePacket(f); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if got, err := readAll(t, buf.Bytes()); err != nil || len(got) != 0 {
		t.Errorf("refused frames left %d frames, err %v", len(got), err)
	}
}

// TestPcapngWriterStatistics reads the interface statistics blocks back.
func TestPcapngWriterStatistics(t *testing.T) {
	data, _ := os.ReadFile(writeTestPcapng(t))
	type isb struct {
		id                   uint32
		ts                   uint64
		recv, ifdrop, osdrop uint64
	}
	var got []isb
	for b := data; len(b) >= 12; b = b[binary.LittleEndian.Uint32(b[4:]):] {
		if binary.LittleEndian.Uint32(b) != blockIfStats {
			continue
		}
		body := b[8 : binary.LittleEndian.Uint32(b[4:])-4]
		s := isb{id: binary.LittleEndian.Uint32(body), ts: uint64(binary.LittleEndian.Uint32(body[4:]))<<32 | uint64(binary.LittleEndian.Uint32(body[8:]))}
		(&pcapngReader{order: binary.LittleEndian}).options(body[12:], func(code uint16, val []byte) error {
			switch code {
			case optIsbIfRecv:
				s.recv = binary.LittleEndian.Uint64(val)
			case optIsbIfDrop:
				s.ifdrop = binary.LittleEndian.Uint64(val)
			case optIsbOsDrop:
				s.osdrop = binary.LittleEndian.Uint64(val)
			}
			return nil
		})
		got = append(got, s)
	}
	want := []isb{{id: 0, ts: 1767355201_000000000, recv: 2, ifdrop: 1, osdrop: 0}}
	if len(got) != 1 || got[0] != want[0] {
		t.Errorf("statistics %+v, want %+v", got, want)
	}
}

func TestPcapngWriterTsharkReadsEverything(t *testing.T) {
	path := writeTestPcapng(t)
	lines := tsharkLines(t, "-r", path, "-T", "fields", "-e", "frame.number", "-e", "frame.len", "-e", "frame.p2p_dir", "-e", "frame.interface_description")
	want := []string{
		"1\t70\t0\tinterface s0 in network namespace hxs",
		"2\t61\t1\tinterface c0 in network namespace hxc",
		"3\t20\t1\tinterface tun0 in network namespace hxs",
		"4\t14\t\tinterface eth0",
		"5\t60\t1\tinterface s0 in network namespace hxs",
		"6\t60\t\tan unnamed interface in network namespace hxp",
		"7\t60\t\tan unnamed interface",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("tshark reads\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	stat := strings.Join(tsharkLines(t, "-r", path, "-q", "-z", "io,stat,0"), "\n")
	if !strings.Contains(stat, "|      7 |   345 |") {
		t.Errorf("io,stat does not count 7 frames of 345 bytes:\n%s", stat)
	}
}
