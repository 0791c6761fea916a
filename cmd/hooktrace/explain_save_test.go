package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
	"github.com/hooktrace/hooktrace/fixtures/scenario"
)

// runExplainSave runs `hooktrace explain --json --save FILE` on a built
// scenario, sends its packet once explain is ready, and returns the exit
// code, stdout and stderr.
func runExplainSave(t *testing.T, top *scenario.Topology, file string) (int, string, string) {
	t.Helper()
	var stdout, stderr lockedBuffer
	cmd := exec.Command(hooktraceBin, "explain", "--json", "--timeout", "10s", "--save", file, "--netns", strings.Join(top.Trace, ","), top.Filter)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "waiting for the first packet") {
		select {
		case err := <-done:
			t.Fatalf("explain ended before it was ready: %v: %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("explain not ready after 20 s: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := top.Send(); err != nil {
		t.Errorf("send: %v", err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("explain did not end: %s", stderr.String())
	}
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
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
