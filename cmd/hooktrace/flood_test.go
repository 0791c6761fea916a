package main

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
)

// floodRules counts echo requests in a rule whose every match is one
// trace event.
const floodRules = `table inet floodfw {
	chain input {
		type filter hook input priority 0; policy accept;
		icmp type echo-request counter
	}
}
`

// floodRecord is the part of each record the flood test counts.
type floodRecord struct {
	Type      string `json:"type"`
	Table     string `json:"table"`
	TraceType string `json:"trace_type"`
	Handle    uint64 `json:"handle"`
	LinkType  int    `json:"linktype"`
	Iface     string `json:"iface"`
	// stats
	Interfaces []struct {
		Iface          string `json:"iface"`
		Received       uint64 `json:"received"`
		KernelDrops    uint64 `json:"kernel_drops"`
		HooktraceDrops uint64 `json:"hooktrace_drops"`
	} `json:"interfaces"`
	TraceEvents  uint64 `json:"trace_events"`
	TraceENOBUFS uint64 `json:"trace_enobufs"`
	TraceUnread  uint64 `json:"trace_unread"`
}

// TestTraceFlood traces thousands of packets in a few seconds: every
// trace event is received or the loss is reported, and the NFLOG
// messages add up exactly (received + dropped = sent).
func TestTraceFlood(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t, "hxtfa"), nstest.New(t, "hxtfb")
	nstest.Veth(t, a, "fa", "10.86.0.1/24", b, "fb", "10.86.0.2/24")
	load := exec.Command("ip", "netns", "exec", b, "nft", "-f", "-")
	load.Stdin = strings.NewReader(floodRules)
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("load rules: %v %s", err, out)
	}
	r := startHooktrace(t, "--netns", b, "-i", "fb", "--trace", "--trace-rate", "0", "--json", "icmp")
	const pings = 3000
	out, err := exec.Command("ip", "netns", "exec", a, "ping", "-n", "-q", "-f", "-c", strconv.Itoa(pings), "10.86.0.2").CombinedOutput()
	if err != nil {
		t.Fatalf("ping flood: %v %s", err, out)
	}
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`).FindStringSubmatch(string(out))
	if m == nil || m[1] != strconv.Itoa(pings) {
		t.Fatalf("ping flood did not send %d: %s", pings, out)
	}
	replies, _ := strconv.Atoi(m[2])
	r.stop(t)

	var ruleEvents, nflogRecords uint64
	var stats *floodRecord
	for _, line := range strings.Split(strings.TrimSpace(r.stdout.String()), "\n") {
		var rec floodRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("bad NDJSON line %q: %v", line, err)
		}
		switch {
		case rec.Type == "trace" && rec.Table == "floodfw" && rec.TraceType == "rule" && rec.Handle != 0:
			ruleEvents++
		case rec.Type == "packet" && rec.LinkType == 239:
			nflogRecords++
		case rec.Type == "stats":
			rr := rec
			stats = &rr
		}
	}
	if stats == nil {
		t.Fatalf("no stats record; stderr: %s", r.stderr.String())
	}
	// Every request reached b (ping counts the replies b sent back).
	if ruleEvents != pings && stats.TraceENOBUFS == 0 && stats.TraceUnread == 0 {
		t.Errorf("%d rule events for %d echo requests, and no loss reported", ruleEvents, pings)
	}
	// In b, each round trip is logged 8 times: the request entering and
	// leaving prerouting and input, the reply output and postrouting.
	var logged uint64
	for _, s := range stats.Interfaces {
		if !strings.HasPrefix(s.Iface, "nflog:") {
			continue
		}
		logged += s.Received + s.KernelDrops
		if printed := s.Received - s.HooktraceDrops; printed != nflogRecords {
			t.Errorf("%s: %d received, %d shed, but %d records printed", s.Iface, s.Received, s.HooktraceDrops, nflogRecords)
		}
	}
	if want := uint64(4*pings + 4*replies); logged != want {
		t.Errorf("NFLOG received + dropped = %d, want %d (8 per round trip)", logged, want)
	}
	if stats.TraceEvents < ruleEvents {
		t.Errorf("stats count %d trace events, fewer than the %d printed", stats.TraceEvents, ruleEvents)
	}
	t.Logf("%d pings (%d replies): %d rule events, %d trace events in all, %d ENOBUFS, %d unread; %d NFLOG records; stats %+v",
		pings, replies, ruleEvents, stats.TraceEvents, stats.TraceENOBUFS, stats.TraceUnread, nflogRecords, stats.Interfaces)
}
