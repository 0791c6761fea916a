package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// netnsRefs turns captured namespaces into the references nflog uses.
func netnsRefs(nss []capture.Namespace) ([]nflog.NetnsRef, error) {
	self, err := capture.NamespaceSpec("")
	if err != nil {
		return nil, err
	}
	refs := make([]nflog.NetnsRef, 0, len(nss))
	for _, ns := range nss {
		r := nflog.NetnsRef{Name: ns.Name, Path: ns.Path}
		if len(self) == 1 && ns.Inode == self[0].Inode {
			r.Path = ""
		}
		refs = append(refs, r)
	}
	return refs, nil
}

// traceScript translates the filter into the script of hooktrace's table,
// whose log rules send to logGroup.
func traceScript(o *options, logGroup uint16) (string, error) {
	matches, err := nflog.TranslateFilter(o.filter)
	if err != nil {
		return "", &usageError{err: fmt.Errorf("%w (use a simpler filter, or --trace-all)", err)}
	}
	return nflog.TraceScript(matches, o.traceRate, int(logGroup)), nil
}

// dryRun prints, for each namespace, the rules --trace would add.
func dryRun(o *options, stdout io.Writer) error {
	script, err := traceScript(o, nflog.DefaultLogGroup)
	if err != nil {
		return err
	}
	nss, err := capture.NamespaceSpec(o.netns)
	if err != nil {
		return &usageError{err: err}
	}
	for _, ns := range nss {
		name := ns.Name
		if name == "" {
			name = "(hooktrace's own)"
		}
		fmt.Fprintf(stdout, "# network namespace %s: nft -f - <<'EOF'\n%s# EOF\n", name, script)
	}
	if len(nss) > 0 {
		fmt.Fprintf(stdout, "# NFLOG group %d is used when it is free in every namespace, else the next free one.\n", nflog.DefaultLogGroup)
	}
	return nil
}

// installTracing adds hooktrace's table in every namespace; the returned
// rules are removed by the caller on every exit path.
func installTracing(o *options, nss []capture.Namespace, logGroup uint16) (*nflog.TraceRules, error) {
	script, err := traceScript(o, logGroup)
	if err != nil {
		return nil, err
	}
	refs, err := netnsRefs(nss)
	if err != nil {
		return nil, err
	}
	return nflog.InstallTraceRules(refs, script)
}

// cleanup is `hooktrace cleanup`: it removes what a killed hooktrace left,
// in every namespace on the machine (or those --netns names).
func cleanup(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hooktrace cleanup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	spec := fs.String("netns", "all", "namespaces to clean")
	guard := fs.Bool("guard", false, "wait until standard input closes (the traced hooktrace ended, however it ended), then clean")
	if err := fs.Parse(args); err != nil {
		return &usageError{err: fmt.Errorf("cleanup: %w", err)}
	}
	owner := 0
	if *guard {
		owner = os.Getppid() // the hooktrace this guard watches
		io.Copy(io.Discard, os.Stdin)
		stdout = io.Discard
	}
	nss, err := capture.NamespaceSpec(*spec)
	if err != nil {
		return &usageError{err: err}
	}
	refs, err := netnsRefs(nss)
	if err != nil {
		return err
	}
	restored, berr := restoreBackends(nss, hasAll(*spec), owner, stdout)
	removed, err := nflog.Cleanup(refs)
	probes, perr := nflog.CleanupDropProbe() // tracefs instances of dead runs
	for _, p := range probes {
		fmt.Fprintf(stdout, "removed %s\n", p)
	}
	restored += len(probes)
	err = oneLine(errors.Join(err, berr, perr))
	for _, r := range removed {
		name := r.Name
		if name == "" {
			name = "(this namespace)"
		}
		fmt.Fprintf(stdout, "removed hooktrace's table %s in network namespace %s\n", nflog.TraceTable, name)
	}
	if len(removed) == 0 && restored == 0 && err == nil {
		fmt.Fprintln(stdout, "nothing to clean: no hooktrace table or nf_log backend in any network namespace")
	}
	if err != nil {
		return fmt.Errorf("cleanup incomplete: %w", err)
	}
	return nil
}

// warnLeftovers tells about hooktrace tables and nf_log backends a killed
// run left behind. Without nft there is no table to look for.
func warnLeftovers(nss []capture.Namespace, stderr io.Writer) {
	warnBackendLeftovers(nss, stderr)
	refs, err := netnsRefs(nss)
	if err != nil {
		return
	}
	for _, r := range refs {
		if has, err := nflog.HasTraceTable(r); err == nil && has {
			name := r.Name
			if name == "" {
				name = "(this namespace)"
			}
			fmt.Fprintf(stderr, "hooktrace: warning: network namespace %s still holds hooktrace's table %s from a run that was killed; remove it with `hooktrace cleanup`\n", name, nflog.TraceTable)
		}
	}
}

// startGuard starts `hooktrace cleanup --guard` for the traced namespaces:
// a separate process that holds a pipe from this one and, when this
// process ends in any way (a panic in any goroutine, SIGKILL), removes the
// tracing table if it is still there. It runs in its own process group so
// that a Ctrl-C meant for hooktrace does not stop it first. The returned
// function ends it once hooktrace has removed the table itself.
func startGuard(spec string) (func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start cleanup guard: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start cleanup guard: %w", err)
	}
	cmd := exec.Command(self, "cleanup", "--guard", "--netns", spec)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start cleanup guard: %w", err)
	}
	r.Close()
	return func() {
		w.Close() // the guard finds nothing left to clean, and exits
		cmd.Wait()
	}, nil
}
