package nflog

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// tracefsRoot is where tracefs usually is.
const tracefsRoot = "/sys/kernel/tracing"

// privateTracefsDir holds the private mounts of tracefs that processes
// make where tracefsRoot has none: tracefs-PID.
const privateTracefsDir = "/run/hooktrace"

// dropInstancePrefix starts the name of every tracefs instance hooktrace
// makes: hooktrace-PID, or hooktrace-PID-N for a process's further ones.
const dropInstancePrefix = "hooktrace-"

// tracefsMount is this process's use of tracefs: tracefsRoot when
// something mounted it there, else a private mount of its own, made for
// its first user and removed after its last. A private mount, rather than
// one at tracefsRoot, leaves the host's mounts as they were and cannot be
// kept busy by another process: every tracefs mount shows the same
// kernel instances.
var tracefsMount struct {
	sync.Mutex
	users   int
	root    string
	private bool
}

// acquireTracefs returns where tracefs is mounted, mounting it if needed.
func acquireTracefs() (string, error) {
	tracefsMount.Lock()
	defer tracefsMount.Unlock()
	if tracefsMount.users == 0 {
		root, private, err := mountTracefs()
		if err != nil {
			return "", err
		}
		tracefsMount.root, tracefsMount.private = root, private
	}
	tracefsMount.users++
	return tracefsMount.root, nil
}

// mountTracefs finds tracefs at tracefsRoot or mounts it privately.
func mountTracefs() (root string, private bool, err error) {
	if isTracefs(tracefsRoot) {
		return tracefsRoot, false, nil
	}
	dir := privateTracefsPath(os.Getpid())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("mount tracefs: %w", err)
	}
	if err := unix.Mount("tracefs", dir, "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		os.Remove(dir)
		return "", false, fmt.Errorf("mount tracefs on %s: %w", dir, err)
	}
	return dir, true, nil
}

// privateTracefsPath is where process pid mounts tracefs privately.
func privateTracefsPath(pid int) string {
	return filepath.Join(privateTracefsDir, "tracefs-"+strconv.Itoa(pid))
}

// releaseTracefs removes a private mount when its last user is done.
func releaseTracefs() error {
	tracefsMount.Lock()
	defer tracefsMount.Unlock()
	tracefsMount.users--
	if tracefsMount.users > 0 || !tracefsMount.private {
		return nil
	}
	tracefsMount.private = false
	return unmountPrivate(tracefsMount.root)
}

// unmountPrivate unmounts a private tracefs mount and removes its
// directory.
func unmountPrivate(dir string) error {
	if err := unix.Unmount(dir, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount tracefs from %s: %w", dir, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove tracefs mount point: %w", err)
	}
	return nil
}

// isTracefs tells whether tracefs is mounted at dir.
func isTracefs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.TRACEFS_MAGIC
}

// instanceSeq numbers this process's instances after the first.
var instanceSeq atomic.Uint64

// tracefsDrops is the fallback probe: the kfree_skb event enabled in a
// tracefs instance of hooktrace's own, read from its trace_pipe.
type tracefsDrops struct {
	dir      string // the instance, once made
	acquired bool   // holds a use of the tracefs mount
	syms     *kernelSymbols
	reasons  map[uint32]string // from the event's format
	pipe     *os.File
	rd       *bufio.Reader
	closed   atomic.Bool
}

// startTracefsDrops mounts tracefs if needed, makes the instance,
// filters and enables the event and opens trace_pipe. On failure it
// removes what it made.
func startTracefsDrops(opts DropProbeOptions) (_ *tracefsDrops, err error) {
	t := &tracefsDrops{}
	root, err := acquireTracefs()
	if err != nil {
		return nil, err
	}
	t.acquired = true
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	name := dropInstancePrefix + strconv.Itoa(os.Getpid())
	if n := instanceSeq.Add(1); n > 1 {
		name += "-" + strconv.FormatUint(n-1, 10)
	}
	dir := filepath.Join(root, "instances", name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create tracefs instance: %w", err)
	}
	t.dir = dir
	// Symbols only help where the kernel prints raw addresses; a missing
	// kallsyms is no reason to fail.
	t.syms, _ = loadKernelSymbols()
	if err := t.setUp(opts); err != nil {
		return nil, err
	}
	if t.pipe, err = os.Open(filepath.Join(dir, "trace_pipe")); err != nil {
		return nil, fmt.Errorf("open tracefs trace_pipe: %w", err)
	}
	t.rd = bufio.NewReaderSize(t.pipe, 64<<10)
	return t, nil
}

