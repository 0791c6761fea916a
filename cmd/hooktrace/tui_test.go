package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/hooktrace/hooktrace/ui/tui"
)

// tmuxSession drives the real binary in a detached tmux session on a
// private server, as a person at a 100x30 terminal would.
type tmuxSession struct {
	t      *testing.T
	socket string
}

func (s *tmuxSession) tmux(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (s *tmuxSession) screen() string { return s.tmux("capture-pane", "-p", "-t", "ht") }

func (s *tmuxSession) keys(keys ...string) {
	s.tmux(append([]string{"send-keys", "-t", "ht"}, keys...)...)
}

// typeText sends text literally (no key names).
func (s *tmuxSession) typeText(text string) {
	s.tmux("send-keys", "-t", "ht", "-l", text)
}

// startTmux starts command (run by sh) in a detached w x h tmux session
// on a private server, in dir; the server is killed when the test ends.
func startTmux(t *testing.T, dir string, w, h int, command string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is not installed, and CI installs it")
		}
		t.Skip("tmux is not installed (.ci/run installs it)")
	}
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	s := &tmuxSession{t: t, socket: fmt.Sprintf("hooktrace-test-%d-%s", os.Getpid(), name)}
	t.Cleanup(func() { exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	s.tmux("-f", "/dev/null", "new-session", "-d", "-s", "ht", "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), "-c", dir, "sh", "-c", command)
	return s
}

// waitFor polls the screen until ok holds, for at most 10 s.
func (s *tmuxSession) waitFor(what string, ok func(string) bool) string {
	s.t.Helper()
	return s.waitUpTo(10*time.Second, what, ok)
}

// waitUpTo polls the screen until ok holds, for at most d.
func (s *tmuxSession) waitUpTo(d time.Duration, what string, ok func(string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		scr := s.screen()
		if ok(scr) {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting for %s; the screen is:\n%s", what, scr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *tmuxSession) waitText(text string) string {
	s.t.Helper()
	return s.waitFor(fmt.Sprintf("%q", text), func(scr string) bool { return strings.Contains(scr, text) })
}

// TestTUIEndToEnd opens fixtures/vxlan.pcap in the terminal UI, moves,
// expands a layer, filters, opens help, saves and quits.
func TestTUIEndToEnd(t *testing.T) {
	fixture, err := filepath.Abs("../../fixtures/vxlan.pcap")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := startTmux(t, dir, 100, 30, fmt.Sprintf("%s -r %s; echo hooktrace-exit=$?; exec sleep 60", hooktraceBin, fixture))

	s.waitText("14 packets")
	s.waitText("Frame: 124 bytes on the wire")
	s.keys("j", "j")
	s.waitText("Frame: 116 bytes on the wire") // packet 3 selected

	// The layers pane: collapse the Ethernet layer.
	s.keys("Tab", "Down", "Enter")
	s.waitText("▸ ETH")

	// A display filter; the status bar shows it.
	s.keys("/")
	s.waitText("filter:") // capture-pane trims the spaces after it
	s.typeText("tcp[")
	s.waitText("can't parse filter expression: syntax error")
	s.keys("BSpace", "BSpace", "BSpace", "BSpace")
	s.typeText("greater 120")
	s.keys("Enter")
	// The typed text shows on the prompt before Enter is taken: wait for
	// the list the filter leaves, with the filter in the status bar.
	s.waitFor("the filter to leave 5 of 14 packets", func(scr string) bool {
		return strings.Contains(scr, "Packets 5 of 14") && strings.Contains(scr, "filter: greater 120")
	})

	// Help lists every key; any key closes it.
	s.keys("?")
	s.waitText("hooktrace keys")
	s.keys("x")
	s.waitText("Packets 5 of 14")

	// Save what the filter shows.
	s.keys("w")
	s.waitText("save to: hooktrace-")
	s.keys("Enter")
	s.waitText("5 packets writ") // the status bar may cut the rest on a long path
	saved, _ := filepath.Glob(filepath.Join(dir, "hooktrace-*.pcapng"))
	if len(saved) != 1 {
		t.Fatalf("saved files: %v", saved)
	}
	out, err := exec.Command(hooktraceBin, "--print", "-r", saved[0]).Output()
	if err != nil || strings.Count(string(out), "\n") != 5 {
		t.Errorf("the saved file: %v\n%s", err, out)
	}

	// Quit: the terminal is given back as it was.
	s.keys("q")
	scr := s.waitText("hooktrace-exit=0")
	if strings.Contains(scr, "Packets") || strings.Contains(scr, "Layers") {
		t.Errorf("the UI is left on the terminal:\n%s", scr)
	}
}

// TestReplaySourceStopsFeedBeforeClosing: once the UI is gone (nobody
// takes the batches), closing the replay's source first stops the feed
// and waits for it and its indexer, then closes what they read: a
// compressed file, merged files, a file with its index paced by --speed.
func TestReplaySourceStopsFeedBeforeClosing(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "a.pcap")
	raw := writePcap(t, plain, layers.LinkTypeEthernet, 20000)
	writePcap(t, filepath.Join(dir, "b.pcap"), layers.LinkTypeEthernet, 20000)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(raw)
	zw.Close()
	gz := filepath.Join(dir, "a.pcap.gz")
	if err := os.WriteFile(gz, z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files []string
		speed int
	}{
		{"compressed", []string{gz}, 0},
		{"merged", []string{plain, filepath.Join(dir, "b.pcap")}, 0},
		{"index paced", []string{plain}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &options{speed: tc.speed}
			if err := o.readFilesFrom(tc.files, nil); err != nil {
				t.Fatal(err)
			}
			held := &heldLog{}
			rs, err := openReplaySource(o, held)
			if err != nil {
				t.Fatal(err)
			}
			rs.feed(context.Background(), make(chan tui.Batch)) // no UI takes them
			rs.close()
			buf := make([]byte, 1<<20)
			stacks := string(buf[:runtime.Stack(buf, true)])
			for _, fn := range []string{"tui.FeedRecords", "(*indexer).run"} {
				if strings.Contains(stacks, fn) {
					t.Errorf("%s still runs after the source was closed:\n%s", fn, stacks)
				}
			}
			var msgs bytes.Buffer
			held.writeTo(&msgs)
			if msgs.Len() > 0 {
				t.Errorf("warnings: %s", msgs.String())
			}
		})
	}
}
