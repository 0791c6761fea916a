package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/capture/filter"
	"github.com/hooktrace/hooktrace/decode"
)

// exitNothing is `hooktrace explain`'s exit code when no packet matched
// before the timeout.
const exitNothing = 3

// explainRun is the state of `hooktrace explain`: which journeys count,
// how many are wanted, and what they showed.
type explainRun struct {
	match *filter.Set
	want  int
	stop  context.CancelFunc // ends the capture once enough were shown
	mu    sync.Mutex
	shown []*decode.Journey
	// fallback is the first matching journey only trace events showed.
	fallback *decode.Journey
	dec      *decode.Decoder // used by the journeys' goroutine only
	save     *journeySaver   // --save: the journeys shown are written to a file
	filter   string
	where    string // the namespaces, for the waiting line
}

// ready says, once tracing and capture are in place, what explain waits
// for: a packet sent after this line is seen.
func (e *explainRun) ready(stderr io.Writer) {
	fmt.Fprintf(stderr, "hooktrace: waiting for the first packet matching %q in %s (tracing rules added; Ctrl-C stops and removes them)\n", e.filter, e.where)
}

// explain is `hooktrace explain [--netns NS] [--timeout D] [--count N]
// [--json] EXPR`: trace the packets EXPR selects, print the first
// journeys, and say by the exit code how they ended.
func explain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hooktrace explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.netns, "netns", "", "trace in these network namespaces (as for capture: names, paths, pid:N, all; comma-separated)")
	timeout := fs.Duration("timeout", 10*time.Second, "give up when no packet matched for this long")
	count := fs.Int("count", 1, "explain the first `N` packets that match")
	fs.BoolVar(&o.json, "json", false, "print journey records (NDJSON) instead of timelines")
	fs.IntVar(&o.traceRate, "trace-rate", 1000, "packets per second each tracing rule may select; 0 for no limit")
	save := fs.String("save", "", "write the journey to `FILE` (pcapng with its packets, trace events and kernel drops; hooktrace -r FILE replays it) and a Markdown summary for an issue beside it (FILE with .md for .pcapng)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: hooktrace explain [--netns NS] [--timeout D] [--count N] [--json] [--save FILE] FILTER EXPRESSION\n\n"+
			"Traces the packets the expression selects, prints the journey of the first\n"+
			"(where it went, which rules judged it, how it ended and what to change), and\n"+
			"exits 0 if it was delivered or forwarded, 1 if dropped, rejected or lost\n"+
			"from sight, 3 if nothing matched before the timeout, 2 for usage or privileges.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	o.filter = strings.Join(fs.Args(), " ")
	if o.filter == "" {
		fmt.Fprintln(stderr, "hooktrace: explain needs a filter expression saying which packet to follow, e.g. 'tcp dport 2222'")
		return exitUsage
	}
	if *count < 1 {
		fmt.Fprintf(stderr, "hooktrace: --count %d: want at least 1\n", *count)
		return exitUsage
	}
	match, err := filter.NewSet(o.filter, 262144)
	if err != nil {
		// nft's words for the same thing ("tcp dport 2222") are welcome too.
		alt, ok := pcapFromNft(o.filter)
		var aerr error
		if ok {
			match, aerr = filter.NewSet(alt, 262144)
		}
		if !ok || aerr != nil {
			fmt.Fprintf(stderr, "hooktrace: %v\n", err)
			return exitUsage
		}
		o.filter = alt
	}
	o.trace, o.duration, o.snaplen = true, *timeout, 262144
	o.ringBytes, o.blockTimeout = 4<<20, 10*time.Millisecond
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o.explain = &explainRun{match: match, want: *count, stop: cancel, filter: o.filter}
	o.explain.where = "this network namespace"
	if o.netns != "" {
		o.explain.where = o.netns
	}
	if *save != "" {
		if o.explain.save, err = newJourneySaver(*save); err != nil {
			fmt.Fprintf(stderr, "hooktrace: %v\n", err)
			return exitUsage
		}
	}
	err = captureLive(ctx, &o, stdout, stderr)
	if s := o.explain.save; s != nil {
		// Also when the run failed: a journey is kept whole, or the file
		// is removed.
		msg, serr := s.close()
		if msg != "" {
			fmt.Fprintf(stderr, "hooktrace: %s\n", msg)
		}
		if err == nil {
			err = serr
		}
	}
	if err != nil {
		return report(err, stderr)
	}
	return o.explain.exitCode(stderr, *timeout)
}

