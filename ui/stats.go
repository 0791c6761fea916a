package ui

import (
	"fmt"
	"io"

	"github.com/hooktrace/hooktrace/capture"
)

// captureTotals adds up per-interface counters.
func captureTotals(stats []capture.InterfaceStats) (recv, kdrop, hdrop uint64) {
	for _, s := range stats {
		recv += s.Received
		kdrop += s.KernelDrops
		hdrop += s.HooktraceDrops
	}
	return
}

// Stats writes the final {"type":"stats",...} record of a live capture:
// totals, then one object per interface.
func (p *NDJSON) Stats(stats []capture.InterfaceStats) error {
	j := &p.j
	j.reset()
	j.open('{')
	recv, kdrop, hdrop := captureTotals(stats)
	j.Str("type", "stats")
	j.Uint("received", recv)
	j.Uint("kernel_drops", kdrop)
	j.Uint("hooktrace_drops", hdrop)
	j.BeginList("interfaces")
	for _, s := range stats {
		j.BeginObject()
		j.Str("netns", s.Netns)
		j.Str("iface", s.Iface)
		j.Uint("received", s.Received)
		j.Uint("kernel_drops", s.KernelDrops)
		j.Uint("hooktrace_drops", s.HooktraceDrops)
		j.EndObject()
	}
	j.EndList()
	j.close('}')
	j.b = append(j.b, '\n')
	_, err := p.w.Write(j.b)
	return err
}

// WriteStatsText writes the counters as tcpdump does at exit, followed by
// a line per interface when there are several.
func WriteStatsText(w io.Writer, stats []capture.InterfaceStats) {
	recv, kdrop, hdrop := captureTotals(stats)
	fmt.Fprintf(w, "%d packets captured\n%d packets dropped by kernel\n%d packets dropped by hooktrace\n", recv, kdrop, hdrop)
	if len(stats) < 2 {
		return
	}
	for _, s := range stats {
		name := s.Iface
		if s.Netns != "" {
			name = s.Netns + "/" + s.Iface
		}
		fmt.Fprintf(w, "  %-24s %d captured, %d dropped by kernel, %d dropped by hooktrace\n", name, s.Received, s.KernelDrops, s.HooktraceDrops)
	}
}
