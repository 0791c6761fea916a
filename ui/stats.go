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

// TraceCounts are the nf_tables trace events of one namespace.
type TraceCounts struct {
	Netns    string
	Received uint64 // events received
	// Lost counts the kernel's ENOBUFS reports: each means that at least
	// one event was dropped because the socket buffer was full.
	Lost uint64
	// Unread counts events hooktrace received too late to show: still
	// queued when it stopped, after draining for as long as it allows.
	Unread uint64
}

func traceTotals(traces []TraceCounts) (recv, lost, unread uint64) {
	for _, t := range traces {
		recv += t.Received
		lost += t.Lost
		unread += t.Unread
	}
	return
}

// Stats writes the final {"type":"stats",...} record of a live capture:
// totals, then one object per interface (NFLOG groups are interfaces
// named nflog:N), then, when tracing, one object per traced namespace.
func (p *NDJSON) Stats(stats []capture.InterfaceStats, traces []TraceCounts) error {
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
	if traces != nil {
		recv, lost, unread := traceTotals(traces)
		j.Uint("trace_events", recv)
		j.Uint("trace_enobufs", lost)
		j.Uint("trace_unread", unread)
		j.BeginList("traces")
		for _, t := range traces {
			j.BeginObject()
			j.Str("netns", t.Netns)
			j.Uint("events", t.Received)
			j.Uint("enobufs", t.Lost)
			j.Uint("unread", t.Unread)
			j.EndObject()
		}
		j.EndList()
	}
	j.close('}')
	j.b = append(j.b, '\n')
	_, err := p.w.Write(j.b)
	return err
}

// WriteStatsText writes the counters as tcpdump does at exit, followed by
// a line per interface when there are several, and the trace events
// (per namespace when there are several; traces nil: not tracing).
func WriteStatsText(w io.Writer, stats []capture.InterfaceStats, traces []TraceCounts) {
	writeCaptureText(w, stats)
	if traces == nil {
		return
	}
	recv, lost, unread := traceTotals(traces)
	fmt.Fprintf(w, "%d trace events received\n%d times the kernel reported trace events lost (ENOBUFS)\n", recv, lost)
	if unread > 0 {
		fmt.Fprintf(w, "%d trace events left unread at exit\n", unread)
	}
	if len(traces) < 2 {
		return
	}
	for _, t := range traces {
		fmt.Fprintf(w, "  %-24s %d trace events, %d ENOBUFS, %d unread\n", t.Netns, t.Received, t.Lost, t.Unread)
	}
}

func writeCaptureText(w io.Writer, stats []capture.InterfaceStats) {
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
