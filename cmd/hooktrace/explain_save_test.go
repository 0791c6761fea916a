package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hooktrace/hooktrace/decode"
	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
	"github.com/hooktrace/hooktrace/fixtures/scenario"
)

// runExplainSave runs `hooktrace explain --json --save FILE` on a built
// scenario, sends its packet once explain is ready, and returns the exit
// code, stdout and stderr.
func runExplainSave(t *testing.T, top *scenario.Topology, file string) (int, string, string) {
	t.Helper()
	var stdout lockedBuffer
	return runExplainSaveTo(t, top, file, &stdout)
}

// runExplainSaveTo is runExplainSave with stdout going to out; the stdout
// it returns is out's when out is a lockedBuffer.
func runExplainSaveTo(t *testing.T, top *scenario.Topology, file string, out io.Writer) (int, string, string) {
	t.Helper()
	code, stderr := explainScenario(t, top, out, "--save", file)
	stdout := ""
	if b, ok := out.(*lockedBuffer); ok {
		stdout = b.String()
	}
	return code, stdout, stderr
}

// TestExplainSave explains the rule-drop scenario's packet with --save:
// the saved file replays to the journey explain showed (but for what only
// a live run shows: route steps, the id), tshark opens it without a
// warning and counts the packets hooktrace replays, and the Markdown
// summary beside it has the outcome, the rule's text and the hint.
func TestExplainSave(t *testing.T) {
	nstest.RequireRoot(t)
	sc, ok := scenario.Get("rule-drop")
	if !ok {
		t.Fatal("no scenario rule-drop")
	}
	top := sc.Build(t)
	file := filepath.Join(t.TempDir(), "incident.pcapng")
	code, out, errs := runExplainSave(t, top, file)
	if code != exitError {
		t.Errorf("exit %d, want %d (dropped): %s", code, exitError, errs)
	}
	if !strings.Contains(errs, "journey saved to "+file+" (") {
		t.Errorf("stderr does not say where the journey went:\n%s", errs)
	}
	live := recordsOf(t, out, "journey")
	if len(live) != 1 {
		t.Fatalf("%d journeys explained, want 1:\n%s", len(live), out)
	}
	replayed := replayJourneysOf(t, "-r", file)
	if !reflect.DeepEqual(replayed, live) {
		t.Errorf("the saved journey replays differently (- explain, + replay):\n%s", jsonDiff(t, replayed, live))
	}

	var rout, rerr strings.Builder
	cmd := exec.Command(hooktraceBin, "-r", file, "--json")
	cmd.Stdout, cmd.Stderr = &rout, &rerr
	if err := cmd.Run(); err != nil {
		t.Fatalf("replay: %v: %s", err, rerr.String())
	}
	packets := len(recordsOf(t, rout.String(), "packet"))
	if packets == 0 {
		t.Fatal("no packet saved")
	}
	if n := tsharkPackets(t, file); n != packets {
		t.Errorf("tshark reads %d packets, hooktrace %d", n, packets)
	}

	md, err := os.ReadFile(strings.TrimSuffix(file, ".pcapng") + ".md")
	if err != nil {
		t.Fatal(err)
	}
	want := top.Expected.Drop
	for _, s := range []string{"| **Outcome** | dropped |", "| **Dropped by** | rule inet " + want.Table + " " + want.Chain,
		"```nft\n" + scenario.StripCounters(want.Rule), "**Hint:**", "nft insert rule inet " + want.Table + " " + want.Chain,
		"`hooktrace -r incident.pcapng --print`"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("the summary lacks %q:\n%s", s, md)
		}
	}
}

// TestJourneySaverFailures: a file that cannot be created is named in the
// error; a file that could not take a journey whole is removed.
func TestJourneySaverFailures(t *testing.T) {
	dir := t.TempDir()
	t.Run("create", func(t *testing.T) {
		path := filepath.Join(dir, "a-directory.pcapng")
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
		s, err := newJourneySaver(path)
		if err != nil {
			t.Fatal(err)
		}
		s.log = &inputLog{}
		s.keep(&decode.Journey{ID: 1})
		_, err = s.close()
		if err == nil || err.Error() != "save journey to "+path+": is a directory" {
			t.Errorf("close: %v; want the error to say it saved the journey to %s", err, path)
		}
	})
	t.Run("incomplete", func(t *testing.T) {
		path := filepath.Join(dir, "incomplete.pcapng")
		s, err := newJourneySaver(path)
		if err != nil {
			t.Fatal(err)
		}
		s.log = &inputLog{}
		s.keep(&decode.Journey{ID: 2, Packets: []uint64{3}}) // its packet is no longer kept
		if _, err := s.close(); err == nil || !strings.Contains(err.Error(), "no longer kept") {
			t.Errorf("close: %v", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the incomplete file is left: %v", err)
		}
	})
}

// TestExplainSaveOutputFails: explain --save whose standard output fails
// (a full disk) after the journey was kept reports the failure, and the
// file it saved is closed whole with its summary, not left half written.
func TestExplainSaveOutputFails(t *testing.T) {
	nstest.RequireRoot(t)
	sc, ok := scenario.Get("rule-drop")
	if !ok {
		t.Fatal("no scenario rule-drop")
	}
	top := sc.Build(t)
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	file := filepath.Join(t.TempDir(), "incident.pcapng")
	code, _, errs := runExplainSaveTo(t, top, file, full)
	if code != exitError || !strings.Contains(errs, "no space left on device") {
		t.Errorf("exit %d, want %d with the write error: %s", code, exitError, errs)
	}
	got := replayJourneysOf(t, "-r", file)
	if len(got) != 1 || got[0]["outcome"] != "dropped" {
		t.Errorf("the saved file replays to %v", got)
	}
	if _, err := os.Stat(strings.TrimSuffix(file, ".pcapng") + ".md"); err != nil {
		t.Errorf("no summary: %v", err)
	}
}
