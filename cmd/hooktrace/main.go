// Command hooktrace shows where a packet went and why it stopped: it reads
// captures, decodes every encapsulation layer and prints each packet as
// text or NDJSON.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the input could not be read to its end
	exitUsage = 2 // bad flags or filter expression
)

// options is what the command line asked for.
type options struct {
	readFile string
	count    uint64
	json     bool
	print    bool
	filter   string
}

// usageError is a mistake on the command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args, does the work and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "hooktrace: %v\n", err)
		return exitUsage
	}
	err = replay(ctx, opts, stdout, stderr)
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "hooktrace: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "hooktrace: %v\n", err)
		return exitError
	}
}

func parseArgs(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("hooktrace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.readFile, "r", "", "read packets from `FILE` (pcap or pcapng, optionally gzip-compressed; - for standard input)")
	fs.Uint64Var(&o.count, "c", 0, "stop after `N` packets have been printed")
	fs.Bool("n", true, "do not resolve addresses (always the case; accepted for tcpdump habits)")
	fs.BoolVar(&o.json, "json", false, "print NDJSON records, one per line (schema in README.md)")
	fs.BoolVar(&o.print, "print", false, "print one text line per packet (the default when stdout is not a terminal)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: hooktrace -r FILE [--json|--print] [-c N] [FILTER EXPRESSION]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.filter = strings.Join(fs.Args(), " ")
	if o.json && o.print {
		return nil, errors.New("--json and --print exclude each other")
	}
	if o.readFile == "" {
		return nil, errors.New("nothing to read: give a capture file with -r FILE (live capture comes with a later release)")
	}
	return &o, nil
}
