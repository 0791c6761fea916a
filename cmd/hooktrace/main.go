// Command hooktrace shows where a packet went and why it stopped: it
// captures live across interfaces and network namespaces or reads
// captures, decodes every encapsulation layer and prints each packet as
// text or NDJSON, or writes pcapng.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the input could not be read to its end
	exitUsage = 2 // bad flags, filter expression, privileges or names
)

// options is what the command line asked for.
type options struct {
	readFile     string          // the first -r file
	readFiles    []string        // every -r file: several are merged in time order
	timeShifts   []time.Duration // per -r file (--time-shift); nil: none
	speed        int             // --speed: replay in the terminal UI at N times real time; 0 as fast as possible
	writeFile    string
	ifaces       []string
	netns        string
	count        uint64
	duration     time.Duration
	json         bool
	print        bool
	journeys     bool // --journeys: print the journeys only
	rulesets     bool // --rulesets: print a recording's ruleset snapshots only
	filter       string
	snaplen      int
	ringBytes    int
	blockTimeout time.Duration
	promisc      bool
	readyFile    string
	trace        bool
	traceAll     bool
	traceRate    int
	dryRun       bool
	nflogGroups  []uint16    // NFLOG groups to listen to (--nflog, -i nflog:N)
	explain      *explainRun // `hooktrace explain`: only the matching journeys are printed
}

// usageError is a mistake on the command line, or a request that cannot
// be met as asked (a missing interface or privilege): exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

func main() {
	// SIGHUP comes when the terminal is lost: hooktrace stops cleanly then
	// too, removing what it added.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args, does the work and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "cleanup" {
		return report(cleanup(args[1:], stdout), stderr)
	}
	if len(args) > 0 && args[0] == "explain" {
		return explain(ctx, args[1:], stdout, stderr)
	}
	opts, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "hooktrace: %v\n", err)
		return exitUsage
	}
	switch {
	case opts.rulesets:
		err = printRulesets(ctx, opts, stdout, stderr)
	case opts.readFile != "" && wantTUI(opts, stdout):
		err = replayTUI(ctx, opts, stdout.(*os.File), stderr)
	case opts.readFile != "":
		err = replay(ctx, opts, stdout, stderr)
	case opts.dryRun:
		err = dryRun(opts, stdout)
	default:
		err = captureLive(ctx, opts, stdout, stderr)
	}
	return report(err, stderr)
}

// report prints an error in one line and returns the exit code for it.
func report(err error, stderr io.Writer) int {
	var ue *usageError
	var pe *capture.PrivilegeError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.As(err, &pe),
		errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES), // a privilege is missing
		errors.Is(err, exec.ErrNotFound): // a tool hooktrace runs (nft) is not installed
		fmt.Fprintf(stderr, "hooktrace: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "hooktrace: %v\n", err)
		return exitError
	}
}

