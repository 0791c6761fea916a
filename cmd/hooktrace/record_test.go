package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
	"github.com/hooktrace/hooktrace/fixtures/scenario"
)

// recordScenario runs `hooktrace --trace --json -w FILE` on a built
// scenario, sends its packet, and ends the run with sig. It returns the
// live stdout.
func recordScenario(t *testing.T, top *scenario.Topology, file string, sig syscall.Signal) string {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	var stdout, stderr lockedBuffer
	cmd := exec.Command(hooktraceBin, "--trace", "--json", "-w", file, "--ready-file", ready, "--netns", strings.Join(top.Trace, ","), top.Filter)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("hooktrace ended before it was ready: %v: %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("hooktrace not ready after 20 s: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := top.Send(); err != nil {
		t.Errorf("send: %v", err)
	}
	// A journey prints once nothing joined it for the window (2 s): by
	// then its events arrived and were recorded.
	sent := time.Now()
	for !strings.Contains(stdout.String(), `"type":"journey"`) {
		if time.Since(sent) > 30*time.Second {
			cmd.Process.Kill()
			t.Fatalf("no journey printed 30 s after the packet was sent: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("hooktrace did not end: %s", stderr.String())
	}
	if sig == syscall.SIGKILL {
		exec.Command(hooktraceBin, "cleanup", "--netns", strings.Join(top.Trace, ",")).Run()
	}
	return stdout.String()
}

// liveOnly removes what a replay cannot show: route steps, which ask the
// live kernel (RTM_GETROUTE), and the journey's id, which numbers
// journeys in the order their first record reached the builder (live,
// trace events come before the frames, held back to be merged in time
// order; on replay, records come in file order).
func liveOnly(j map[string]any) {
	delete(j, "id")
	steps, _ := j["steps"].([]any)
	kept := steps[:0]
	for _, s := range steps {
		if m, ok := s.(map[string]any); ok && m["kind"] == "route" {
			continue
		}
		kept = append(kept, s)
	}
	j["steps"] = kept
}

// recordsOf returns the NDJSON records of a type, route steps removed.
func recordsOf(t *testing.T, out, typ string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bad NDJSON line %q: %v", line, err)
		}
		if r["type"] == typ {
			if typ == "journey" {
				liveOnly(r)
			}
			recs = append(recs, r)
		}
	}
	return recs
}

func sortJSON(recs []map[string]any) []map[string]any {
	key := func(r map[string]any) string { b, _ := json.Marshal(r); return string(b) }
	slices.SortFunc(recs, func(a, b map[string]any) int { return strings.Compare(key(a), key(b)) })
	return recs
}

func replayFile(t *testing.T, file string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb strings.Builder
	cmd := exec.Command(hooktraceBin, "-r", file, "--json")
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// TestRecordReplay records scenarios live and replays the files: the
// journey records are the same but for route steps, the trace records
// are the same, tshark opens the file without a warning and counts the
// packets hooktrace counts.
func TestRecordReplay(t *testing.T) {
	nstest.RequireRoot(t)
	for _, sc := range scenario.All() {
		t.Run(sc.Name, func(t *testing.T) {
			top := sc.Build(t)
			file := filepath.Join(t.TempDir(), "incident.pcapng")
			live := recordScenario(t, top, file, syscall.SIGINT)
			out, errs, err := replayFile(t, file)
			if err != nil || errs != "" {
				t.Fatalf("replay: %v: %s", err, errs)
			}
			// Journeys print as they close, which follows arrival order too.
			lj, rj := sortJSON(recordsOf(t, live, "journey")), sortJSON(recordsOf(t, out, "journey"))
			if len(lj) == 0 {
				t.Fatalf("no journey live:\n%s", live)
			}
			if !reflect.DeepEqual(lj, rj) {
				for _, set := range [][]map[string]any{lj, rj} {
					for _, j := range set {
						p, _ := j["packet"].(map[string]any)
						t.Logf("journey %v %v %v %v %v steps", j["id"], j["first"], j["outcome"], p["summary"], len(j["steps"].([]any)))
					}
					t.Log("--")
				}
				lb, _ := json.MarshalIndent(lj, "", " ")
				rb, _ := json.MarshalIndent(rj, "", " ")
				t.Errorf("journeys differ (- live, + replay):\n%s", diffLines(strings.Split(string(rb), "\n"), strings.Split(string(lb), "\n")))
			}
			// (Scenarios without rules of their own give no trace record:
			// hooktrace's own chains are not printed.)
			lt, rt := recordsOf(t, live, "trace"), recordsOf(t, out, "trace")
			if len(lt) != len(rt) {
				t.Errorf("%d trace records live, %d on replay", len(lt), len(rt))
			}
			// The recording's rulesets hold every rule a trace event named.
			rulesets := map[string]string{}
			for _, r := range recordsOf(t, runQuietly(t, "2", "-r", file, "--rulesets", "--json"), "ruleset") {
				rulesets[r["netns"].(string)] += r["text"].(string)
			}
			for _, ev := range lt {
				h, _ := ev["handle"].(float64)
				table := fmt.Sprintf("table %s %s {", ev["family"], ev["table"])
				if rs := rulesets[ev["netns"].(string)]; h != 0 && (!strings.Contains(rs, table) || !strings.Contains(rs, fmt.Sprintf("# handle %d\n", int(h)))) {
					t.Errorf("the ruleset recorded for namespace %q lacks %s handle %d, which a trace event named:\n%s", ev["netns"], table, int(h), rs)
					break
				}
			}
			packets := len(recordsOf(t, out, "packet"))
			if lp := len(recordsOf(t, live, "packet")); lp != packets {
				t.Errorf("%d packets live, %d on replay", lp, packets)
			}
			lines := tsharkPackets(t, file)
			if lines != packets {
				t.Errorf("tshark counts %d packets, hooktrace %d", lines, packets)
			}
		})
	}
}

// tsharkPackets counts the packets tshark reads (custom blocks are
// records without an encapsulation), failing on any warning.
func tsharkPackets(t *testing.T, file string) int {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark is not installed")
	}
	var out, errb strings.Builder
	cmd := exec.Command("tshark", "-r", file, "-Y", "frame.encap_type", "-T", "fields", "-e", "frame.number")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark: %v: %s", err, errb.String())
	}
	for _, l := range strings.Split(errb.String(), "\n") {
		if l != "" && !strings.Contains(l, "Running as user") {
			t.Errorf("tshark warns: %s", l)
		}
	}
	return len(strings.Fields(out.String()))
}

// TestRecordKilled kills a recording with SIGKILL: the file is read up to
// its last complete block, with one line saying where it ends, and the
// trace records flushed before the kill are there.
func TestRecordKilled(t *testing.T) {
	nstest.RequireRoot(t)
	sc, ok := scenario.Get("rule-drop")
	if !ok {
		t.Fatal("no scenario rule-drop")
	}
	top := sc.Build(t)
	file := filepath.Join(t.TempDir(), "killed.pcapng")
	recordScenario(t, top, file, syscall.SIGKILL)
	out, errs, err := replayFile(t, file)
	if len(recordsOf(t, out, "trace")) == 0 || len(recordsOf(t, out, "packet")) == 0 {
		t.Errorf("nothing read back from the killed recording: %v: %s\n%s", err, errs, out)
	}
	if err != nil && (strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, file+": byte ")) {
		t.Errorf("exit %v with %q, want one line naming the file and byte", err, errs)
	}
	if strings.Contains(errs, "panic") {
		t.Errorf("replay panics: %s", errs)
	}
}
