package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
	"github.com/hooktrace/hooktrace/nflog"
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
	// An iptables-legacy rule, so that hooktrace also points the
	// namespace's nf_log backend at nfnetlink_log while it runs.
	nstest.Run(t, "ip", "netns", "exec", ns, "iptables-legacy", "-A", "INPUT", "-s", "10.9.9.9", "-j", "DROP")
	before := tracedState(t, ns)
	for _, end := range []string{"duration", "SIGINT", "SIGTERM", "SIGHUP", "SIGKILL", "panic"} {
		t.Run(end, func(t *testing.T) {
			args := []string{"--netns", ns, "--print", "icmp"}
			args = append([]string{"--trace"}, args...)
			if end == "duration" {
				args = append([]string{"--duration", "300ms"}, args...)
			}
			if end == "panic" {
				t.Setenv(debugPanicEnv, "1")
			}
			r := startHooktrace(t, args...)
			if end != "panic" {
				if during := nftIn(t, ns, "list", "ruleset"); !strings.Contains(during, "table inet hooktrace") || !strings.Contains(during, "table bridge hooktrace") {
					t.Fatalf("tracing table not installed:\n%s", during)
				}
				if v, err := nflog.ReadLogBackend("/run/netns/"+ns, nflog.LogFamilyIPv4); err != nil || v != "nfnetlink_log" {
					t.Fatalf("nf_log backend during the run: %q %v, want nfnetlink_log", v, err)
				}
			}
			switch end {
			case "duration", "panic":
			case "SIGKILL":
				r.cmd.Process.Kill()
			default:
				sig := map[string]syscall.Signal{"SIGINT": syscall.SIGINT, "SIGTERM": syscall.SIGTERM, "SIGHUP": syscall.SIGHUP}[end]
				r.cmd.Process.Signal(sig)
			}
			err := r.cmd.Wait()
			if end == "panic" && !strings.Contains(r.stderr.String(), "panic: "+debugPanicEnv) {
				t.Fatalf("no panic: %v: %s", err, r.stderr.String())
			}
			if end != "SIGKILL" && end != "panic" && err != nil {
				t.Fatalf("exit: %v: %s", err, r.stderr.String())
			}
			// After SIGKILL or a panic the cleanup guard restores everything
			// once it sees hooktrace gone.
			deadline := time.Now().Add(5 * time.Second)
			for {
				after := tracedState(t, ns)
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
		cmd.Stdin = strings.NewReader("table inet hooktrace {\n}\ntable bridge hooktrace {\n}\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		code, out, errOut := runHooktrace("--netns", ns, "-c", "1", "--duration", "100ms")
		if code != 0 || !strings.Contains(errOut, "still holds hooktrace's table hooktrace") {
			t.Errorf("leftover not reported: exit %d: %s", code, errOut)
		}
		_ = out
		if code, out, errOut := runHooktrace("cleanup", "--netns", ns); code != 0 || !strings.Contains(out, "removed hooktrace's table hooktrace in network namespace "+ns) {
			t.Errorf("cleanup: exit %d: %s %s", code, out, errOut)
		}
		if after := tracedState(t, ns); after != before {
			t.Errorf("after cleanup:\n%s", after)
		}
	})
}

// tracedState is everything --trace may change in a namespace and the
// host: the nftables ruleset, the iptables-legacy rules (without
// counters) and the nf_log backends.
func tracedState(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(nftIn(t, ns, "list", "ruleset"))
	counters := regexp.MustCompile(`\[\d+:\d+\]`)
	for _, save := range []string{"iptables-legacy-save", "ip6tables-legacy-save"} {
		for _, l := range strings.Split(nstest.Run(t, "ip", "netns", "exec", ns, save), "\n") {
			if !strings.HasPrefix(l, "#") {
				b.WriteString(counters.ReplaceAllString(l, "") + "\n")
			}
		}
	}
	for _, path := range []string{"", "/run/netns/" + ns} {
		for _, fam := range []uint8{nflog.LogFamilyIPv4, nflog.LogFamilyIPv6} {
			v, err := nflog.ReadLogBackend(path, fam)
			fmt.Fprintf(&b, "%q nf_log/%d %s %v\n", path, fam, v, err)
		}
	}
	return b.String()
}

// TestTraceErrorsAreOneLine: what stops --trace from starting is said in
// one line, with exit 2, and leaves nothing behind.
func TestTraceErrorsAreOneLine(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t, "hxtte")
	before := tracedState(t, ns)
	for _, tc := range []struct {
		name string
		cmd  *exec.Cmd
		want []string
	}{
		{
			name: "no CAP_NET_ADMIN",
			cmd: exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
				hooktraceBin, "--trace", "--print", "icmp"),
			want: []string{"CAP_NET_ADMIN", "setcap"},
		},
		{
			name: "no nft binary",
			cmd:  withEnv(exec.Command(hooktraceBin, "--netns", ns, "--trace", "--print", "icmp"), "PATH=/nonexistent"),
			want: []string{"nft command not found", "install nftables"},
		},
		{
			name: "namespace does not exist",
			cmd:  exec.Command(hooktraceBin, "--netns", "hxt-gone", "--trace", "--print", "icmp"),
			want: []string{`"hxt-gone"`, "does not exist"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
				t.Fatalf("%v, want exit %d: %s", err, exitUsage, out)
			}
			msg := strings.TrimSpace(string(out))
			if strings.Count(msg, "\n") != 0 {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if after := tracedState(t, ns); after != before {
				t.Errorf("state changed:\n%s\nbefore:\n%s", after, before)
			}
		})
	}
}

// withEnv returns cmd with its environment plus kv.
func withEnv(cmd *exec.Cmd, kv string) *exec.Cmd {
	cmd.Env = append(os.Environ(), kv)
	return cmd
}
