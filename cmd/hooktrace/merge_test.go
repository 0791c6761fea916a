package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
	"github.com/hooktrace/hooktrace/fixtures/scenario"
)

// recording is a `hooktrace --trace --json -w FILE` run in progress.
type recording struct {
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan error
	ready          string
}

// startRecording starts recording the namespaces into file; waitReady
// waits until it traces.
func startRecording(t *testing.T, netns []string, filter, file string) *recording {
	t.Helper()
	r := &recording{done: make(chan error, 1), ready: filepath.Join(t.TempDir(), "ready")}
	r.cmd = exec.Command(hooktraceBin, "--trace", "--json", "-w", file, "--ready-file", r.ready, "--netns", strings.Join(netns, ","), filter)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

func (r *recording) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(r.ready); err == nil {
			return
		}
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("hooktrace ended before it was ready: %v: %s", err, r.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hooktrace not ready after 20 s: %s", r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the run with SIGINT and returns its stdout.
func (r *recording) stop(t *testing.T) string {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		t.Fatalf("hooktrace did not end: %s", r.stderr.String())
	}
	return r.stdout.String()
}

// replayArgs runs hooktrace --json with the arguments and returns its
// journey records (ids and route steps left out); stderr must be empty.
func replayJourneysOf(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	var out, errb strings.Builder
	cmd := exec.Command(hooktraceBin, append([]string{"--json"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil || errb.Len() > 0 {
		t.Fatalf("hooktrace %v: %v: %s", args, err, errb.String())
	}
	return sortJSON(recordsOf(t, out.String(), "journey"))
}

// unordered leaves out of journey records what the order of records of
// one moment decides: the first sighting's details (its summary stays)
// and the order of steps (they are sorted). The whole file gives its
// records in the order hooktrace received them, a merge of its halves
// in time order.
func unordered(js []map[string]any) []map[string]any {
	var out []map[string]any
	for _, j := range js {
		c := map[string]any{}
		for k, v := range j {
			c[k] = v
		}
		if p, ok := j["packet"].(map[string]any); ok {
			c["packet"] = p["summary"]
		}
		steps := slices.Clone(j["steps"].([]any))
		key := func(s any) string { b, _ := json.Marshal(s); return string(b) }
		slices.SortFunc(steps, func(a, b any) int { return strings.Compare(key(a), key(b)) })
		c["steps"] = steps
		out = append(out, c)
	}
	return sortJSON(out)
}

// jsonDiff shows the lines of two values' JSON that differ.
func jsonDiff(t *testing.T, got, want any) string {
	t.Helper()
	g, _ := json.MarshalIndent(got, "", " ")
	w, _ := json.MarshalIndent(want, "", " ")
	gl, wl := strings.Split(string(g), "\n"), strings.Split(string(w), "\n")
	var b strings.Builder
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var gs, ws string
		if i < len(gl) {
			gs = gl[i]
		}
		if i < len(wl) {
			ws = wl[i]
		}
		if gs != ws {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, ws, gs)
		}
	}
	return b.String()
}

// scenarioJourneys returns the journeys of the scenario's packet, the
// inner datagram: VXLAN also carries the hosts' own IPv6 chatter.
func scenarioJourneys(js []map[string]any, flow string) []map[string]any {
	var out []map[string]any
	for _, j := range js {
		if p, ok := j["packet"].(map[string]any); ok && strings.Contains(p["summary"].(string), flow) {
			out = append(out, j)
		}
	}
	return out
}

// TestMergeTwoHosts merges recordings of the VXLAN scenario's two hosts.
//
// Split: one `--trace -w` run records both hosts; its file, split in
// two by namespace (one file per host, as two hosts' recordings would
// be), merges back into exactly the journeys the whole file gives. A
// copy of host2's half with its clock 5 s ahead does not merge into
// them, and does with --time-shift taking the 5 s back.
//
// Two runs: two `--trace -w` runs at once, each tracing one host's
// namespace, merge into one journey for the packet: encapsulated on
// host1, decapsulated and dropped by the rule on host2, as the scenario
// verified it.
func TestMergeTwoHosts(t *testing.T) {
	nstest.RequireRoot(t)
	sc, ok := scenario.Get("vxlan")
	if !ok {
		t.Fatal("no scenario vxlan")
	}
	top := sc.Build(t)
	h1, h2 := top.Trace[0], top.Trace[1]
	flow := top.Expected.Src.String() + " > " + top.Expected.Dst.String()
	dir := t.TempDir()

	t.Run("split", func(t *testing.T) {
		both := filepath.Join(dir, "both.pcapng")
		recordScenario(t, top, both, syscall.SIGINT)
		want := replayJourneysOf(t, "-r", both)
		if n := len(scenarioJourneys(want, flow)); n != 1 {
			t.Fatalf("%d journeys of %s tracing both hosts in one run, want 1", n, flow)
		}
		a, b := filepath.Join(dir, "split1.pcapng"), filepath.Join(dir, "split2.pcapng")
		splitRecording(t, both, map[string]string{h1: a, h2: b})
		merged := replayJourneysOf(t, "-r", a, "-r", b)
		// The hosts' own IPv6 chatter over VXLAN (the same MLD report from
		// each side) can make journeys whose first sighting depends on
		// the order of simultaneous records: the packet's journey is
		// compared, and the number of journeys.
		g, w := unordered(scenarioJourneys(merged, flow)), unordered(scenarioJourneys(want, flow))
		if !reflect.DeepEqual(g, w) || len(merged) != len(want) {
			t.Errorf("the halves merged give %d journeys, the whole %d; the packet's (- whole, + merged):\n%s", len(merged), len(want), jsonDiff(t, g, w))
		}
		skewed := filepath.Join(dir, "split2-skewed.pcapng")
		skewRecording(t, b, skewed, 5*time.Second)
		if js := replayJourneysOf(t, "-r", a, "-r", skewed); reflect.DeepEqual(unordered(scenarioJourneys(js, flow)), w) {
			t.Errorf("a clock 5 s ahead merges into the same journeys: the test shows nothing")
		}
		fixed := replayJourneysOf(t, "-r", a, "-r", skewed, "--time-shift", "split2-skewed.pcapng=-5s")
		if !reflect.DeepEqual(fixed, merged) {
			t.Errorf("--time-shift does not take the offset back (- merged, + corrected):\n%s", jsonDiff(t, fixed, merged))
		}
		// -w writes the corrected merge as one recording: it replays to
		// the merge's journeys, namespaces qualified and times moved.
		one := filepath.Join(dir, "merged.pcapng")
		if out, err := exec.Command(hooktraceBin, "-r", a, "-r", skewed, "--time-shift", "split2-skewed.pcapng=-5s", "-w", one).CombinedOutput(); err != nil {
			t.Fatalf("merge -w: %v: %s", err, out)
		}
		if got := replayJourneysOf(t, "-r", one); !reflect.DeepEqual(got, merged) {
			t.Errorf("the merge written with -w replays to other journeys (- merged, + written):\n%s", jsonDiff(t, got, merged))
		}
	})

	t.Run("two runs", func(t *testing.T) {
		a, b := filepath.Join(dir, "host1.pcapng"), filepath.Join(dir, "host2.pcapng")
		ra := startRecording(t, []string{h1}, top.Filter, a)
		rb := startRecording(t, []string{h2}, top.Filter, b)
		ra.waitReady(t)
		rb.waitReady(t)
		if err := top.Send(); err != nil {
			t.Errorf("send: %v", err)
		}
		// The recorders flush their files on a tick: once the files
		// merge into the packet's journey, its records are written.
		waitForMergedJourney(t, flow, func(j map[string]any) bool { return twoHostJourney(j, h1, h2) == nil }, a, b)
		ra.stop(t)
		rb.stop(t)
		merged := scenarioJourneys(replayJourneysOf(t, "-r", a, "-r", b), flow)
		if len(merged) != 1 {
			t.Fatalf("%d journeys of %s merged, want 1: %v", len(merged), flow, merged)
		}
		checkTwoHostJourney(t, merged[0], h1, h2)
		for _, f := range []string{a, b} {
			js := scenarioJourneys(replayJourneysOf(t, "-r", f), flow)
			if len(js) != 1 || js[0]["outcome"] == "dropped" && f == a {
				t.Errorf("%s alone: %v", f, js)
			}
		}
	})
}

// checkTwoHostJourney checks the merged journey against the scenario:
// encapsulated on host1, decapsulated on host2, dropped there by the rule.
func checkTwoHostJourney(t *testing.T, j map[string]any, h1, h2 string) {
	t.Helper()
	if err := twoHostJourney(j, h1, h2); err != nil {
		b, _ := json.MarshalIndent(j, "", " ")
		t.Errorf("%v; journey:\n%s", err, b)
	}
}

// twoHostJourney says how the merged journey differs from the scenario's.
func twoHostJourney(j map[string]any, h1, h2 string) error {
	kinds := map[string]string{}
	steps, _ := j["steps"].([]any)
	for _, s := range steps {
		m, _ := s.(map[string]any)
		if k, _ := m["kind"].(string); k == "encap" || k == "decap" {
			kinds[k], _ = m["netns"].(string)
		}
	}
	var errs []error
	if kinds["encap"] != h1 || kinds["decap"] != h2 {
		errs = append(errs, fmt.Errorf("encap in %q, decap in %q; want %s and %s", kinds["encap"], kinds["decap"], h1, h2))
	}
	d, _ := j["drop"].(map[string]any)
	if j["outcome"] != "dropped" || d == nil || d["netns"] != h2 || d["chain"] != "input" {
		errs = append(errs, fmt.Errorf("outcome %v, drop %v; want dropped in %s by chain input", j["outcome"], d, h2))
	}
	return errors.Join(errs...)
}

// waitForMergedJourney replays files being recorded, merged, until a
// journey of flow passes ok: the records it needs are written. A file's
// last block may be half written, so the replay's warnings and exit
// status are not looked at.
func waitForMergedJourney(t *testing.T, flow string, ok func(map[string]any) bool, files ...string) {
	t.Helper()
	args := []string{"--json"}
	for _, f := range files {
		args = append(args, "-r", f)
	}
	deadline := time.Now().Add(30 * time.Second)
	var last []map[string]any
	for {
		out, _ := exec.Command(hooktraceBin, args...).Output()
		last = nil
		for _, line := range strings.Split(string(out), "\n") {
			var r map[string]any
			if json.Unmarshal([]byte(line), &r) == nil && r["type"] == "journey" {
				last = append(last, r)
			}
		}
		for _, j := range scenarioJourneys(last, flow) {
			if ok(j) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recordings %v hold no complete journey of %s after 30 s; they replay to %v", files, flow, scenarioJourneys(last, flow))
		}
		time.Sleep(100 * time.Millisecond) // the next flush tick
	}
}

// skewRecording copies a recording with every time moved by d, frames and
// records alike: a recording made on a host whose clock was off by d.
func skewRecording(t *testing.T, in, out string, d time.Duration) {
	t.Helper()
	m, err := capture.OpenMerge([]capture.MergeInput{{Path: in, Shift: d}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	w, err := capture.NewPcapngWriterHost(bw, "hooktrace test", capture.LocalHost())
	if err != nil {
		t.Fatal(err)
	}
	rec := decode.NewRecording()
	for {
		r, err := m.NextRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		c := r.Custom
		if c == nil {
			if err := w.WritePacket(r.Frame); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := rec.TakeRecord(c)
		if err != nil {
			t.Fatal(err)
		}
		payload := c.Payload
		switch {
		case got.Trace != nil:
			payload = decode.AppendTraceRecord(nil, got.Trace)
		case got.Drop != nil:
			payload = decode.AppendDropRecord(nil, got.Drop)
		case got.Loss != nil:
			payload = decode.AppendLossRecord(nil, got.Loss)
		case c.Kind == capture.CustomRuleset:
			rs := rec.Rulesets()
			payload = decode.AppendRulesetRecord(nil, &rs[len(rs)-1])
		}
		if err := w.WriteCustom(c.Kind, c.Time, c.Netns, payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestMergeBadInput: a missing second file, files of different link
// types, a damaged second file, standard input beside a file and a
// --time-shift naming no -r file each give one clear line, never a
// panic; what could be read is printed.
func TestMergeBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		stderr  string // a part of the one line
		packets bool   // packets are printed
	}{
		{"missing second file", []string{"-r", "../../fixtures/vxlan.pcap", "-r", filepath.Join(dir, "missing.pcapng")}, 1, "missing.pcapng: no such file", false},
		{"different link types", []string{"-r", "../../fixtures/vxlan.pcap", "-r", "../../fixtures/sll2.pcap"}, 0, "different link types (../../fixtures/vxlan.pcap: Ethernet, ../../fixtures/sll2.pcap: Linux cooked (SLL2))", true},
		{"unknown link type", []string{"-r", "../../fixtures/vxlan.pcap", "-r", "../../fixtures/unknown-linktype.pcap"}, 1, "unknown-linktype.pcap: unknown link type 147", false},
		{"damaged second file", []string{"-r", "../../fixtures/vxlan.pcap", "-r", "../../fixtures/corrupt.pcapng"}, 1, "corrupt.pcapng: byte ", true},
		{"not a capture", []string{"-r", "../../fixtures/vxlan.pcap", "-r", "../../fixtures/not-a-capture.pcap"}, 1, "not-a-capture.pcap: byte 0: not a pcap or pcapng file", false},
		{"standard input", []string{"-r", "../../fixtures/vxlan.pcap", "-r", "-"}, 2, "cannot be merged", false},
		{"shift of no file", []string{"-r", "../../fixtures/vxlan.pcap", "--time-shift", "b.pcapng=+1ms"}, 2, "b.pcapng is not one of the -r files", false},
		{"bad offset", []string{"-r", "../../fixtures/vxlan.pcap", "--time-shift", "vxlan.pcap=soon"}, 2, "neither a duration", false},
		{"offset out of range", []string{"-r", "../../fixtures/vxlan.pcap", "--time-shift", "vxlan.pcap=1e12"}, 2, "1e12 seconds is out of range", false},
		{"offsets adding up out of range", []string{"-r", "../../fixtures/vxlan.pcap", "--time-shift", "vxlan.pcap=5e9", "--time-shift", "vxlan.pcap=5e9"}, 2, "add up to more than", false},
		{"offset not a number", []string{"-r", "../../fixtures/vxlan.pcap", "--time-shift", "vxlan.pcap=NaN"}, 2, "neither a duration", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb strings.Builder
			cmd := exec.Command(hooktraceBin, append([]string{"--print"}, tc.args...)...)
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
			if code != tc.code || len(lines) != 1 || !strings.Contains(lines[0], tc.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d and one line with %q", code, errb.String(), tc.code, tc.stderr)
			}
			if strings.Contains(errb.String(), "panic") {
				t.Errorf("panics: %s", errb.String())
			}
			if got := out.Len() > 0; got != tc.packets {
				t.Errorf("packets printed: %v, want %v:\n%s", got, tc.packets, out.String())
			}
		})
	}
}

// splitRecording writes the records of each namespace of a recording to
// its own file (files maps namespace to file), as recordings of separate
// hosts would hold them; records of every namespace go to each.
func splitRecording(t *testing.T, in string, files map[string]string) {
	t.Helper()
	src, err := capture.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ws := map[string]*capture.PcapngWriter{}
	var flush []func() error
	for ns, path := range files {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		bw := bufio.NewWriter(f)
		flush = append(flush, bw.Flush)
		if ws[ns], err = capture.NewPcapngWriterHost(bw, "hooktrace test", capture.LocalHost()); err != nil {
			t.Fatal(err)
		}
	}
	for {
		r, err := src.NextRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		c := r.Custom
		ns := r.Frame.Netns
		if c != nil {
			ns = c.Netns
		}
		for wns, w := range ws {
			if ns != wns && !(c != nil && ns == "") {
				continue
			}
			if c != nil {
				err = w.WriteCustom(c.Kind, c.Time, c.Netns, c.Payload)
			} else {
				err = w.WritePacket(r.Frame)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, fl := range flush {
		if err := fl(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMergeTUI opens two captures merged in the terminal UI: the list
// holds both files' packets, in time order, each file's shown by its
// label (the captures' unnamed namespaces are qualified).
func TestMergeTUI(t *testing.T) {
	a, err := filepath.Abs("../../fixtures/vxlan.pcap")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := filepath.Abs("../../fixtures/icmp.pcap")
	s := startTmux(t, t.TempDir(), 120, 30, fmt.Sprintf("%s -r %s -r %s --time-shift icmp.pcap=+1ms; echo hooktrace-exit=$?; exec sleep 60", hooktraceBin, a, b))
	s.waitText("24 packets")
	scr := s.waitText("vxlan.pcap + ")
	if !strings.Contains(scr, "icmp") || !strings.Contains(scr, "vxlan") {
		t.Errorf("the list does not say which file each packet came from:\n%s", scr)
	}
	s.keys("q")
	s.waitText("hooktrace-exit=0")
}
