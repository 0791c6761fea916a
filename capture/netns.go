package capture

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/run/netns"

// Namespace identifies a network namespace to capture in.
type Namespace struct {
	// Name is how hooktrace shows it: the name under /run/netns, "root"
	// for the init namespace, "pid:N" for one only a process holds, or the
	// path the user gave. Empty for hooktrace's own namespace when no
	// namespace was asked for.
	Name  string
	Path  string // a path that opens it, e.g. /run/netns/hxs or /proc/42/ns/net
	Inode uint64 // the namespace's identity
}

// NamespaceSpec resolves what --netns was given: "" (hooktrace's own
// namespace), "all", a name under /run/netns, a path such as
// /proc/PID/ns/net, or "pid:N". Several specs may be joined with commas.
// The result is deduplicated by inode.
func NamespaceSpec(spec string) ([]Namespace, error) {
	var out []Namespace
	seen := map[uint64]bool{}
	add := func(ns Namespace) {
		if !seen[ns.Inode] {
			seen[ns.Inode] = true
			out = append(out, ns)
		}
	}
	for _, s := range strings.Split(spec, ",") {
		s = strings.TrimSpace(s)
		if s == "all" {
			all, err := AllNamespaces()
			if err != nil {
				return nil, err
			}
			for _, ns := range all {
				add(ns)
			}
			continue
		}
		ns, err := resolveNamespace(s)
		if err != nil {
			return nil, err
		}
		add(ns)
	}
	return out, nil
}

func resolveNamespace(s string) (Namespace, error) {
	var ns Namespace
	switch {
	case s == "":
		ns = Namespace{Path: "/proc/self/ns/net"}
	case strings.HasPrefix(s, "pid:"):
		pid, err := strconv.Atoi(strings.TrimPrefix(s, "pid:"))
		if err != nil || pid <= 0 {
			return Namespace{}, fmt.Errorf("network namespace %q: pid:N needs a process id", s)
		}
		ns = Namespace{Name: s, Path: fmt.Sprintf("/proc/%d/ns/net", pid)}
	case strings.Contains(s, "/"):
		ns = Namespace{Name: s, Path: s}
	default:
		ns = Namespace{Name: s, Path: filepath.Join(netnsDir, s)}
	}
	ino, err := nsInode(ns.Path)
	if err != nil {
		return Namespace{}, fmt.Errorf("network namespace %q: %w", s, err)
	}
	ns.Inode = ino
	return ns, nil
}

// nsInode returns the inode of a namespace file, checking it is one.
func nsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("%s does not exist", path)
		}
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Dev == 0 && st.Ino == 0 {
		return 0, fmt.Errorf("%s is not a namespace", path)
	}
	return st.Ino, nil
}

// AllNamespaces lists every network namespace on the machine that a name
// under /run/netns or a process holds, deduplicated by inode; named ones
// first, then the init namespace as "root", then "pid:N" for the rest.
func AllNamespaces() ([]Namespace, error) {
	var out []Namespace
	seen := map[uint64]bool{}
	if entries, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range entries {
			p := filepath.Join(netnsDir, e.Name())
			if ino, err := nsInode(p); err == nil && !seen[ino] {
				seen[ino] = true
				out = append(out, Namespace{Name: e.Name(), Path: p, Inode: ino})
			}
		}
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range procs {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	for _, pid := range pids {
		p := fmt.Sprintf("/proc/%d/ns/net", pid)
		ino, err := nsInode(p)
		if err != nil || seen[ino] {
			continue // the process ended, or we may not look
		}
		seen[ino] = true
		name := "pid:" + strconv.Itoa(pid)
		if pid == 1 {
			name = "root"
		}
		out = append(out, Namespace{Name: name, Path: p, Inode: ino})
	}
	return out, nil
}
