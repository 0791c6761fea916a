package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hooktraceRun is a hooktrace process started by a test. Its output may
// be read while it runs.
type hooktraceRun struct {
	cmd    *exec.Cmd
	stdout lockedBuffer
	stderr lockedBuffer
}

// lockedBuffer is a bytes.Buffer a process writes to while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Bytes returns a copy of what was written so far.
func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

func (l *lockedBuffer) String() string { return string(l.Bytes()) }

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// startHooktrace starts the binary with a ready file and waits until it
// says capture has begun.
func startHooktrace(t *testing.T, args ...string) *hooktraceRun {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	r := &hooktraceRun{}
	r.cmd = exec.Command(hooktraceBin, append([]string{"--ready-file", ready}, args...)...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			r.cmd.Process.Kill()
			r.cmd.Wait()
		}
	})
	exited := make(chan error, 1)
	go func() {
		// Poll the ready file; an early exit is reported at once.
		for {
			if _, err := os.Stat(ready); err == nil {
				exited <- nil
				return
			}
			if r.cmd.ProcessState != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		r.cmd.Wait()
		t.Fatalf("hooktrace did not become ready: %s", r.stderr.String())
	}
	return r
}

// stop sends SIGINT and waits for a clean exit.
func (r *hooktraceRun) stop(t *testing.T) {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("hooktrace exited with %v: %s", err, r.stderr.String())
		}
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		t.Fatalf("hooktrace did not stop on SIGINT: %s", r.stderr.String())
	}
}

// record is the part of an NDJSON record the tests look at.
type record struct {
	Type    string `json:"type"`
	N       int    `json:"n"`
	Iface   string `json:"iface"`
	Netns   string `json:"netns"`
	Dir     string `json:"dir"`
	Summary string `json:"summary"`
	Layers  []map[string]any
	// stats
	Received       uint64 `json:"received"`
	KernelDrops    uint64 `json:"kernel_drops"`
	HooktraceDrops uint64 `json:"hooktrace_drops"`
}

func parseLiveRecords(t *testing.T, out []byte) (packets []record, stats *record) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad NDJSON line %q: %v", sc.Text(), err)
		}
		switch r.Type {
		case "packet":
			packets = append(packets, r)
		case "stats":
			rr := r
			stats = &rr
		}
	}
	return packets, stats
}

// where is "netns/iface dir" of a record.
func (r record) where() string { return r.Netns + "/" + r.Iface + " " + r.Dir }