// take is the journeys' emit function in explain mode: it keeps the
// journeys whose packet matches the expression, prints them, and stops
// the run when enough were shown.
func (e *explainRun) take(j *decode.Journey, print func(*decode.Journey)) {
	if len(j.Frame.Data) == 0 {
		return
	}
	if !e.matches(j) {
		return
	}
	if !sighted(j) {
		// Only trace events' header snapshots showed this packet: a
		// tunnel packet whose inner packet they cannot show (ARP inside
		// VXLAN, say). Explained only if nothing better comes.
		e.mu.Lock()
		if e.fallback == nil {
			e.fallback = j
		}
		e.mu.Unlock()
		return
	}
	e.mu.Lock()
	if len(e.shown) >= e.want {
		e.mu.Unlock()
		return
	}
	e.shown = append(e.shown, j)
	done := len(e.shown) == e.want
	e.mu.Unlock()
	if e.save != nil {
		e.save.keep(j)
	}
	print(j)
	if done {
		e.stop()
	}
}

// matches says whether the expression selects the journey's packet: the
// innermost packet (a journey is the inner packet's, and its tunnel
// packet is a step of it), as a raw IP packet.
func (e *explainRun) matches(j *decode.Journey) bool {
	if e.dec == nil {
		e.dec = decode.NewDecoder()
	}
	f := j.Frame
	if ip, _ := innermostIP(e.dec, f); ip != nil {
		ok, err := e.match.Match(int(capture.LinkTypeRaw), ip, len(ip))
		return err == nil && ok
	}
	ok, err := e.match.Match(int(f.LinkType), f.Data, f.Len)
	return err == nil && ok
}

// innermostIP returns the innermost IP packet a frame carries (in its
// tunnels, outside an ICMP error's quote), and how many tunnels it is in;
// nil when it carries none.
func innermostIP(dec *decode.Decoder, f capture.Frame) (ip []byte, depth int) {
	p := dec.Decode(f)
	for i := len(p.Layers) - 1; i >= 0; i-- {
		l := &p.Layers[i]
		if l.Quoted || (l.Proto != decode.ProtoIPv4 && l.Proto != decode.ProtoIPv6) || l.Err != nil {
			continue
		}
		if off, _ := l.Span(f.Data); off < len(f.Data) {
			return f.Data[off:], l.Depth
		}
		return nil, 0
	}
	return nil, 0
}

// sighted says whether a device capture or an NFLOG copy showed the
// journey's packet (not only trace events' header snapshots).
func sighted(j *decode.Journey) bool {
	for _, s := range j.Steps {
		switch s.Kind {
		case decode.StepCapture, decode.StepHook, decode.StepNFLOG:
			return true
		}
	}
	return false
}

// finish prints the fallback journey when no better one was shown; call
// after the journeys closed.
func (e *explainRun) finish(print func(*decode.Journey)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.shown) == 0 && e.fallback != nil {
		e.shown = append(e.shown, e.fallback)
		if e.save != nil {
			e.save.keep(e.fallback)
		}
		print(e.fallback)
	}
}

// exitCode says how the journeys shown ended: 0 delivered, forwarded or
// sent; 1 dropped, rejected or unknown; exitNothing when none matched.
func (e *explainRun) exitCode(stderr io.Writer, timeout time.Duration) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.shown) == 0 {
		fmt.Fprintf(stderr, "hooktrace: no packet matching %q was seen in %v: none reached the traced namespaces (is the traffic sent, and does it cross them?)\n", e.filter, timeout)
		return exitNothing
	}
	code := exitOK
	for _, j := range e.shown {
		switch j.Outcome {
		case decode.OutcomeDelivered, decode.OutcomeForwarded, decode.OutcomeSent:
		default:
			code = exitError
		}
	}
	return code
}

// pcapFromNft rewrites the nft-style matches people type from habit
// ("tcp dport 2222", "ip saddr 10.0.0.1", "th dport 53") into tcpdump's
// words; ok is false when nothing was rewritten.
func pcapFromNft(expr string) (string, bool) {
	f := strings.Fields(expr)
	changed := false
	var out []string
	for i := 0; i < len(f); i++ {
		w := f[i]
		next := ""
		if i+1 < len(f) {
			next = f[i+1]
		}
		switch {
		case (w == "tcp" || w == "udp" || w == "sctp" || w == "th") && (next == "dport" || next == "sport"):
			dir := "dst"
			if next == "sport" {
				dir = "src"
			}
			if w != "th" {
				out = append(out, w)
			}
			out = append(out, dir, "port")
			i++
			changed = true
		case (w == "ip" || w == "ip6") && (next == "saddr" || next == "daddr"):
			dir := "dst"
			if next == "saddr" {
				dir = "src"
			}
			out = append(out, dir, "net")
			i++
			changed = true
		default:
			out = append(out, w)
		}
	}
	return strings.Join(out, " "), changed
}
