package nflog

import (
	"bufio"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// traceRecording is one file of testdata/traces: the trace messages the
// kernel sent for one packet, and what `nft -a monitor trace` printed.
type traceRecording struct {
	name     string
	msgs     [][]byte
	nftLines []string
}

// loadTraceRecordings reads testdata/traces/*.hex (written by
// TestRecordTraces).
func loadTraceRecordings(t testing.TB) []traceRecording {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "traces", "*.hex"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no recordings in testdata/traces: %v", err)
	}
	var recs []traceRecording
	for _, path := range paths {
		recs = append(recs, readTraceRecording(t, path))
	}
	return recs
}

func readTraceRecording(t testing.TB, path string) traceRecording {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec := traceRecording{name: strings.TrimSuffix(filepath.Base(path), ".hex")}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# nft| "):
			rec.nftLines = append(rec.nftLines, strings.TrimPrefix(line, "# nft| "))
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			b, err := hex.DecodeString(line)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			rec.msgs = append(rec.msgs, b)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rec
}

func (rec traceRecording) parse(t *testing.T) []Trace {
	t.Helper()
	var traces []Trace
	for i, m := range rec.msgs {
		tr, err := ParseTrace(m)
		if err != nil {
			t.Fatalf("%s message %d: %v", rec.name, i+1, err)
		}
		traces = append(traces, tr)
	}
	return traces
}

// TestParseRecordedTraces parses real kernel messages and checks that
// they say what nft printed for them: id, family, table, chain, handle
// and verdict, event by event.
func TestParseRecordedTraces(t *testing.T) {
	for _, rec := range loadTraceRecordings(t) {
		t.Run(rec.name, func(t *testing.T) {
			traces := rec.parse(t)
			compareTraceSteps(t, traceSteps(traces), traceNftSteps(t, rec.nftLines))
			checkRecordedPacket(t, traces)
		})
	}
}

// checkRecordedPacket checks what nft does not print in a trace line:
// headers, interface and protocol, conntrack state.
func checkRecordedPacket(t *testing.T, traces []Trace) {
	t.Helper()
	for i, tr := range traces {
		if tr.Family != 1 || tr.NFProto != 2 {
			t.Errorf("event %d: family %s, nfproto %d; want inet, 2 (ipv4)", i+1, FamilyName(tr.Family), tr.NFProto)
		}
		if tr.Network == nil {
			continue
		}
		if tr.IIF == 0 || tr.IIFType != 1 || len(tr.LL) != 14 || len(tr.Network) != 20 || len(tr.Transport) == 0 {
			t.Errorf("event %d: headers and interface: %+v", i+1, tr)
		}
		// Conntrack (priority -200) has seen the packet by the input hook.
		wantCT := tr.Chain == "in"
		if tr.HasCT != wantCT || (wantCT && (CTStateString(tr.CTState) != "new" || tr.CTDirection != 0 || tr.CTID == 0)) {
			t.Errorf("event %d in %s: conntrack %v state %q dir %d id %#x", i+1, tr.Chain, tr.HasCT, CTStateString(tr.CTState), tr.CTDirection, tr.CTID)
		}
	}
}

// TestParseRecordedUDP checks the recording with a mark, a jump to a
// regular chain and the ends of both chains.
func TestParseRecordedUDP(t *testing.T) {
	rec := readTraceRecording(t, filepath.Join("testdata", "traces", "udp-mark-jump-return.hex"))
	var got []string
	for _, tr := range rec.parse(t) {
		v, _ := tr.Outcome()
		s := tr.Chain + " " + tr.Type.String() + " " + v.String()
		if tr.JumpTarget != "" {
			s += " " + tr.JumpTarget
		}
		if tr.Mark != 0 {
			s += " mark"
		}
		got = append(got, s)
	}
	want := []string{
		"pre rule continue",         // meta nftrace set 1
		"pre rule continue mark",    // meta mark set 0x2a
		"pre rule continue mark",    // end of pre
		"pre policy accept mark",    //
		"in rule continue mark",     // ct state new counter
		"in rule jump udpchk mark",  //
		"udpchk rule continue mark", // counter
		"udpchk rule continue mark", // end of udpchk: back to in
		"in rule continue mark",     // end of in
		"in policy accept mark",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func BenchmarkParseTrace(b *testing.B) {
	var msgs [][]byte
	size := 0
	for _, rec := range loadTraceRecordings(b) {
		msgs = append(msgs, rec.msgs...)
		for _, m := range rec.msgs {
			size += len(m)
		}
	}
	b.SetBytes(int64(size / len(msgs)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := ParseTrace(msgs[i%len(msgs)]); err != nil {
			b.Fatal(err)
		}
	}
}
