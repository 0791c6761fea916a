package main

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
	"github.com/hooktrace/hooktrace/nflog"
)

// nflogRecord is the part of an NFLOG packet record these tests read.
type nflogRecord struct {
	Type     string `json:"type"`
	Iface    string `json:"iface"`
	Netns    string `json:"netns"`
	LinkType int    `json:"linktype"`
	Layers   []map[string]any
	// stats
	Interfaces []struct {
		Iface       string `json:"iface"`
		Received    uint64 `json:"received"`
		KernelDrops uint64 `json:"kernel_drops"`
	} `json:"interfaces"`
	TraceEvents *uint64 `json:"trace_events"`
}

// nflogSteps returns "prefix@hook icmp-type" for each NFLOG record, and
// the stats record.
func nflogSteps(t *testing.T, out []byte) (steps []string, stats *nflogRecord) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r nflogRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bad NDJSON line %q: %v", line, err)
		}
		if r.Type == "stats" {
			rr := r
			stats = &rr
			continue
		}
		if r.Type != "packet" || r.LinkType != 239 {
			continue
		}
		var prefix, hook, icmp string
		for _, l := range r.Layers {
			switch l["proto"] {
			case "nflog":
				prefix, _ = l["prefix"].(string)
				hook, _ = l["hook_name"].(string)
			case "icmp":
				icmp, _ = l["name"].(string)
			}
		}
		steps = append(steps, strings.TrimSpace(prefix)+"@"+hook+" "+icmp)
	}
	return steps, stats
}

// pingIn sends count echo requests to dst from inside ns.
func pingIn(t *testing.T, ns, dst string, count int) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.05", "-W", "2", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("ping %s in %s: %v %s", dst, ns, err, out)
	}
}

// TestNflogGroupAlone listens to a group the user's own rule logs to,
// with no interface capture: every message arrives as a LINKTYPE_NFLOG
// record, and the stats count them on the group's pseudo-interface.
func TestNflogGroupAlone(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t, "hxtnl")
	load := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	load.Stdin = strings.NewReader(`table inet userlog {
	chain out {
		type filter hook output priority 0; policy accept;
		icmp type echo-request log prefix "user-out " group 5
	}
}
`)
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("load rules: %v %s", err, out)
	}
	r := startHooktrace(t, "--netns", ns, "--nflog", "5", "--json")
	pingIn(t, ns, "127.0.0.1", 3)
	waitOutput(t, r, func(out string) bool { return strings.Count(out, `"iface":"nflog:5"`) >= 3 })
	r.stop(t)
	steps, stats := nflogSteps(t, r.stdout.Bytes())
	want := "user-out@output echo request"
	if len(steps) != 3 || steps[0] != want || steps[1] != want || steps[2] != want {
		t.Errorf("NFLOG records %q, want 3 × %q", steps, want)
	}
	if stats == nil || len(stats.Interfaces) != 1 || stats.Interfaces[0].Iface != "nflog:5" || stats.Interfaces[0].Received != 3 {
		t.Errorf("stats %+v: want only nflog:5 with 3 received (no interface is captured without -i)", stats)
	}
}

// TestTraceLogsEveryHook runs --trace and reads hooktrace's own NFLOG
// group: each echo request and reply is logged entering and leaving each
// hook it crosses, in the kernel's order, and the stats record counts
// the trace events.
func TestTraceLogsEveryHook(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t, "hxtnl")
	r := startHooktrace(t, "--netns", ns, "-i", "lo", "--trace", "--json", "icmp")
	pingIn(t, ns, "127.0.0.1", 1)
	waitOutput(t, r, func(out string) bool { return strings.Count(out, `"prefix":"hooktrace `) >= 16 })
	r.stop(t)
	steps, stats := nflogSteps(t, r.stdout.Bytes())
	var want []string
	for _, icmp := range []string{"echo request", "echo reply"} {
		for _, hook := range []string{"output", "postrouting", "prerouting", "input"} {
			want = append(want, "hooktrace first@"+hook+" "+icmp, "hooktrace last@"+hook+" "+icmp)
		}
	}
	if strings.Join(steps, "\n") != strings.Join(want, "\n") {
		t.Errorf("NFLOG records:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
	if stats == nil || stats.TraceEvents == nil || *stats.TraceEvents == 0 {
		t.Errorf("stats record %+v: want trace_events counted", stats)
	}
	if has, err := nflog.HasTraceTable(nflog.NetnsRef{Name: ns, Path: "/run/netns/" + ns}); err != nil || has {
		t.Errorf("hooktrace's table left behind (%v)", err)
	}
}

// TestNflogGroupBusy: a group another process holds is a one-line error
// (exit 2), and --trace leaves nothing behind when it fails that way.
func TestNflogGroupBusy(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t, "hxtnl")
	holder, err := nflog.ListenLog(ns, "/run/netns/"+ns, 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	out, err := exec.Command(hooktraceBin, "--netns", ns, "--nflog", "7", "--trace", "--json", "icmp").CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitUsage {
		t.Fatalf("exit %v, want %d: %s", err, exitUsage, out)
	}
	msg := strings.TrimSpace(string(out))
	if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "NFLOG group 7") || !strings.Contains(msg, "already bound") {
		t.Errorf("error %q: want one line saying group 7 is already bound", msg)
	}
	if has, err := nflog.HasTraceTable(nflog.NetnsRef{Name: ns, Path: "/run/netns/" + ns}); err != nil || has {
		t.Errorf("hooktrace's table left behind (%v)", err)
	}
}

