package nflog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Families whose nf_log backend hooktrace sets: iptables-legacy and
// ip6tables-legacy log their TRACE lines through them.
const (
	LogFamilyIPv4 uint8 = 2  // NFPROTO_IPV4, /proc/sys/net/netfilter/nf_log/2
	LogFamilyIPv6 uint8 = 10 // NFPROTO_IPV6, /proc/sys/net/netfilter/nf_log/10
)

// NfnetlinkLog is the nf_log backend that sends log lines, TRACE lines
// included, to NFLOG group 0.
const NfnetlinkLog = "nfnetlink_log"

// LogBackendNone is what the sysctl reads when no backend is set.
const LogBackendNone = "NONE"

// stateDir holds one file per backend hooktrace changed, written before
// the change and removed after the restore, so that a killed run can be
// repaired by `hooktrace cleanup`. Tests point it elsewhere.
var stateDir = "/run/hooktrace"

// logBackendPath is the sysctl of a family's backend. It is per network
// namespace: the kernel resolves it in the namespace of the thread that
// opens it.
func logBackendPath(family uint8) string {
	return fmt.Sprintf("/proc/sys/net/netfilter/nf_log/%d", family)
}

// LogFamilyName names a family for messages: "IPv4", "IPv6" or "family N".
func LogFamilyName(family uint8) string {
	switch family {
	case LogFamilyIPv4:
		return "IPv4"
	case LogFamilyIPv6:
		return "IPv6"
	}
	return fmt.Sprintf("family %d", family)
}

// ReadLogBackend returns the nf_log backend of a family in the network
// namespace at nsPath ("" for hooktrace's own): a logger's name such as
// "nf_log_ipv4" or "nfnetlink_log", or "NONE".
func ReadLogBackend(nsPath string, family uint8) (string, error) {
	var v string
	err := onNamespaceThread(nsPath, func() error {
		b, err := os.ReadFile(logBackendPath(family))
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read nf_log backend for %s in %s: %w", LogFamilyName(family), namespaceLabel(nsPath), err)
	}
	return v, nil
}

// WriteLogBackend sets the nf_log backend of a family in the network
// namespace at nsPath; "NONE" unsets it. The backend must be registered:
// nfnetlink_log is once an NFLOG socket has been bound (which loads the
// module), else the kernel answers ENOENT.
func WriteLogBackend(nsPath string, family uint8, backend string) error {
	err := onNamespaceThread(nsPath, func() error {
		f, err := os.OpenFile(logBackendPath(family), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, werr := f.WriteString(backend)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		return werr
	})
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("set nf_log backend for %s to %s in %s: no such logger registered (is the %s module available?)", LogFamilyName(family), backend, namespaceLabel(nsPath), backend)
	}
	if err != nil {
		return fmt.Errorf("set nf_log backend for %s to %s in %s: %w", LogFamilyName(family), backend, namespaceLabel(nsPath), err)
	}
	return nil
}

// onNamespaceThread runs fn on a locked thread inside the network
// namespace at nsPath ("" runs it here). The thread returns to its own
// namespace before it is unlocked; if it cannot, it stays locked and Go
// retires it with its goroutine.
func onNamespaceThread(nsPath string, fn func() error) error {
	if nsPath == "" {
		return fn()
	}
	target, err := os.Open(nsPath)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open this thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", nsPath, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("return from network namespace %s: %w", nsPath, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// LogBackendChange is one nf_log backend hooktrace changed: what it was,
// what hooktrace set, and where. It is also the content of the state file
// that lets `hooktrace cleanup` restore it after hooktrace was killed.
type LogBackendChange struct {
	Netns    NetnsRef `json:"netns"` // Path "" is the owner's own namespace
	Inode    uint64   `json:"inode"` // the namespace's identity
	Family   uint8    `json:"family"`
	Previous string   `json:"previous"` // to restore: a logger's name or "NONE"
	Set      string   `json:"set"`      // what hooktrace wrote
	PID      int      `json:"pid"`      // the hooktrace process that changed it
	Start    uint64   `json:"start"`    // its start time (clock ticks after boot), against PID reuse
	file     string
}

// SetLogBackend points a family's nf_log backend in a namespace at
// backend, after recording what was there in a state file. It returns nil
// and changes nothing when the backend is already set. When a state file
// of a killed run is still there for the namespace and family, its
// Previous is kept: that is what the namespace had before any hooktrace.
func SetLogBackend(ns NetnsRef, family uint8, backend string) (*LogBackendChange, error) {
	ino, err := namespaceInode(ns.Path)
	if err != nil {
		return nil, fmt.Errorf("set nf_log backend for %s in %s: %w", LogFamilyName(family), ns.label(), err)
	}
	cur, err := ReadLogBackend(ns.Path, family)
	if err != nil {
		return nil, err
	}
	c := &LogBackendChange{Netns: ns, Inode: ino, Family: family, Previous: cur, Set: backend, PID: os.Getpid(), Start: processStart(os.Getpid())}
	c.file = filepath.Join(stateDir, fmt.Sprintf("nf_log-%d-%d.json", ino, family))
	if old, err := readLogBackendChange(c.file); err == nil && old.Set == backend {
		c.Previous = old.Previous
	}
	if cur == backend && c.Previous == backend {
		return nil, nil
	}
	if err := c.save(); err != nil {
		return nil, err
	}
	if cur == backend {
		return c, nil
	}
	if err := WriteLogBackend(ns.Path, family, backend); err != nil {
		c.forget()
		return nil, err
	}
	return c, nil
}

// Restore puts the previous backend back if the sysctl still holds what
// hooktrace set (someone who changed it since keeps their value), then
// removes the state file. restored says whether it wrote. A namespace
// that no longer exists needs nothing restored.
func (c *LogBackendChange) Restore() (restored bool, err error) {
	cur, err := ReadLogBackend(c.Netns.Path, c.Family)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, c.forget()
	case err != nil:
		return false, fmt.Errorf("restore nf_log backend: %w", err)
	case cur != c.Set || c.Previous == c.Set:
		return false, c.forget()
	}
	if err := WriteLogBackend(c.Netns.Path, c.Family, c.Previous); err != nil {
		return false, fmt.Errorf("restore nf_log backend: %w", err)
	}
	return true, c.forget()
}

// String says what was changed, for messages.
func (c *LogBackendChange) String() string {
	return fmt.Sprintf("nf_log backend for %s in %s (%s, was %s)", LogFamilyName(c.Family), c.Netns.label(), c.Set, c.Previous)
}

// OwnerAlive says whether the hooktrace process that made the change is
// still running (a zombie is not).
func (c *LogBackendChange) OwnerAlive() bool {
	return c.PID > 0 && processStart(c.PID) == c.Start && c.Start != 0
}

// Forget removes the state file without touching the sysctl: for a
// namespace that is gone.
func (c *LogBackendChange) Forget() error { return c.forget() }

func (c *LogBackendChange) forget() error {
	if c.file == "" {
		return nil
	}
	if err := os.Remove(c.file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove hooktrace state file: %w", err)
	}
	return nil
}

// save writes the state file atomically.
func (c *LogBackendChange) save() error {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("record nf_log backend before changing it: %w", err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("record nf_log backend before changing it: %w", err)
	}
	tmp := c.file + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("record nf_log backend before changing it: %w", err)
	}
	if err := os.Rename(tmp, c.file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record nf_log backend before changing it: %w", err)
	}
	return nil
}

