package nflog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CleanupDropProbe removes what killed drop probes left: their tracefs
// instances (hooktrace-PID or hooktrace-PID-N whose process is gone;
// removing one disables its events) and their private tracefs mounts
// (/run/hooktrace/tracefs-PID). It returns what it removed. The BPF probe
// leaves nothing behind: its program and maps go with the process.
func CleanupDropProbe() ([]string, error) {
	root, err := acquireTracefs()
	if err != nil {
		return nil, fmt.Errorf("clean up kernel drop probe: %w", err)
	}
	removed, err := removeDeadInstances(filepath.Join(root, "instances"))
	errs := []error{err, releaseTracefs()}
	mounts, err := removeDeadMounts()
	removed = append(removed, mounts...)
	if err := errors.Join(append(errs, err)...); err != nil {
		return removed, fmt.Errorf("clean up kernel drop probe: %w", err)
	}
	return removed, nil
}

// removeDeadMounts unmounts the private tracefs mounts of processes that
// are gone.
func removeDeadMounts() ([]string, error) {
	entries, err := os.ReadDir(privateTracefsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("list %s: %w", privateTracefsDir, err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		pidText, ok := strings.CutPrefix(e.Name(), "tracefs-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || processStart(pid) != 0 {
			continue
		}
		dir := privateTracefsPath(pid)
		if err := unmountPrivate(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}

// removeDeadInstances removes hooktrace's instances under dir whose
// owner no longer runs. A reused PID keeps its instance until that
// process ends too.
func removeDeadInstances(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list tracefs instances: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		pid, ok := instanceOwner(e.Name())
		if !ok || processStart(pid) != 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("remove tracefs instance %s: %w", e.Name(), err))
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

// instanceOwner reads the PID from an instance name hooktrace made.
func instanceOwner(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, dropInstancePrefix)
	if !ok {
		return 0, false
	}
	pidText, seq, hasSeq := strings.Cut(rest, "-")
	if hasSeq {
		if _, err := strconv.ParseUint(seq, 10, 32); err != nil {
			return 0, false
		}
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}
