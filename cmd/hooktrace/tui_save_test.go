package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// savedFile returns the one file in dir matching pattern.
func savedFile(t *testing.T, dir, pattern string) string {
	t.Helper()
	got, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(got) != 1 {
		t.Fatalf("saved files %s: %v", pattern, got)
	}
	return got[0]
}

// saveFromUI shows only the dropped packets, selects the first, and
// saves with key (W or w) under the proposed name; it waits for the
// status bar to say what was written.
func saveFromUI(s *tmuxSession, key, written string) {
	s.t.Helper()
	s.keys("/")
	s.waitText("filter:")
	s.typeText("outcome == dropped")
	s.keys("Enter")
	s.waitText("filter: outcome == dropped")
	s.keys("g", key)
	s.waitText("save")
	s.keys("Enter")
	s.waitText(written)
}

// checkSavedRuleset: the saved file holds the ruleset snapshot of the
// namespace that dropped the packet.
func checkSavedRuleset(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("table inet hxfilter {")) {
		t.Errorf("%s holds no ruleset snapshot of hxfilter", path)
	}
}

// TestTUISaveRecordedIncident records the rule-drop scenario with
// --trace -w, opens the file in the terminal UI, selects the dropped
// packet and saves its journey (W), shows the recorded ruleset with the
// dropping rule marked (R), then saves the dropped packets (w): each
// saved file replays (hooktrace -r --json, without a warning) to the
// same journeys as the recording, rule and verdicts included, and holds
// the ruleset.
func TestTUISaveRecordedIncident(t *testing.T) {
	top := buildRuleDrop(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "incident.pcapng")
	recordScenario(t, top, file, syscall.SIGINT)
	var dropped []map[string]any
	for _, j := range replayJourneysOf(t, "-r", file) {
		if j["outcome"] == "dropped" {
			dropped = append(dropped, j)
		}
	}
	if len(dropped) == 0 {
		t.Fatal("the recording replays to no dropped journey")
	}

	s := startTmux(t, dir, 150, 45, fmt.Sprintf("%s -r incident.pcapng; echo hooktrace-exit=$?; exec sleep 60", hooktraceBin))
	s.waitText("Dropped in namespace")
	saveFromUI(s, "W", "kernel drop")
	journey := savedFile(t, dir, "hooktrace-journey-*.pcapng")
	got := replayJourneysOf(t, "-r", journey)
	if len(got) != 1 {
		t.Fatalf("the saved journey replays to %d journeys:\n%v", len(got), got)
	}
	found := false
	for _, j := range dropped {
		found = found || reflect.DeepEqual(got[0], j)
	}
	if !found {
		t.Errorf("the saved journey replays differently (- saved, + recording):\n%s", jsonDiff(t, got[0], dropped[0]))
	}
	if d, _ := got[0]["drop"].(map[string]any); d == nil || !strings.Contains(fmt.Sprint(d["rule"]), "tcp dport 2222") {
		t.Errorf("the saved journey's drop: %v", got[0]["drop"])
	}
	checkSavedRuleset(t, journey)

	// R shows the recorded ruleset of the dropped packet's namespace,
	// the rule that dropped it marked; esc goes back.
	s.keys("R")
	scr := s.waitText("Rulesets (R or esc")
	marked := ""
	for _, l := range strings.Split(scr, "\n") {
		if strings.HasPrefix(l, "▶ ") {
			marked = l
		}
	}
	if !strings.Contains(scr, "table inet hxfilter {") || !strings.Contains(marked, "tcp dport 2222") || !strings.Contains(marked, "drop # handle") {
		t.Errorf("the rulesets view marks %q:\n%s", marked, scr)
	}
	s.keys("Escape")
	s.waitFor("the packet list again", func(scr string) bool {
		return !strings.Contains(scr, "Rulesets (") && strings.Contains(scr, "No. Time")
	})

	time.Sleep(time.Second) // the next save's proposed name has another second
	s.keys("w")
	s.waitText("save to:")
	s.keys("Enter")
	s.waitText("packets written to hooktrace-2")
	shown := savedFile(t, dir, "hooktrace-2*.pcapng")
	if got := replayJourneysOf(t, "-r", shown); !reflect.DeepEqual(got, dropped) {
		t.Errorf("the saved packets replay to other journeys (- saved, + recording):\n%s", jsonDiff(t, got, dropped))
	}
	checkSavedRuleset(t, shown)
	s.keys("q")
	if scr := s.waitText("hooktrace-exit="); !strings.Contains(scr, "hooktrace-exit=0") {
		t.Errorf("after q:\n%s", scr)
	}
}

// TestTUISaveLiveJourney: in the live UI with --trace, W on the dropped
// packet saves its frames, trace events and drop with the namespace's
// ruleset as it is: the file replays to a dropped journey with the rule.
func TestTUISaveLiveJourney(t *testing.T) {
	top := buildRuleDrop(t)
	dir := t.TempDir()
	cmd := fmt.Sprintf("%s --netns %s --trace '%s'; echo hooktrace-exit=$?; exec sleep 60", hooktraceBin, strings.Join(top.Trace, ","), top.Filter)
	s := startTmux(t, dir, 150, 45, cmd)
	s.waitUpTo(30*time.Second, "the live UI", func(scr string) bool { return strings.Contains(scr, "live │ capturing") })
	if err := top.Send(); err != nil {
		t.Errorf("send: %v", err)
	}
	s.waitFor("the dropped packet's rows", func(scr string) bool { return strings.Contains(scr, "dropped") })
	saveFromUI(s, "W", "kernel drop")
	s.keys("q")
	s.waitUpTo(30*time.Second, "hooktrace to exit", func(scr string) bool { return strings.Contains(scr, "hooktrace-exit=") })
	journey := savedFile(t, dir, "hooktrace-journey-*.pcapng")
	got := replayJourneysOf(t, "-r", journey)
	if len(got) != 1 || got[0]["outcome"] != "dropped" {
		t.Fatalf("the saved journey replays to %v", got)
	}
	if d, _ := got[0]["drop"].(map[string]any); d == nil || !strings.Contains(fmt.Sprint(d["rule"]), "tcp dport 2222") {
		t.Errorf("the saved journey's drop: %v", got[0]["drop"])
	}
	checkSavedRuleset(t, journey)
}
