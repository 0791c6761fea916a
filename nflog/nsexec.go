package nflog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// nftCommand runs nft with args and stdin inside the network namespace at
// nsPath ("" for hooktrace's own). The child process inherits the
// namespace of the thread that starts it, so the command is started from
// a locked thread that entered the namespace and returns to its own
// before it is unlocked.
func nftCommand(nsPath, stdin string, args ...string) ([]byte, error) {
	bin, err := exec.LookPath("nft")
	if err != nil {
		return nil, fmt.Errorf("nft command not found: install nftables (%w)", err)
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := startInNetns(nsPath, cmd); err != nil {
		return nil, err
	}
	if err := cmd.Wait(); err != nil {
		msg := strings.Join(strings.Fields(errb.String()), " ")
		if msg == "" {
			msg = err.Error()
		}
		return out.Bytes(), fmt.Errorf("nft %s: %s", strings.Join(args, " "), msg)
	}
	return out.Bytes(), nil
}

// startInNetns starts cmd inside a namespace.
func startInNetns(nsPath string, cmd *exec.Cmd) error {
	if nsPath == "" {
		return cmd.Start()
	}
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
		target, err := os.Open(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open network namespace %s: %w", nsPath, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			if errors.Is(err, unix.EPERM) {
				err = fmt.Errorf("%w: entering another namespace needs CAP_SYS_ADMIN", err)
			}
			errc <- fmt.Errorf("enter network namespace %s: %w", nsPath, err)
			return
		}
		startErr := cmd.Start()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked and dies with this goroutine.
			errc <- errors.Join(startErr, fmt.Errorf("return from network namespace %s: %w", nsPath, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- startErr
	}()
	return <-errc
}
