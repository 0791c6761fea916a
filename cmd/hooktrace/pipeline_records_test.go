package main

import (
	"io"
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
// input order, in both output formats, with a filter and -c. (The
// incident spans less than the journeys' window, so its last chunk
// closes all its 6,667 journeys: more than splitJourneys, which two
// goroutines finish.)
func TestReplayStaged(t *testing.T) {
	file := filepath.Join(t.TempDir(), "incident.pcapng")
	writeGenerated(t, file, func(w io.Writer) error { return synth.WriteIncident(w, 20000, 3) })
	// A filter that matches nothing, or only early packets, leaves chunks
	// without a frame to print: their records and the frames the filter
	// hid must reach the stage too. (Journeys show only for the packets
	// the filter selects: none for host 1.2.3.4.)
	for _, tc := range []struct {
		args     []string
		journeys bool
	}{
		{[]string{"--json"}, true}, {[]string{"--print"}, true}, {[]string{"--json", "-c", "7001", "icmp"}, true},
		{[]string{"--print", "host 1.2.3.4"}, false}, {[]string{"--json", "tcp port 50398"}, true},
		{[]string{"--journeys"}, true}, {[]string{"--journeys", "--json", "icmp"}, true},
	} {
		args := tc.args
		run := func(procs string) (string, string) {
			var out, errb strings.Builder
			cmd := exec.Command(hooktraceBin, append([]string{"-r", file}, args...)...)
			cmd.Env = append(os.Environ(), "GOMAXPROCS="+procs)
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v GOMAXPROCS=%s: %v: %s", args, procs, err, errb.String())
			}
			return out.String(), errb.String()
		}
		one, oneErr := run("1")
		two, twoErr := run("2")
		if one != two || oneErr != twoErr {
			t.Errorf("%v: output differs between one core and two", args)
		}
		if strings.Contains(one, "journey") != tc.journeys || strings.Count(one, "\n") < 500 {
			t.Errorf("%v: %d lines, journeys: %v (want %v)", args, strings.Count(one, "\n"), strings.Contains(one, "journey"), tc.journeys)
		}
	}
}

// TestReplayWriteKeepsRecords: -w on a recording writes it again, frames
// and records in order, so the written file replays to the same output,
// on one core as on two; with a filter it writes the packets the filter
// keeps and says in one line that the records are left out.
func TestReplayWriteKeepsRecords(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "incident.pcapng")
	writeGenerated(t, file, func(w io.Writer) error { return synth.WriteIncident(w, 3000, 1) })
	replay := func(procs string, args ...string) string {
		t.Helper()
		var out, errb strings.Builder
		cmd := exec.Command(hooktraceBin, args...)
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+procs)
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil || errb.Len() > 0 {
			t.Fatalf("hooktrace %v: %v: %s", args, err, errb.String())
		}
		return out.String()
	}
	want := replay("2", "--json", "-r", file)
	for _, procs := range []string{"1", "2"} {
		again := filepath.Join(dir, "again"+procs+".pcapng")
		replay(procs, "-r", file, "-w", again)
		if got := replay("2", "--json", "-r", again); got != want {
			t.Errorf("GOMAXPROCS=%s: the file -w wrote replays to other output (%d bytes, the recording %d)", procs, len(got), len(want))
		}
	}
	if !strings.Contains(want, `"type":"trace"`) || !strings.Contains(want, `"outcome":"delivered"`) {
		t.Fatalf("the recording shows no trace records or journeys: the test shows nothing")
	}

	var errb strings.Builder
	cmd := exec.Command(hooktraceBin, "-r", file, "-w", filepath.Join(dir, "tcp.pcapng"), "ether proto 0x0800")
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("replay -w with a filter: %v: %s", err, errb.String())
	}
	// (The filter cannot take NFLOG messages: a second line says so.)
	if got := errb.String(); strings.Count(got, "-w with a filter writes the packets it keeps only") != 1 || strings.Count(got, "\n") != strings.Count(got, "hooktrace: warning: ") {
		t.Errorf("stderr: %q", got)
	}
}
