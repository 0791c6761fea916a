package decode

import (
	"bufio"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hooktrace/hooktrace/nflog"
)

// recordedTraceMessages reads the netlink trace messages the kernel sent
// in nflog's recordings (nflog/testdata/traces, made by its
// TestRecordTraces).
func recordedTraceMessages(b *testing.B) [][]byte {
	paths, err := filepath.Glob(filepath.Join("..", "nflog", "testdata", "traces", "*.hex"))
	if err != nil || len(paths) == 0 {
		b.Fatalf("no recorded trace messages: %v", err)
	}
	var msgs [][]byte
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
				m, err := hex.DecodeString(line)
				if err != nil {
					b.Fatalf("%s: %v", path, err)
				}
				msgs = append(msgs, m)
			}
		}
		f.Close()
	}
	return msgs
}

// BenchmarkTraceEvents turns recorded kernel messages into events as a
// live trace does: parse the netlink message, then resolve it (hook from
// the base chain, header snapshot decoded). It reports events per second.
func BenchmarkTraceEvents(b *testing.B) {
	msgs := recordedTraceMessages(b)
	r := NewTraceResolver()
	ifname := func(uint32) string { return "eth0" }
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		t, err := nflog.ParseTrace(msgs[i%len(msgs)])
		if err != nil {
			b.Fatal(err)
		}
		ev := r.Resolve(t, nil, ifname)
		if ev.Table == "" {
			b.Fatal("event without a table")
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