// setUp sets the instance's clock and buffer, reads the event's reason
// names, filters the skipped reasons in the kernel and enables the event.
func (t *tracefsDrops) setUp(opts DropProbeOptions) error {
	if err := t.write("trace_clock", "mono"); err != nil {
		return err
	}
	if err := t.write("buffer_size_kb", strconv.Itoa(opts.ringBytes()>>10)); err != nil {
		return err
	}
	format, err := os.ReadFile(filepath.Join(t.dir, "events/skb/kfree_skb/format"))
	if err != nil {
		return fmt.Errorf("read format of tracepoint skb:kfree_skb: %w", err)
	}
	if t.reasons, err = parseReasonFormat(string(format)); err != nil {
		return fmt.Errorf("read format of tracepoint skb:kfree_skb: %w", err)
	}
	var skip []string
	for _, name := range opts.skipReasons() {
		if v, ok := reasonValue(t.reasons, name); ok {
			skip = append(skip, "reason != "+strconv.FormatUint(uint64(v), 10))
		}
	}
	if len(skip) > 0 {
		if err := t.write("events/skb/kfree_skb/filter", strings.Join(skip, " && ")); err != nil {
			return err
		}
	}
	return t.write("events/skb/kfree_skb/enable", "1")
}

// write sets one tracefs file of the instance.
func (t *tracefsDrops) write(file, value string) error {
	if err := os.WriteFile(filepath.Join(t.dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("set tracefs %s to %q: %w", file, value, err)
	}
	return nil
}

// next reads lines until one is a kfree_skb event.
func (t *tracefsDrops) next() (KernelDrop, error) {
	for {
		line, err := t.rd.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if t.closed.Load() || errors.Is(err, fs.ErrClosed) {
				return KernelDrop{}, fmt.Errorf("read kernel drops: %w", net.ErrClosed)
			}
			return KernelDrop{}, fmt.Errorf("read tracefs trace_pipe: %w", err)
		}
		ev, ok := parseKfreeSkbLine(line, t.reasons)
		if !ok {
			continue
		}
		return t.drop(ev), nil
	}
}

// drop completes a parsed event: wall-clock time and, where the kernel
// printed a bare address, the symbol.
func (t *tracefsDrops) drop(ev kfreeSkbEvent) KernelDrop {
	d := KernelDrop{
		Time:     monoToWall(ev.mono),
		Reason:   ev.reason,
		Location: ev.location,
		Protocol: ev.protocol,
		Probable: true,
	}
	if ev.address != 0 && t.syms != nil {
		d.Location, _ = t.syms.Resolve(ev.address)
	}
	return d
}

// lost sums what the instance's buffers overwrote or dropped.
func (t *tracefsDrops) lost() uint64 {
	files, _ := filepath.Glob(filepath.Join(t.dir, "per_cpu/cpu*/stats"))
	var n uint64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n += traceStatsLost(string(b))
	}
	return n
}

// traceStatsLost reads "overrun: N" and "dropped events: N" from a
// per-CPU stats file.
func traceStatsLost(stats string) uint64 {
	var n uint64
	for _, line := range strings.Split(stats, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "overrun" && k != "dropped events") {
			continue
		}
		if x, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			n += x
		}
	}
	return n
}

// close disables the event, closes the pipe (which unblocks next),
// removes the instance and releases the mount.
func (t *tracefsDrops) close() error {
	t.closed.Store(true)
	var errs []error
	if t.dir != "" {
		// Removing the instance disables its events; this is only so
		// that nothing more is written while the pipe closes.
		_ = os.WriteFile(filepath.Join(t.dir, "events/skb/kfree_skb/enable"), []byte("0"), 0)
	}
	if t.pipe != nil {
		if err := t.pipe.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close tracefs trace_pipe: %w", err))
		}
	}
	if t.dir != "" {
		if err := os.Remove(t.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove tracefs instance: %w", err))
		}
	}
	if t.acquired {
		if err := releaseTracefs(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
