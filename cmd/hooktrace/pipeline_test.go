package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/fixtures/synth"
	"github.com/hooktrace/hooktrace/ui"
)

// writeGenerated writes what write generates (a synthetic capture) to a
// new file at path.
func writeGenerated(t testing.TB, path string, write func(io.Writer) error) {
	t.Helper()
	var b bytes.Buffer
	if err := write(&b); err != nil {
		t.Fatalf("generate %s: %v", path, err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPipelineMatchesSequentialPrinting replays a capture of many chunks
// through the parallel pipeline and compares it with printing each packet
// in turn.
func TestPipelineMatchesSequentialPrinting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "large.pcap")
	writeGenerated(t, path, func(w io.Writer) error { return synth.WriteLarge(w, 5000, 7) })
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			comparePipeline(t, path)
		})
	}
}

func comparePipeline(t *testing.T, path string) {
	for _, mode := range []string{"--json", "--print"} {
		code, got, errOut := runHooktrace(mode, "-r", path)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", mode, code, errOut)
		}
		if want := printSequentially(t, path, mode); got != want {
			t.Errorf("%s: pipeline output differs from sequential printing (%d vs %d bytes)", mode, len(got), len(want))
		}
		code, got, _ = runHooktrace(mode, "-c", "777", "-r", path, "udp")
		if n := strings.Count(got, "\n"); code != 0 || n != 777 {
			t.Errorf("%s -c 777 udp: exit %d, %d lines", mode, code, n)
		}
	}
}

func printSequentially(t *testing.T, path, mode string) string {
	t.Helper()
	src, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var buf bytes.Buffer
	var p ui.PacketPrinter = ui.NewText(&buf, time.Local)
	if mode == "--json" {
		p = ui.NewNDJSON(&buf)
	}
	dec := decode.NewDecoder()
	for n := uint64(1); ; n++ {
		f, err := src.Next()
		if errors.Is(err, io.EOF) {
			return buf.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Packet(n, dec.Decode(f)); err != nil {
			t.Fatal(err)
		}
	}
}
