package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// holdMemory keeps the terminal UI's heap close to what it holds, until
// ctx ends. What the UI keeps (the packet list's rows and journey
// summaries) holds no pointers and costs the collector little to keep
// scanning, while building journeys makes garbage fast: left to the
// default (collect when the heap doubles), a list of a million packets
// would take twice its size. The soft memory limit follows the live heap
// with a margin of an eighth plus 16 MiB. GOMEMLIMIT, if set, wins.
func holdMemory(ctx context.Context) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live := int64(sample[0].Value.Uint64())
			debug.SetMemoryLimit(max(64<<20, live+live/8+16<<20))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// openSpool creates the file the terminal UI keeps the bytes of packets
// in when they cannot be read again from their capture file (a live
// capture, a compressed file, standard input), like Wireshark's temporary
// file: memory then holds only the list. The file is unlinked at once, so
// nothing is left behind however hooktrace ends; closing it frees the
// space. Without one (no writable temporary directory), packets are kept
// in memory and warn says why.
func openSpool(warn func(error)) *os.File {
	f, err := os.CreateTemp("", "hooktrace-ui-*.spool")
	if err != nil {
		warn(fmt.Errorf("packets are kept in memory: create a spool file: %w", err))
		return nil
	}
	if err := os.Remove(f.Name()); err != nil {
		warn(fmt.Errorf("remove the spool file %s: %w", f.Name(), err))
	}
	return f
}