// waitOutput polls the process's stdout until cond holds, for at most
// ten seconds.
func waitOutput(t *testing.T, r *hooktraceRun, cond func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond(r.stdout.String()) {
		if time.Now().After(deadline) {
			r.stop(t)
			t.Fatalf("expected output did not come; got:\n%s\nstderr: %s", r.stdout.String(), r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTraceBridge traces a packet a bridge forwards between two
// namespaces: the bridge family's chains see it (the user's rule in a
// bridge table is traced, and hooktrace's own bridge chains log it
// entering and leaving each bridge hook), and everything is removed.
func TestTraceBridge(t *testing.T) {
	nstest.RequireRoot(t)
	a, b, br := nstest.New(t, "hxtba"), nstest.New(t, "hxtbb"), nstest.New(t, "hxtbr")
	nstest.Run(t, "ip", "-n", br, "link", "add", "br0", "type", "bridge")
	nstest.Run(t, "ip", "-n", br, "link", "set", "br0", "up")
	nstest.Veth(t, a, "ea", "10.87.0.1/24", br, "pa", "")
	nstest.Veth(t, b, "eb", "10.87.0.2/24", br, "pb", "")
	nstest.Run(t, "ip", "-n", br, "link", "set", "pa", "master", "br0")
	nstest.Run(t, "ip", "-n", br, "link", "set", "pb", "master", "br0")
	load := exec.Command("ip", "netns", "exec", br, "nft", "-f", "-")
	load.Stdin = strings.NewReader(`table bridge userbr {
	chain bridged {
		type filter hook forward priority 0; policy accept;
		icmp type echo-request counter
	}
}
`)
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("load rules: %v %s", err, out)
	}
	r := startHooktrace(t, "--netns", br, "-i", "pa", "--trace", "--json", "icmp")
	pingIn(t, a, "10.87.0.2", 1)
	waitOutput(t, r, func(out string) bool {
		return strings.Contains(out, `"table":"userbr"`) && strings.Count(out, `"family":7,"group"`) >= 6
	})
	r.stop(t)
	out := r.stdout.String()
	if !strings.Contains(out, `"family":"bridge","table":"userbr","chain":"bridged","hook":"forward"`) {
		t.Errorf("no trace of the user's bridge rule in:\n%s", out)
	}
	var bridged []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.Contains(line, `"family":7,"group"`) && strings.Contains(line, "echo request") {
			steps, _ := nflogSteps(t, []byte(line))
			bridged = append(bridged, steps...)
		}
	}
	want := []string{"hooktrace first@prerouting echo request", "hooktrace last@prerouting echo request",
		"hooktrace first@forward echo request", "hooktrace last@forward echo request",
		"hooktrace first@postrouting echo request", "hooktrace last@postrouting echo request"}
	if strings.Join(bridged, ",") != strings.Join(want, ",") {
		t.Errorf("bridge-family NFLOG records of the request:\n%q\nwant:\n%q", bridged, want)
	}
	if rs := nstest.Run(t, "ip", "netns", "exec", br, "nft", "list", "tables"); strings.Contains(rs, "hooktrace") {
		t.Errorf("hooktrace's tables left behind:\n%s", rs)
	}
}
