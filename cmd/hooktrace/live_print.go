package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/nflog"
	"github.com/hooktrace/hooktrace/ui"
)

// printOutput is the output of a live capture as lines: text or NDJSON
// on stdout, pcapng with -w. With --trace, the journeys' goroutine takes
// every packet, trace event and kernel drop, and each journey is printed
// as it closes (`hooktrace explain` prints only the matching ones).
type printOutput struct {
	out       *output
	traces    ui.TracePrinter // nil without --trace
	paths     *journeys       // nil without --trace
	explain   *explainRun
	count     uint64
	stopFlush func()
	stderr    io.Writer
}

func newPrintOutput(o *options, run *liveRun, stdout io.Writer) (*printOutput, error) {
	out, err := openOutput(o, stdout)
	if err != nil {
		return nil, err
	}
	p := &printOutput{out: out, explain: o.explain, count: o.count, stderr: run.stderr}
	p.stopFlush = out.flushEvery(200 * time.Millisecond)
	if !o.trace {
		return p, nil
	}
	p.paths = startJourneys(run.journeyOptions(), run.traceLosses, func(j *decode.Journey) {
		switch {
		case o.explain != nil:
			o.explain.take(j, func(j *decode.Journey) { out.paths.Journey(j) })
		case out.paths != nil:
			out.paths.Journey(j)
		}
	})
	out.tap = p.paths
	recordIncident(p.paths, out.pcapng, run.refs, run.live.InterfaceName, run.warn) // with -w: trace events, drops, rulesets
	if o.explain != nil && o.explain.save != nil {
		o.explain.save.start(p.paths, run.refs, run.live.InterfaceName) // explain --save: the journeys keep their records
	}
	p.traces = traceTee{print: out.traces, j: p.paths}
	return p, nil
}

// Trace prints a trace event and gives it to the journeys.
func (p *printOutput) Trace(ev *decode.TraceEvent) error {
	if p.traces == nil {
		return nil
	}
	return p.traces.Trace(ev)
}

func (p *printOutput) drop(d nflog.KernelDrop) {
	if p.paths != nil {
		p.paths.drop(d)
	}
}

// run prints the capture's frames until it ends or -c is reached; live
// frames passed the kernel's filter already.
func (p *printOutput) run(live *capture.Live, stop func()) error {
	return writeFrames(context.Background(), live, p.out, p.count, p.stderr)
}

// finish prints the journeys still open, then the statistics, and closes
// the output; the first error wins.
func (p *printOutput) finish(stats []capture.InterfaceStats, traceStats []ui.TraceCounts) error {
	if p.paths != nil {
		p.paths.close() // the journeys still open are printed
		if p.explain != nil {
			p.explain.finish(func(j *decode.Journey) { p.out.paths.Journey(j) })
		}
		if st, shed := p.paths.stats(); p.explain == nil {
			fmt.Fprintf(p.stderr, "%d journeys (%d closed early to bound memory), %d records not joined to a journey, %d shed\n", st.Closed, st.Evicted, st.Unmatched, shed)
		}
	}
	p.stopFlush() // what follows is written once, in order
	// Every packet is written before the statistics that close the file.
	err := p.out.finish()
	if p.out.pcapng != nil {
		now := time.Now()
		for _, s := range stats {
			if werr := p.out.pcapng.WriteInterfaceStats(s.Netns, s.Iface, s.LinkType, s.Received, s.KernelDrops, s.HooktraceDrops, now); werr != nil && err == nil {
				err = fmt.Errorf("write pcapng statistics: %w", werr)
			}
		}
	}
	if p.explain == nil { // explain prints journeys only
		if serr := p.out.stats(stats, traceStats); serr != nil && err == nil {
			err = serr
		}
	}
	if cerr := p.out.close(); err == nil {
		err = cerr
	}
	return err
}

// abort closes the output on a failed start.
func (p *printOutput) abort() {
	if p.paths != nil {
		p.paths.close()
	}
	p.stopFlush()
	p.out.close()
}