// stringList is a flag that may be repeated.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func parseArgs(args []string, stderr io.Writer) (*options, error) {
	var o options
	var ifaces stringList
	fs := flag.NewFlagSet("hooktrace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var reads, shifts stringList
	fs.Var(&reads, "r", "read packets from `FILE` (pcap or pcapng, optionally gzip-compressed; - for standard input); repeat to merge several files in time order")
	fs.Var(&shifts, "time-shift", "with -r: add `FILE=OFFSET` to every time in FILE, e.g. b.pcapng=-1.5ms (a signed duration, or seconds as editcap -t takes them); repeatable")
	fs.IntVar(&o.speed, "speed", 0, "with -r in the terminal UI: play the file back at `N` times the speed it was captured (1, 2, 10; keys P, ., <, > pause, step and change it); 0, the default, loads it as fast as possible")
	fs.StringVar(&o.writeFile, "w", "", "write captured packets to `FILE` as pcapng (with --print, --json or --journeys, also print); with -r, a recording's hooktrace records too (a merge becomes one recording; with a filter, those of the journeys it selects)")
	fs.Var(&ifaces, "i", "capture on `IFACE`; repeat for several; any (the default) captures every interface")
	fs.StringVar(&o.netns, "netns", "", "capture in network namespace `NS`: a name under /run/netns, a path such as /proc/PID/ns/net, pid:N, or all; several separated by commas")
	fs.Uint64Var(&o.count, "c", 0, "stop after `N` packets")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (e.g. 30s)")
	fs.Bool("n", true, "do not resolve addresses (always the case; accepted for tcpdump habits)")
	fs.BoolVar(&o.json, "json", false, "print NDJSON records, one per line (schema in README.md)")
	fs.BoolVar(&o.print, "print", false, "print one text line per packet (the default when stdout is not a terminal)")
	fs.BoolVar(&o.journeys, "journeys", false, "print only each packet's journey (where it went, which rules judged it, how it ended), not its packets and trace events: as text, or journey records with --json; with --trace, or -r (for any capture, not only recordings)")
	fs.BoolVar(&o.rulesets, "rulesets", false, "with -r: print the ruleset snapshots a recording holds (each traced namespace's, as nft -a list ruleset gave it when --trace -w started), as text or ruleset records with --json; nothing else")
	fs.IntVar(&o.snaplen, "s", 262144, "keep at most `BYTES` of each packet")
	fs.IntVar(&o.ringBytes, "ring-size", 4<<20, "kernel ring `BYTES` per capture socket (two sockets per interface, one per direction)")
	fs.DurationVar(&o.blockTimeout, "block-timeout", 10*time.Millisecond, "how long the kernel may hold a partly filled ring block")
	fs.BoolVar(&o.promisc, "promisc", false, "put interfaces in promiscuous mode")
	fs.StringVar(&o.readyFile, "ready-file", "", "create `FILE` once capture has started (for scripts and tests)")
	fs.BoolVar(&o.trace, "trace", false, "trace the packets the filter selects through netfilter: adds tables inet and bridge hooktrace (removed at exit) in every namespace captured")
	fs.BoolVar(&o.traceAll, "trace-all", false, "with --trace and no filter: trace every packet (under the rate limit)")
	fs.IntVar(&o.traceRate, "trace-rate", nflog.DefaultTraceRate, "packets per second each tracing rule may mark; 0 for no limit")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the rules --trace would add, and change nothing")
	var groups stringList
	fs.Var(&groups, "nflog", "listen to NFLOG `GROUPS` (comma-separated; -i nflog:N is the same) in every namespace captured; without -i, nothing else is captured")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: hooktrace [-i IFACE]... [--netns NS] [--trace [--journeys]] [-w FILE] [--print|--json] [-c N] [FILTER EXPRESSION]\n"+
			"       hooktrace -r FILE [-r FILE]... [--time-shift FILE=OFFSET]... [-w FILE] [--print|--json|--journeys [--json]] [-c N] [FILTER EXPRESSION]\n"+
			"       hooktrace -r FILE [-r FILE]... --rulesets [--json]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := o.readFilesFrom(reads, shifts); err != nil {
		return nil, err
	}
	for _, i := range ifaces {
		if g, ok := strings.CutPrefix(i, "nflog:"); ok {
			groups = append(groups, g)
			continue
		}
		o.ifaces = append(o.ifaces, i)
	}
	for _, spec := range groups {
		gs, err := parseGroups(spec)
		if err != nil {
			return nil, err
		}
		o.nflogGroups = append(o.nflogGroups, gs...)
	}
	if len(o.nflogGroups) > 0 && o.readFile != "" {
		return nil, errors.New("--nflog listens live: it does not go with -r (a capture of tcpdump -i nflog:N replays with -r alone)")
	}
	o.filter = strings.Join(fs.Args(), " ")
	if o.json && o.print {
		return nil, errors.New("--json and --print exclude each other")
	}
	if o.readFile != "" && (len(o.ifaces) > 0 || o.netns != "") {
		return nil, errors.New("-r reads a file: it does not go with -i or --netns")
	}
	if o.traceAll {
		o.trace = true
	}
	if o.trace && o.readFile != "" {
		return nil, errors.New("--trace traces live packets: it does not go with -r")
	}
	if o.journeys && o.print {
		return nil, errors.New("--journeys and --print exclude each other: --journeys prints the journeys as text, or as records with --json")
	}
	if o.journeys && !o.trace && o.readFile == "" {
		return nil, errors.New("--journeys needs --trace (live journeys come from tracing) or -r FILE")
	}
	if o.trace && o.filter == "" && !o.traceAll {
		return nil, errors.New("--trace needs a filter expression to choose the packets to trace, or --trace-all to trace every packet")
	}
	if o.dryRun && !o.trace {
		return nil, errors.New("--dry-run shows what --trace would add: give --trace too")
	}
	if o.rulesets && (o.readFile == "" || o.print || o.journeys || o.writeFile != "" || o.filter != "" || o.count > 0 || o.speed > 0) {
		return nil, errors.New("--rulesets prints the ruleset snapshots of a recording: give -r FILE (and --json for records), without --print, --journeys, -w, -c, --speed or a filter")
	}
	if o.snaplen <= 0 {
		return nil, fmt.Errorf("-s %d: the snap length must be positive", o.snaplen)
	}
	switch {
	case o.speed < 0:
		return nil, fmt.Errorf("--speed %d: give 1 for real time, 2 or 10 for faster, 0 for as fast as possible", o.speed)
	case o.speed > 0 && (o.readFile == "" || o.print || o.json || o.journeys || o.writeFile != ""):
		return nil, errors.New("--speed plays a capture file back in the terminal UI: give -r FILE, without --print, --json, --journeys or -w")
	}
	return &o, nil
}
