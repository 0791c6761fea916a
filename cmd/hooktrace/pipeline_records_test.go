package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hooktrace/hooktrace/fixtures/synth"
)

// TestReplayStaged: a recorded incident replays to the same bytes when
// the journeys are built beside printing (two cores: the pipeline's
// stage) as on one core, where the reading goroutine does everything in
// input order, in both output formats, with a filter and -c.
func TestReplayStaged(t *testing.T) {
	file := filepath.Join(t.TempDir(), "incident.pcapng")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.WriteIncident(f, 20000, 3); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// A filter that matches nothing, or only early packets, leaves chunks
	// of records without a frame: they must reach the stage too.
	for _, args := range [][]string{{"--json"}, {"--print"}, {"--json", "-c", "7001", "icmp"}, {"--print", "host 1.2.3.4"}, {"--json", "tcp port 50398"}, {"--journeys"}, {"--journeys", "--json", "icmp"}} {
		run := func(procs string) (string, string) {
			var out, errb strings.Builder
			cmd := exec.Command(hooktraceBin, append([]string{"-r", file}, args...)...)
			cmd.Env = append(os.Environ(), "GOMAXPROCS="+procs)
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v GOMAXPROCS=%s: %v: %s", args, procs, err, errb.String())
			}
			return out.String(), errb.String() // a filter warns about NFLOG frames
		}
		one, oneErr := run("1")
		two, twoErr := run("2")
		if one != two || oneErr != twoErr {
			t.Errorf("%v: output differs between one core and two", args)
		}
		if !strings.Contains(one, "journey") || strings.Count(one, "\n") < 1000 {
			t.Errorf("%v: %d lines, journeys: %v", args, strings.Count(one, "\n"), strings.Contains(one, "journey"))
		}
	}
}

// TestReplayWriteSaysRecordsLeftOut: -w on a recording writes its packets
// and says in one line that its hooktrace records are left out, rather
// than dropping them silently.
func TestReplayWriteSaysRecordsLeftOut(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "incident.pcapng")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.WriteIncident(f, 300, 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var errb strings.Builder
	cmd := exec.Command(hooktraceBin, "-r", file, "-w", filepath.Join(dir, "out.pcapng"))
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("replay -w: %v: %s", err, errb.String())
	}
	if got := errb.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "-w writes the packets only") {
		t.Errorf("stderr: %q", got)
	}
}