// LogBackendLeftovers returns the changes recorded in state files: those
// of running hooktrace processes and those a killed one left. The caller
// sets Netns.Path (found by Inode) before calling Restore.
func LogBackendLeftovers() ([]*LogBackendChange, error) {
	files, err := filepath.Glob(filepath.Join(stateDir, "nf_log-*.json"))
	if err != nil {
		return nil, fmt.Errorf("list hooktrace state files: %w", err)
	}
	var out []*LogBackendChange
	var errs []error
	for _, f := range files {
		c, err := readLogBackendChange(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

func readLogBackendChange(file string) (*LogBackendChange, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read hooktrace state file: %w", err)
	}
	c := &LogBackendChange{}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("read hooktrace state file %s: %w", file, err)
	}
	if c.Family == 0 || c.Set == "" || c.Previous == "" {
		return nil, fmt.Errorf("read hooktrace state file %s: incomplete", file)
	}
	c.file = file
	return c, nil
}

// namespaceInode identifies the namespace at nsPath ("": this process's).
func namespaceInode(nsPath string) (uint64, error) {
	if nsPath == "" {
		nsPath = "/proc/self/ns/net"
	}
	var st unix.Stat_t
	if err := unix.Stat(nsPath, &st); err != nil {
		return 0, fmt.Errorf("identify network namespace %s: %w", nsPath, err)
	}
	return st.Ino, nil
}

// processStart returns a process's start time from /proc/PID/stat, or 0
// when it does not exist or is a zombie.
func processStart(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces and parentheses: fields start
	// after the last ')'. Field 3 is the state, 22 the start time.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}
