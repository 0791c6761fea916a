package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/fixtures/synth"
	"github.com/hooktrace/hooktrace/nflog"
	"github.com/hooktrace/hooktrace/ui"
)

// TestReplayFilterSelects: replayed with a filter, a recorded incident
// shows the journeys of the packets the filter selects, each exactly as
// the replay without a filter shows it (every frame and record still
// joins the journeys): for "tcp", those of TCP packets, tunnelled in
// VXLAN or not. Its packet lines are those of the frames the filter
// passes, as tcpdump's (a VXLAN frame is UDP), NFLOG messages going by
// the packet they carry (libpcap cannot filter them); its trace lines
// those of the packets the filter passes. Checked against the unfiltered
// output: a journey by the layers of its first packet outside any ICMP
// error's quote, a packet line by its outermost ones, a trace line by
// those of the latest header snapshot of its trace id in its namespace.
// On one core and on two.
func TestReplayFilterSelects(t *testing.T) {
	file := filepath.Join(t.TempDir(), "incident.pcapng")
	writeGenerated(t, file, func(w io.Writer) error { return synth.WriteIncident(w, 20000, 5) })
	replay := func(procs string, args ...string) (string, string) {
		t.Helper()
		return runOnCores(t, procs, append([]string{"-r", file}, args...)...)
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
			protos map[string]bool // a journey's outside quotes, a packet's outermost, a trace event's snapshot's
			trace  string          // a trace event's namespace and id
		}
		parsed := make([]line, len(lines))
		for i, l := range lines {
			var r struct {
				Type   string `json:"type"`
				Layers []struct {
					Proto string `json:"proto"`
					Depth int    `json:"depth"`
				} `json:"layers"`
				LinkType int    `json:"linktype"`
				Netns    string `json:"netns"`
				ID       any    `json:"id"` // a trace event's is a string, a journey's a number
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
			if r.Type == "trace" {
				parsed[i].trace = fmt.Sprint(r.Netns, " ", r.ID)
			}
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
			n, nflogs, traces := 0, 0, 0
			passed := map[string]bool{} // by trace id: whether the latest snapshot was of a proto packet
			for _, l := range parsed {
				if (l.kind == "journey" || l.kind == "packet") && !l.protos[proto] {
					continue
				}
				if l.kind == "trace" {
					if len(l.protos) > 0 {
						passed[l.trace] = l.protos[proto]
					}
					if !passed[l.trace] {
						continue
					}
					traces++
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
			if n < 100 || mode.count == "packet" && (nflogs < 100 || traces < 100) {
				t.Fatalf("%v %s: only %d lines to select (%d NFLOG messages, %d trace events)", mode.args, proto, n, nflogs, traces)
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

// TestReplayWriteFilteredIncident: -w with a filter on a recording writes
// the frames the filter passes and everything the journeys it selects
// were built from, so the written file, replayed, gives those journeys
// (ids and print order aside: they follow arrival), on one core and on
// two, and nothing else; it is smaller than the recording, holds every
// frame the filter passes, and tshark reads it without a warning.
func TestReplayWriteFilteredIncident(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "incident.pcapng")
	writeGenerated(t, file, func(w io.Writer) error { return synth.WriteIncident(w, 12000, 9) })
	run := func(procs string, args ...string) string {
		t.Helper()
		return runQuietly(t, procs, args...)
	}
	ids := regexp.MustCompile(`"id":\d+,`)
	journeySet := func(out string) []string {
		lines := strings.Split(strings.TrimSuffix(ids.ReplaceAllString(out, ""), "\n"), "\n")
		slices.Sort(lines)
		return lines
	}
	packets := func(out string) int { return strings.Count(out, `"type":"packet"`) }
	whole, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, expr := range []string{"tcp", "icmp", "udp port 4789"} {
		want := journeySet(run("2", "--journeys", "--json", "-r", file, expr))
		passing := packets(run("2", "--json", "-r", file, expr))
		if len(want) < 50 {
			t.Fatalf("%s: %d journeys: the test shows little", expr, len(want))
		}
		for _, procs := range []string{"1", "2"} {
			part := filepath.Join(dir, "part"+procs+".pcapng")
			run(procs, "-r", file, "-w", part, expr)
			if got := journeySet(run("2", "--journeys", "--json", "-r", part)); !slices.Equal(got, want) {
				t.Errorf("%s, GOMAXPROCS=%s: the file replays to %d journeys, the recording with the filter to %d, or they differ", expr, procs, len(got), len(want))
			}
			if n := packets(run("2", "--json", "-r", part, expr)); n != passing {
				t.Errorf("%s, GOMAXPROCS=%s: the file holds %d frames the filter passes, the recording %d", expr, procs, n, passing)
			}
			if st, err := os.Stat(part); err != nil || st.Size() >= whole.Size() {
				t.Errorf("%s, GOMAXPROCS=%s: the file is no smaller than the recording (%v)", expr, procs, err)
			}
			// tshark reads it without a warning, and as many packets.
			if n, all := tsharkPackets(t, part), packets(run("2", "--json", "-r", part)); n != all {
				t.Errorf("%s, GOMAXPROCS=%s: tshark reads %d packets, hooktrace %d", expr, procs, n, all)
			}
		}
	}
}

// TestRulesets: --rulesets prints the ruleset snapshots a recording
// holds, as text and as records, and nothing else; a capture without any
// says so in one line; it does not go with a filter.
func TestRulesets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "incident.pcapng")
	writeGenerated(t, file, func(w io.Writer) error { return synth.WriteIncident(w, 300, 1) })
	out := runQuietly(t, "2", "-r", file, "--rulesets")
	if !strings.HasPrefix(out, "# ruleset of namespace hxbench, recorded ") || !strings.Contains(out, "\ttype filter hook input priority 0; policy accept;\n") {
		t.Errorf("text:\n%s", out)
	}
	var rec struct{ Type, Netns, Text string }
	js := runQuietly(t, "2", "-r", file, "--rulesets", "--json")
	if err := json.Unmarshal([]byte(js), &rec); err != nil || strings.Count(js, "\n") != 1 {
		t.Fatalf("json %q: %v", js, err)
	}
	if rec.Type != "ruleset" || rec.Netns != "hxbench" || !strings.Contains(out, rec.Text) {
		t.Errorf("json record %+v, text output:\n%s", rec, out)
	}
	out, errs := runOnCores(t, "2", "-r", filepath.Join("..", "..", "fixtures", "vxlan.pcap"), "--rulesets")
	if out != "" || errs != "hooktrace: warning: no ruleset snapshot: only recordings of hooktrace --trace -w hold them\n" {
		t.Errorf("a plain capture: stdout %q, stderr %q", out, errs)
	}
	code, _, errs := runHooktrace("-r", file, "--rulesets", "tcp")
	if code != exitUsage || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "--rulesets") {
		t.Errorf("with a filter: exit %d, %q", code, errs)
	}
}

// bigDatagram is a 1,028-byte IPv4 UDP datagram, 10.0.0.1:41305 to
// 10.0.0.2:5001 (checksums zero).
func bigDatagram() []byte {
	dgram := make([]byte, 1028)
	dgram[0], dgram[8], dgram[9] = 0x45, 64, 17 // IPv4, TTL, UDP
	binary.BigEndian.PutUint16(dgram[2:], uint16(len(dgram)))
	copy(dgram[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint16(dgram[20:], 41305)
	binary.BigEndian.PutUint16(dgram[22:], 5001)
	binary.BigEndian.PutUint16(dgram[24:], uint16(len(dgram)-20))
	return dgram
}

// TestReplayFilterNFLOGSnaplen: an NFLOG message that copied only the
// start of its packet (`log snaplen 48`) is filtered by the packet's
// length on the wire, as its IP header gives it, as tcpdump filters a
// frame cut by its snap length: a 1,028-byte datagram is "greater 200",
// though 48 bytes of it came.
func TestReplayFilterNFLOGSnaplen(t *testing.T) {
	dgram := bigDatagram()
	// nfgenmsg (AF_INET, version 0, group 5), then attributes: a 2-byte
	// length and type in host order (little-endian), padded to 4 bytes.
	msg := []byte{2, 0, 0, 5}
	attr := func(typ uint16, v []byte) {
		msg = binary.LittleEndian.AppendUint16(msg, uint16(4+len(v)))
		msg = binary.LittleEndian.AppendUint16(msg, typ)
		msg = append(msg, v...)
		for len(msg)%4 != 0 {
			msg = append(msg, 0)
		}
	}
	attr(1, []byte{0x08, 0x00, 1, 0}) // NFULA_PACKET_HDR: IPv4, input
	attr(10, []byte("snap\x00"))      // NFULA_PREFIX
	attr(9, dgram[:48])               // NFULA_PAYLOAD, cut at 48 bytes
	file := filepath.Join(t.TempDir(), "nflog-snaplen.pcap")
	out, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(out)
	err = w.WriteFileHeader(65535, linkTypeNFLOG)
	if err == nil {
		err = w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1767355200, 0), CaptureLength: len(msg), Length: len(msg)}, msg)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	for expr, want := range map[string]int{"greater 200": 1, "less 100": 0, "udp port 5001": 1} {
		got := strings.Count(runQuietly(t, "2", "--json", "-r", file, expr), `"type":"packet"`)
		if got != want {
			t.Errorf("filter %q keeps %d packets, want %d", expr, got, want)
		}
	}
}

// TestReplayFilterTraceOnly: a recording whose packet only trace events
// showed (a 1,028-byte datagram, its headers in the first event's
// snapshot) is judged, trace lines and journey alike, by the packet on
// the wire: "greater 200" shows both, "less 100" neither. A filter that
// cannot judge raw IP ("ether ...") shows no trace line, and says so in
// one warning.
func TestReplayFilterTraceOnly(t *testing.T) {
	dgram := bigDatagram()
	file := filepath.Join(t.TempDir(), "trace-only.pcapng")
	writeGenerated(t, file, func(w io.Writer) error {
		pw, err := capture.NewPcapngWriter(w, "hooktrace test")
		if err != nil {
			return err
		}
		iw := ui.NewIncidentWriter(pw, func(string, uint32) string { return "" })
		at := time.Unix(1767355200, 0)
		for i, ev := range []decode.TraceEvent{
			{Trace: nflog.Trace{Netns: "hxt", Time: at, ID: 7, Family: 1, Table: "filter", Chain: "input", Handle: 4,
				Type: nflog.TraceRule, Verdict: nflog.VerdictContinue, HasVerdict: true, Network: dgram[:20], Transport: dgram[20:40]},
				Hook: "input", HasPriority: true, Rule: "counter"},
			{Trace: nflog.Trace{Netns: "hxt", Time: at, ID: 7, Family: 1, Table: "filter", Chain: "input",
				Type: nflog.TracePolicy, Policy: nflog.VerdictAccept, HasPolicy: true}, Hook: "input", HasPriority: true},
		} {
			ev.Time = ev.Time.Add(time.Duration(i) * time.Microsecond)
			if err := iw.Trace(&ev); err != nil {
				return err
			}
		}
		return nil
	})
	for expr, want := range map[string]int{"greater 200": 1, "less 100": 0, "udp port 5001": 1} {
		out := runQuietly(t, "2", "--json", "-r", file, expr)
		if n, j := strings.Count(out, `"type":"trace"`), strings.Count(out, `"type":"journey"`); n != 2*want || j != want {
			t.Errorf("filter %q: %d trace lines and %d journeys, want %d and %d:\n%s", expr, n, j, 2*want, want, out)
		}
	}
	out, stderr := runOnCores(t, "2", "--json", "-r", file, "ether host 02:00:00:00:00:01 or udp")
	if strings.Contains(out, `"type":"trace"`) || strings.Count(stderr, "trace events are not printed") != 1 || strings.Count(stderr, "\n") != 1 {
		t.Errorf("a filter for Ethernet: trace lines %v, stderr %q", strings.Contains(out, `"type":"trace"`), stderr)
	}
}
