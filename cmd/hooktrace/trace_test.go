package main

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
)

const userRules = `table inet userfw {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 22 accept
		ip saddr 10.9.9.9 drop
	}
}
`

func nftIn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return nstest.Run(t, append([]string{"ip", "netns", "exec", ns, "nft"}, args...)...)
}

// TestTracingRulesAlwaysRemoved ends traced runs every way they can end
// and compares the namespace's ruleset with what it was before: the
// user's rules untouched, hooktrace's table gone.
func TestTracingRulesAlwaysRemoved(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t, "hxtcu")
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(userRules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("load user rules: %v %s", err, out)
	}
	before := nftIn(t, ns, "list", "ruleset")
	for _, end := range []string{"duration", "SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"} {
		t.Run(end, func(t *testing.T) {
			args := []string{"--netns", ns, "--print", "icmp"}
			args = append([]string{"--trace"}, args...)
			if end == "duration" {
				args = append([]string{"--duration", "300ms"}, args...)
			}
			r := startHooktrace(t, args...)
			if during := nftIn(t, ns, "list", "ruleset"); !strings.Contains(during, "table inet hooktrace") {
				t.Fatalf("tracing table not installed:\n%s", during)
			}
			switch end {
			case "duration":
			case "SIGKILL":
				r.cmd.Process.Kill()
			default:
				sig := map[string]syscall.Signal{"SIGINT": syscall.SIGINT, "SIGTERM": syscall.SIGTERM, "SIGHUP": syscall.SIGHUP}[end]
				r.cmd.Process.Signal(sig)
			}
			err := r.cmd.Wait()
			if end != "SIGKILL" && err != nil {
				t.Fatalf("exit: %v: %s", err, r.stderr.String())
			}
			// After SIGKILL the cleanup guard removes the table once it sees
			// hooktrace gone.
			deadline := time.Now().Add(5 * time.Second)
			for {
				after := nftIn(t, ns, "list", "ruleset")
				if after == before {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("ruleset after %s:\n%s\nbefore:\n%s", end, after, before)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	t.Run("cleanup", func(t *testing.T) {
		cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader("table inet hooktrace {\n}\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		code, out, errOut := runHooktrace("--netns", ns, "-c", "1", "--duration", "100ms")
		if code != 0 || !strings.Contains(errOut, "still holds table inet hooktrace") {
			t.Errorf("leftover not reported: exit %d: %s", code, errOut)
		}
		_ = out
		if code, out, errOut := runHooktrace("cleanup", "--netns", ns); code != 0 || !strings.Contains(out, "removed table inet hooktrace in network namespace "+ns) {
			t.Errorf("cleanup: exit %d: %s %s", code, out, errOut)
		}
		if after := nftIn(t, ns, "list", "ruleset"); after != before {
			t.Errorf("after cleanup:\n%s", after)
		}
	})
}
