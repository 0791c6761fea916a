package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
)

// writeSpaced writes the frames of a capture again as a pcap file, gap
// apart from one another.
func writeSpaced(t *testing.T, from, to string, gap time.Duration) int {
	t.Helper()
	src, err := capture.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	le := binary.LittleEndian
	out := le.AppendUint32(nil, 0xa1b2c3d4) // microseconds
	out = le.AppendUint16(out, 2)
	out = le.AppendUint16(out, 4)
	out = le.AppendUint64(out, 0) // zone, sigfigs
	out = le.AppendUint32(out, 65535)
	out = le.AppendUint32(out, uint32(capture.LinkTypeEthernet))
	start := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	n := 0
	for ; ; n++ {
		f, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ts := start.Add(time.Duration(n) * gap)
		out = le.AppendUint32(out, uint32(ts.Unix()))
		out = le.AppendUint32(out, uint32(ts.Nanosecond()/1000))
		out = le.AppendUint32(out, uint32(len(f.Data)))
		out = le.AppendUint32(out, uint32(f.Len))
		out = append(out, f.Data...)
	}
	if err := os.WriteFile(to, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// steadyCount waits until the list's packet count holds still for a
// few screens, and returns it.
func (s *tmuxSession) steadyCount() int {
	s.t.Helper()
	last, same := -1, 0
	var n int
	s.waitFor("the packet count to hold still", func(scr string) bool {
		n = listed(scr)
		if n == last {
			same++
		} else {
			last, same = n, 0
		}
		return same >= 10 // 200 ms
	})
	return n
}

// TestTUIPlayback replays a capture of packets one second apart at real
// time (--speed 1) in tmux: packets come one by one; paused, none comes;
// each step lists exactly one more; resumed, they come again; as fast as
// possible, the rest at once.
func TestTUIPlayback(t *testing.T) {
	dir := t.TempDir()
	total := writeSpaced(t, "../../fixtures/vxlan.pcap", filepath.Join(dir, "slow.pcap"), time.Second)
	s := startTmux(t, dir, 100, 30, fmt.Sprintf("%s --speed 1 -r slow.pcap; echo hooktrace-exit=$?; exec sleep 60", hooktraceBin))

	s.waitFor("the first packet, playing at x1", func(scr string) bool {
		return listed(scr) >= 1 && strings.Contains(scr, "│ x1 ")
	})
	s.waitFor("a second packet", func(scr string) bool { return listed(scr) >= 2 })

	s.keys("P")
	s.waitText("│ paused x1 ")
	n := s.steadyCount()
	if n >= total {
		t.Fatalf("%d of %d packets listed before the pause", n, total)
	}
	for i := 1; i <= 2; i++ {
		s.keys(".")
		scr := s.waitFor(fmt.Sprintf("step %d", i), func(scr string) bool {
			return strings.Contains(scr, "│ step x1 ") && listed(scr) > n+i-1
		})
		if got := listed(scr); got != n+i {
			t.Fatalf("step %d lists %d packets, want %d:\n%s", i, got, n+i, scr)
		}
		if got := s.steadyCount(); got != n+i {
			t.Fatalf("after step %d: %d packets, want %d", i, got, n+i)
		}
	}

	s.keys("P")
	s.waitFor("playing on", func(scr string) bool {
		return strings.Contains(scr, "│ x1 ") && listed(scr) > n+2
	})
	s.keys(">", ">", ">")
	s.waitText(fmt.Sprintf("Packets %d", total))
	s.waitFor("the playback to end", func(scr string) bool { return !strings.Contains(scr, "│ max ") })

	s.keys("q")
	s.waitText("hooktrace-exit=0")
}
