package main

import (
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
	"github.com/hooktrace/hooktrace/fixtures/synth"
)

// TestJourneysOnly: --journeys prints a recording's journeys and nothing
// else, the same records --json prints between its packets; for an
// ordinary capture, which --json shows as packets alone, it builds the
// journeys from what the frames show.
func TestJourneysOnly(t *testing.T) {
	file := filepath.Join(t.TempDir(), "incident.pcapng")
	writeGenerated(t, file, func(w io.Writer) error { return synth.WriteIncident(w, 20000, 5) })
	code, all, errOut := runHooktrace("--json", "-r", file)
	if code != exitOK {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	var want strings.Builder
	for _, line := range strings.SplitAfter(all, "\n") {
		if strings.HasPrefix(line, `{"type":"journey"`) {
			want.WriteString(line)
		}
	}
	code, got, errOut := runHooktrace("--journeys", "--json", "-r", file)
	if code != exitOK || errOut != "" {
		t.Fatalf("--journeys --json: exit %d: %s", code, errOut)
	}
	if got != want.String() || strings.Count(got, "\n") < 6000 {
		t.Errorf("--journeys --json gave %d lines, the journey records of --json are %d", strings.Count(got, "\n"), strings.Count(want.String(), "\n"))
	}
	code, text, errOut := runHooktrace("--journeys", "-r", file)
	if code != exitOK || errOut != "" {
		t.Fatalf("--journeys: exit %d: %s", code, errOut)
	}
	if n, m := strings.Count("\n"+text, "\njourney "), strings.Count(got, "\n"); n != m {
		t.Errorf("--journeys text has %d journeys, --json %d", n, m)
	}
	if strings.Contains(text, `"type"`) || !strings.Contains(text, "NETFILTER_DROP") {
		t.Errorf("text journeys:\n%.2000s", text)
	}

	// An ordinary capture: 5 TCP segments, no hooktrace records.
	code, plain, _ := runHooktrace("--json", "-r", "../../fixtures/real-tcp.pcap")
	if code != exitOK || strings.Contains(plain, `"type":"journey"`) {
		t.Fatalf("--json of an ordinary capture: exit %d, journeys: %v", code, strings.Contains(plain, `"type":"journey"`))
	}
	packets := strings.Count(plain, `{"type":"packet"`)
	code, js, errOut := runHooktrace("--journeys", "--json", "-r", "../../fixtures/real-tcp.pcap")
	if code != exitOK {
		t.Fatalf("--journeys of an ordinary capture: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(js), "\n")
	if len(lines) != packets {
		t.Errorf("%d journeys for %d packets:\n%s", len(lines), packets, js)
	}
	for _, l := range lines {
		var rec struct {
			Type    string
			Outcome string
			Steps   []struct{ Kind string }
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Type != "journey" || len(rec.Steps) != 1 || rec.Steps[0].Kind != "capture" {
			t.Errorf("journey record %v: %s", err, l)
		}
	}
}

// TestLiveJourneysOnly: live, --trace --journeys --json prints one
// journey record for each traced packet and nothing else (no packets,
// trace events or stats record).
func TestLiveJourneysOnly(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t, "hxtjo")
	r := startHooktrace(t, "--netns", ns, "-i", "lo", "--trace", "--journeys", "--json", "icmp")
	pingIn(t, ns, "127.0.0.1", 1)
	waitOutput(t, r, func(out string) bool { return strings.Count(out, "\n") >= 2 })
	r.stop(t)
	var outcomes []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout.String()), "\n") {
		var rec struct {
			Type    string
			Summary string
			Outcome string
			Steps   []struct{ Kind string }
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Type != "journey" {
			t.Fatalf("not a journey record (%v): %s", err, l)
		}
		hooks := 0
		for _, s := range rec.Steps {
			if s.Kind == "hook" {
				hooks++
			}
		}
		if hooks < 8 { // entering and leaving output, postrouting, prerouting and input
			t.Errorf("journey with %d hook steps: %s", hooks, l)
		}
		outcomes = append(outcomes, rec.Outcome)
	}
	// The reply may be dropped (NO_SOCKET) when ping is gone before it
	// comes: the kernel says so, and the journey with it.
	if len(outcomes) != 2 || outcomes[0] != "delivered" {
		t.Errorf("outcomes %q, want the echo request delivered, then its reply", outcomes)
	}
}

// TestReplayRecordsAfterOrdinaryFrames: a recording merged after an
// ordinary capture's frames (more than replay holds back before it takes
// a file for an ordinary capture) still gets the journeys its trace
// events make.
func TestReplayRecordsAfterOrdinaryFrames(t *testing.T) {
	dir := t.TempDir()
	plain, incident := filepath.Join(dir, "plain.pcap"), filepath.Join(dir, "incident.pcapng")
	writeGenerated(t, plain, func(w io.Writer) error { return synth.WriteLarge(w, 2000, 1) })
	writeGenerated(t, incident, func(w io.Writer) error { return synth.WriteIncident(w, 3000, 2) })
	code, out, errOut := runHooktrace("--json", "-r", plain, "-r", incident, "--time-shift", "plain.pcap=-1h")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, `{"type":"journey"`); n < 900 {
		t.Errorf("%d journeys from the recording's 1,000 packets' trace events", n)
	}
}
