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
// incident spans less than the journeys' window, so all its 6,667
// journeys are open at its end: they follow the last chunk in chunks of
// their own, finishRest. Merged with a copy an hour later, the copy's
// first record closes them all in one chunk: more than splitJourneys,
// which two goroutines finish.)
func TestReplayStaged(t *testing.T) {
	dir := t.TempDir()
	file, later := filepath.Join(dir, "incident.pcapng"), filepath.Join(dir, "later.pcapng")
	writeGenerated(t, file, func(w io.Writer) error { return synth.WriteIncident(w, 20000, 3) })
	writeGenerated(t, later, func(w io.Writer) error { return synth.WriteIncident(w, 20000, 4) })
	// A filter that matches nothing, or only early packets, leaves chunks
	// without a frame to print: their records and the frames the filter
	// hid must reach the stage too. (Journeys and trace events show only
	// for the packets the filter selects: none for host 1.2.3.4.)
	for _, tc := range []struct {
		args     []string
		journeys bool
		lines    int // at least; none for a filter that matches nothing
	}{
		{[]string{"--json"}, true, 500}, {[]string{"--print"}, true, 500}, {[]string{"--json", "-c", "7001", "icmp"}, true, 500},
		{[]string{"--print", "host 1.2.3.4"}, false, 0}, {[]string{"--json", "tcp port 50398"}, true, 10},
		{[]string{"--journeys"}, true, 500}, {[]string{"--journeys", "--json", "icmp"}, true, 500},
		// The recording spans 0.67 s, less than the journey window: all
		// its 6,667 journeys are open at its end, and follow the last
		// chunk in chunks of their own (finishRest), more than the
		// pipeline has free at once.
		{[]string{"--journeys", "--json"}, true, 6667},
		{[]string{"--journeys", "-r", later, "--time-shift", "later.pcapng=1h"}, true, 2 * 6667},
	} {
		args := append([]string{"-r", file}, tc.args...)
		one, oneErr := runOnCores(t, "1", args...)
		two, twoErr := runOnCores(t, "2", args...)
		if one != two || oneErr != twoErr {
			t.Errorf("%v: output differs between one core and two", tc.args)
		}
		if n := strings.Count(one, "\n"); strings.Contains(one, "journey") != tc.journeys || n < tc.lines || tc.lines == 0 && n > 0 {
			t.Errorf("%v: %d lines, journeys: %v (want %v)", tc.args, strings.Count(one, "\n"), strings.Contains(one, "journey"), tc.journeys)
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
	replay := func(procs string, args ...string) string { return runQuietly(t, procs, args...) }
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

	// Standard input cannot be read twice, named - or not: with a
	// filter, -w writes the packets it keeps, and one line says the
	// records are left out.
	for _, name := range []string{"-", "/dev/stdin"} {
		in, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		var errb strings.Builder
		part := filepath.Join(dir, "tcp.pcapng")
		cmd := exec.Command(hooktraceBin, "-r", name, "-w", part, "tcp")
		cmd.Stdin, cmd.Stderr = io.MultiReader(in), &errb // a pipe, not the file
		err = cmd.Run()
		in.Close()
		if err != nil {
			t.Fatalf("replay -r %s -w with a filter: %v: %s", name, err, errb.String())
		}
		if got := errb.String(); strings.Count(got, "-w with a filter on standard input or a pipe writes the packets it keeps only") != 1 || strings.Count(got, "\n") != 1 {
			t.Errorf("-r %s: stderr: %q", name, got)
		}
		if out := runQuietly(t, "2", "--json", "-r", part); !strings.Contains(out, `"type":"packet"`) || strings.Contains(out, `"type":"trace"`) {
			t.Errorf("-r %s: the file -w wrote holds no packet, or trace events", name)
		}
	}
}

// TestReplayWritePlainCapture: a plain pcap written again with -w, as
// pcapng, replays to the same packets and journeys: its frames, which
// name no interface, come back naming none (not "unknown").
func TestReplayWritePlainCapture(t *testing.T) {
	again := filepath.Join(t.TempDir(), "vxlan.pcapng")
	plain := filepath.Join("..", "..", "fixtures", "vxlan.pcap")
	runQuietly(t, "2", "-r", plain, "-w", again)
	for _, args := range [][]string{{"--print"}, {"--json"}, {"--journeys", "--json"}} {
		want := runQuietly(t, "2", append(args, "-r", plain)...)
		if got := runQuietly(t, "2", append(args, "-r", again)...); got != want || want == "" {
			t.Errorf("%v: the pcapng -w wrote replays to other output:\n%s\nthe pcap:\n%s", args, got, want)
		}
	}
}

// runOnCores runs the hooktrace binary with args on procs cores (GOMAXPROCS) and
// returns its standard output and standard error; a failed run fails the
// test.
func runOnCores(t testing.TB, procs string, args ...string) (stdout, stderr string) {
	t.Helper()
	return runBinOnCores(t, hooktraceBin, procs, args...)
}

// runBinOnCores is runOnCores for the hooktrace binary bin.
func runBinOnCores(t testing.TB, bin, procs string, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+procs)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("hooktrace %v, GOMAXPROCS=%s: %v: %s", args, procs, err, errb.String())
	}
	return out.String(), errb.String()
}

// runQuietly is runOnCores for a run that must not warn.
func runQuietly(t testing.TB, procs string, args ...string) string {
	t.Helper()
	out, errb := runOnCores(t, procs, args...)
	if errb != "" {
		t.Fatalf("hooktrace %v, GOMAXPROCS=%s: %s", args, procs, errb)
	}
	return out
}

// TestPipelineRaces replays through a hooktrace built with the race
// detector, on two and four cores, in the modes that spread a replay
// over goroutines (the pipeline's stage, finishers, the chunks of the
// journeys left at the end, a chunk's journeys split between two
// goroutines): no race is reported, and the output is one core's. (The
// other end-to-end tests run a binary built without it.)
func TestPipelineRaces(t *testing.T) {
	if !raceBuild {
		t.Skip("run with go test -race: the binary is built with the race detector when the tests are")
	}
	dir := t.TempDir()
	bin, err := buildHooktrace(dir, "-race")
	if err != nil {
		t.Fatal(err)
	}
	file, later := filepath.Join(dir, "incident.pcapng"), filepath.Join(dir, "later.pcapng")
	writeGenerated(t, file, func(w io.Writer) error { return synth.WriteIncident(w, 6000, 5) })
	writeGenerated(t, later, func(w io.Writer) error { return synth.WriteIncident(w, 9000, 6) })
	for _, args := range [][]string{
		{"--json", "-r", file},
		{"--journeys", "--json", "-r", file},
		{"--print", "-r", file, "tcp"},
		{"--journeys", "-r", file, "-r", later, "--time-shift", "later.pcapng=1h"},
	} {
		want, _ := runOnCores(t, "1", args...)
		for _, procs := range []string{"2", "4"} {
			out, errb := runBinOnCores(t, bin, procs, args...) // fails on the race detector's exit status
			if strings.Contains(errb, "DATA RACE") {
				t.Fatalf("%v, GOMAXPROCS=%s:\n%s", args, procs, errb)
			}
			if out != want {
				t.Errorf("%v, GOMAXPROCS=%s: output differs from one core's (%d bytes, %d)", args, procs, len(out), len(want))
			}
		}
	}
}
