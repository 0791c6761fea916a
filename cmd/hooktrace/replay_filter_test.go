package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hooktrace/hooktrace/fixtures/synth"
)

// TestReplayFilterSelects: replayed with a filter, a recorded incident
// shows the journeys of the packets the filter selects, each exactly as
// the replay without a filter shows it (every frame and record still
// joins the journeys): for "tcp", those of TCP packets, tunnelled in
// VXLAN or not. Its packet lines are those of the frames the filter
// passes, as tcpdump's (a VXLAN frame is UDP), NFLOG messages going by
// the packet they carry (libpcap cannot filter them); trace events are
// all printed. Checked against the unfiltered output: a journey by the
// layers of its first packet outside any ICMP error's quote, a packet
// line by its outermost ones. On one core and on two.
func TestReplayFilterSelects(t *testing.T) {
	file := filepath.Join(t.TempDir(), "incident.pcapng")
	writeGenerated(t, file, func(w io.Writer) error { return synth.WriteIncident(w, 20000, 5) })
	replay := func(procs string, args ...string) (string, string) {
		t.Helper()
		var out, errb strings.Builder
		cmd := exec.Command(hooktraceBin, append([]string{"-r", file}, args...)...)
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+procs)
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v GOMAXPROCS=%s: %v: %s", args, procs, err, errb.String())
		}
		return out.String(), errb.String()
	}
	for _, mode := range []struct {
		args  []string
		count string // the lines counted as selected
	}{
		{[]string{"--journeys", "--json"}, "journey"},
		{[]string{"--json"}, "packet"},
	} {
		all, _ := replay("2", mode.args...)
		lines := strings.SplitAfter(all, "\n")
		lines = lines[:len(lines)-1]
		type line struct {
			text   string
			kind   string
			nflog  bool
			protos map[string]bool // a journey's outside quotes, a packet's outermost
		}
		parsed := make([]line, len(lines))
		for i, l := range lines {
			var r struct {
				Type   string `json:"type"`
				Layers []struct {
					Proto string `json:"proto"`
					Depth int    `json:"depth"`
				} `json:"layers"`
				LinkType int `json:"linktype"`
				Packet   *struct {
					Layers []struct {
						Proto  string `json:"proto"`
						Quoted bool   `json:"quoted"`
					} `json:"layers"`
				} `json:"packet"`
			}
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("%v: line %d: %v: %s", mode.args, i, err, l)
			}
			parsed[i] = line{text: l, kind: r.Type, nflog: r.LinkType == 239, protos: map[string]bool{}}
			for _, ly := range r.Layers {
				if ly.Depth == 0 {
					parsed[i].protos[ly.Proto] = true
				}
			}
			if r.Packet != nil {
				for _, ly := range r.Packet.Layers {
					if !ly.Quoted {
						parsed[i].protos[ly.Proto] = true
					}
				}
			}
		}
		selected := 0
		for _, proto := range []string{"tcp", "udp", "icmp"} {
			var want strings.Builder
			n, nflogs := 0, 0
			for _, l := range parsed {
				if (l.kind == "journey" || l.kind == "packet") && !l.protos[proto] {
					continue
				}
				want.WriteString(l.text)
				if l.kind == mode.count {
					n++
					if l.nflog {
						nflogs++
					}
				}
			}
			selected += n
			if n < 100 || mode.count == "packet" && nflogs < 100 {
				t.Fatalf("%v %s: only %d lines to select (%d NFLOG messages)", mode.args, proto, n, nflogs)
			}
			for _, procs := range []string{"1", "2"} {
				got, stderr := replay(procs, append(mode.args, proto)...)
				if got != want.String() {
					t.Errorf("%v %s, GOMAXPROCS=%s: %d lines, want those of the %d %s lines of %s packets", mode.args, proto, procs, strings.Count(got, "\n"), n, mode.count, proto)
				}
				if stderr != "" {
					t.Errorf("%v %s, GOMAXPROCS=%s: %s", mode.args, proto, procs, stderr)
				}
			}
		}
		if total := strings.Count(all, `"type":"`+mode.count+`"`); selected < total {
			t.Errorf("%v: tcp, udp and icmp select %d %s lines in all, of %d", mode.args, selected, mode.count, total)
		}
	}
}
