package main

import (
	"context"
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
