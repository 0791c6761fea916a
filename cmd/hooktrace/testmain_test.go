package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// hooktraceBin is the path of a hooktrace binary built once by TestMain from
// this package's sources, for end-to-end tests that run the command as a
// user would. It lives in a temporary directory removed when the tests end.
var hooktraceBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Getenv(legacyHelperEnv) != "" {
		// The test binary run as a helper process, to be killed: it
		// needs no hooktrace binary, and would leave its directory.
		return m.Run()
	}
	removeStaleBuilds(2 * time.Hour)
	dir, err := os.MkdirTemp("", "hooktrace-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin, err := buildHooktrace(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: %v\n", err)
		return 1
	}
	hooktraceBin = bin
	return m.Run()
}

// removeStaleBuilds removes the build directories of test runs that were
// killed (a timeout's panic or a SIGKILL skips TestMain's clean-up), once
// they are older than age: a run going on beside this one keeps its own.
func removeStaleBuilds(age time.Duration) {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), "hooktrace-e2e-*"))
	for _, dir := range old {
		if st, err := os.Stat(dir); err == nil && st.IsDir() && time.Since(st.ModTime()) > age {
			os.RemoveAll(dir)
		}
	}
}

// buildHooktrace builds this package (the test's working directory) into dir.
func buildHooktrace(dir string, flags ...string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		// go test puts the toolchain's bin directory first on PATH; this is
		// for test binaries run by hand.
		if root := os.Getenv("GOROOT"); root != "" {
			goTool = filepath.Join(root, "bin", "go")
		} else {
			return "", fmt.Errorf("build hooktrace: no go command on PATH: %w", err)
		}
	}
	bin := filepath.Join(dir, "hooktrace")
	cmd := exec.Command(goTool, append(append([]string{"build"}, flags...), "-o", bin, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build hooktrace: %v\n%s", err, out)
	}
	return bin, nil
}
