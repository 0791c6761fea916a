package nflog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// rulesetError is a one-line error that still answers errors.Is for the
// cause it stands for.
type rulesetError struct {
	msg string
	err error
}

func (e *rulesetError) Error() string { return e.msg }
func (e *rulesetError) Unwrap() error { return e.err }

// errNftNoObject: nft found no such table or chain.
var errNftNoObject = errors.New("no such table or chain")

// commandOutput runs a program inside the network namespace at nsPath
// ("" for hooktrace's own) and returns its standard output. install says
// what a missing program costs, for the error. A failure is one line:
// the program's first error line, classified.
func commandOutput(nsPath, install, name string, args ...string) ([]byte, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, &rulesetError{fmt.Sprintf("%s command not found: %s", name, install), exec.ErrNotFound}
	}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := startInNamespace(nsPath, cmd); err != nil {
		return nil, err
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s gave no answer within %v: killed", name, strings.Join(args, " "), commandTimeout)
		}
		return nil, classifyCommandError(name, stderr.String(), err)
	}
	return stdout.Bytes(), nil
}

// commandTimeout bounds a listing command (nft, iptables-save): one that
// hangs must not hang hooktrace (the terminal UI lists rulesets on its
// own goroutine). Listing 20,000 rules takes about 1.5 s.
const commandTimeout = 15 * time.Second

// classifyCommandError turns what a failed nft or iptables-save printed
// into one line, and marks permission, support and missing-object
// failures so that errors.Is finds them.
func classifyCommandError(name, stderr string, err error) error {
	msg := firstErrorLine(stderr)
	if msg == "" {
		msg = err.Error()
	}
	switch {
	case strings.Contains(msg, "Operation not permitted"), strings.Contains(msg, "Permission denied"):
		return &rulesetError{fmt.Sprintf("permission denied: %s needs CAP_NET_ADMIN, run hooktrace as root (%s: %s)", name, name, msg), fs.ErrPermission}
	case strings.Contains(msg, "Protocol not supported"), strings.Contains(msg, "Address family not supported"):
		return &rulesetError{fmt.Sprintf("nf_tables is not supported by this kernel (%s: %s)", name, msg), errors.ErrUnsupported}
	case strings.Contains(msg, "No such file or directory"):
		return &rulesetError{fmt.Sprintf("%s: %s", name, msg), errNftNoObject}
	}
	return fmt.Errorf("%s: %s", name, msg)
}

// firstErrorLine picks the line that says what went wrong from a
// program's standard error: the first "Error:" line, else the first line.
func firstErrorLine(stderr string) string {
	var first string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "":
		case strings.Contains(l, "Error:"):
			return l
		case first == "":
			first = l
		}
	}
	return first
}

// startInNamespace starts cmd inside the network namespace at nsPath. A
// child inherits the network namespace of the thread that forks it, so
// the start happens on a locked thread that entered the namespace; the
// thread returns to its own namespace before it is unlocked, and if it
// cannot, it stays locked and Go retires it with its goroutine.
func startInNamespace(nsPath string, cmd *exec.Cmd) error {
	if nsPath == "" {
		return cmd.Start()
	}
	target, err := os.Open(nsPath)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() { errc <- startOnNamespaceThread(target, cmd) }()
	return <-errc
}

// startOnNamespaceThread runs on its own goroutine, which it locks to its
// thread.
func startOnNamespaceThread(target *os.File, cmd *exec.Cmd) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open this thread's network namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		if errors.Is(err, unix.EPERM) {
			return &rulesetError{fmt.Sprintf("enter network namespace %s: %v: hooktrace needs CAP_SYS_ADMIN, run it as root", target.Name(), err), fs.ErrPermission}
		}
		return fmt.Errorf("enter network namespace %s: %w", target.Name(), err)
	}
	startErr := cmd.Start()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		if startErr == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		return fmt.Errorf("return from network namespace %s: %w", target.Name(), err)
	}
	runtime.UnlockOSThread()
	return startErr
}

// namespaceLabel names a namespace path in messages.
func namespaceLabel(nsPath string) string {
	if nsPath == "" {
		return "hooktrace's network namespace"
	}
	return "network namespace " + nsPath
}
