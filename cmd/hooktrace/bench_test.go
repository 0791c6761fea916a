package main

import (
	"context"
	"io"
	"os"
	"testing"
)

// BenchmarkReplayNDJSON replays $HOOKTRACE_BENCH_PCAP (make one with
// `go run ./fixtures/gen -large 200000 -o /tmp/bench.pcap`) to NDJSON and
// reports packets per second.
func BenchmarkReplayNDJSON(b *testing.B) { benchReplay(b, "--json") }

// BenchmarkReplayText does the same for the text printer.
func BenchmarkReplayText(b *testing.B) { benchReplay(b, "--print") }

func benchReplay(b *testing.B, mode string) {
	path := os.Getenv("HOOKTRACE_BENCH_PCAP")
	if path == "" {
		b.Skip("set HOOKTRACE_BENCH_PCAP to a capture file")
	}
	for b.Loop() {
		if code := run(context.Background(), []string{mode, "-r", path}, io.Discard, io.Discard); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}
