package nflog

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hooktrace/hooktrace/fixtures/netns"
)

// useStateDir points the state files at a temporary directory.
func useStateDir(t *testing.T) string {
	t.Helper()
	old := stateDir
	stateDir = filepath.Join(t.TempDir(), "state")
	t.Cleanup(func() { stateDir = old })
	return stateDir
}

// backendNamespace is a fresh namespace with group 0 bound, so that the
// nfnetlink_log logger is registered, and its IPv4 backend before.
func backendNamespace(t *testing.T) (NetnsRef, string) {
	t.Helper()
	netns.RequireRoot(t)
	name := netns.New(t, "hxtlb")
	ref := NetnsRef{Name: name, Path: "/run/netns/" + name}
	l, err := ListenLog(name, ref.Path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	before, err := ReadLogBackend(ref.Path, LogFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	if before == NfnetlinkLog {
		t.Fatalf("a fresh namespace already logs to %s", before)
	}
	return ref, before
}

func readBackend(t *testing.T, ref NetnsRef, family uint8) string {
	t.Helper()
	v, err := ReadLogBackend(ref.Path, family)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLogBackendSetAndRestore(t *testing.T) {
	dir := useStateDir(t)
	ref, before := backendNamespace(t)
	before6 := readBackend(t, ref, LogFamilyIPv6)
	hostBefore, err := ReadLogBackend("", LogFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	c, err := SetLogBackend(ref, LogFamilyIPv4, NfnetlinkLog)
	if err != nil || c == nil {
		t.Fatalf("set: %v %v", c, err)
	}
	if got := readBackend(t, ref, LogFamilyIPv4); got != NfnetlinkLog {
		t.Errorf("after set: %s", got)
	}
	if got := readBackend(t, ref, LogFamilyIPv6); got != before6 {
		t.Errorf("IPv6 backend changed too: %s", got)
	}
	if got, _ := ReadLogBackend("", LogFamilyIPv4); got != hostBefore {
		t.Errorf("hooktrace's own namespace changed: %s", got)
	}
	left, err := LogBackendLeftovers()
	if err != nil || len(left) != 1 || left[0].Previous != before || left[0].Family != LogFamilyIPv4 || !left[0].OwnerAlive() {
		t.Fatalf("state files: %+v %v", left, err)
	}
	restored, err := c.Restore()
	if err != nil || !restored {
		t.Fatalf("restore: %v %v", restored, err)
	}
	if got := readBackend(t, ref, LogFamilyIPv4); got != before {
		t.Errorf("after restore: %s, want %s", got, before)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Errorf("state files left: %v", files)
	}
}

// A value someone else wrote while hooktrace ran is theirs to keep.
func TestLogBackendRestoreOnlyItsOwn(t *testing.T) {
	useStateDir(t)
	ref, _ := backendNamespace(t)
	c, err := SetLogBackend(ref, LogFamilyIPv4, NfnetlinkLog)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteLogBackend(ref.Path, LogFamilyIPv4, LogBackendNone); err != nil {
		t.Fatal(err)
	}
	if restored, err := c.Restore(); err != nil || restored {
		t.Errorf("restore: %v %v, want nothing written", restored, err)
	}
	if got := readBackend(t, ref, LogFamilyIPv4); got != LogBackendNone {
		t.Errorf("after restore: %s, want the other writer's NONE", got)
	}
}

// Already nfnetlink_log: nothing to change, nothing recorded.
func TestLogBackendAlreadySet(t *testing.T) {
	dir := useStateDir(t)
	ref, before := backendNamespace(t)
	if err := WriteLogBackend(ref.Path, LogFamilyIPv4, NfnetlinkLog); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { WriteLogBackend(ref.Path, LogFamilyIPv4, before) })
	c, err := SetLogBackend(ref, LogFamilyIPv4, NfnetlinkLog)
	if err != nil || c != nil {
		t.Errorf("set: %v %v, want no change", c, err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Errorf("state files: %v", files)
	}
}

// A killed run's state file keeps the value from before any hooktrace: a
// new run adopts it, and restores that.
func TestLogBackendLeftoverAdopted(t *testing.T) {
	useStateDir(t)
	ref, before := backendNamespace(t)
	killed, err := SetLogBackend(ref, LogFamilyIPv4, NfnetlinkLog)
	if err != nil {
		t.Fatal(err)
	}
	killed.PID, killed.Start = 0, 0
	if err := killed.save(); err != nil {
		t.Fatal(err)
	}
	c, err := SetLogBackend(ref, LogFamilyIPv4, NfnetlinkLog)
	if err != nil || c == nil || c.Previous != before {
		t.Fatalf("second set: %+v %v, want previous %s", c, err, before)
	}
	if _, err := c.Restore(); err != nil {
		t.Fatal(err)
	}
	if got := readBackend(t, ref, LogFamilyIPv4); got != before {
		t.Errorf("after restore: %s, want %s", got, before)
	}
}

// A leftover whose namespace is gone is forgotten by Restore.
func TestLogBackendNamespaceGone(t *testing.T) {
	dir := useStateDir(t)
	ref, _ := backendNamespace(t)
	c, err := SetLogBackend(ref, LogFamilyIPv4, NfnetlinkLog)
	if err != nil {
		t.Fatal(err)
	}
	c.Netns.Path = filepath.Join(t.TempDir(), "no-such-namespace")
	if restored, err := c.Restore(); err != nil || restored {
		t.Errorf("restore: %v %v", restored, err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Errorf("state files: %v", files)
	}
	// The namespace itself is restored by hand for the next test.
	WriteLogBackend(ref.Path, LogFamilyIPv4, c.Previous)
}

func TestProcessStart(t *testing.T) {
	if processStart(os.Getpid()) == 0 {
		t.Error("no start time for this process")
	}
	if processStart(1<<30) != 0 {
		t.Error("a start time for a process that cannot exist")
	}
}
