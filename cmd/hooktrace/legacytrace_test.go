package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
	"github.com/hooktrace/hooktrace/nflog"
	"golang.org/x/sys/unix"
)

// legacyLab is two namespaces joined by a veth: traffic goes from a to
// b, whose iptables-legacy and ip6tables-legacy rules it crosses.
type legacyLab struct {
	a, b       string
	ifA, ifB   string
	addrB4     string
	addrB6     string
	namespaces []capture.Namespace // b, as hooktrace sees it
}

// legacyRules: TRACE on the packets the test sends; an INPUT chain whose
// policy is DROP, with a DROP rule, a jump to a user chain that ends in
// ACCEPT after a rule with no target, and a jump to one that returns.
var legacyRules = [][]string{
	{"iptables-legacy", "-t", "raw", "-A", "PREROUTING", "-p", "icmp", "--icmp-type", "echo-request", "-j", "TRACE"},
	{"iptables-legacy", "-t", "raw", "-A", "PREROUTING", "-p", "udp", "-j", "TRACE"},
	{"iptables-legacy", "-P", "INPUT", "DROP"},
	{"iptables-legacy", "-N", "icmpchk"},
	{"iptables-legacy", "-N", "udpchk"},
	{"iptables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP"},
	{"iptables-legacy", "-A", "INPUT", "-p", "icmp", "-j", "icmpchk"},
	{"iptables-legacy", "-A", "INPUT", "-p", "udp", "-j", "udpchk"},
	{"iptables-legacy", "-A", "icmpchk", "-s", "10.9.9.9", "-j", "DROP"},
	{"iptables-legacy", "-A", "icmpchk", "-p", "icmp", "-m", "comment", "--comment", "count -j DROP"},
	{"iptables-legacy", "-A", "icmpchk", "-p", "icmp", "--icmp-type", "echo-request", "-j", "ACCEPT"},
	{"iptables-legacy", "-A", "udpchk", "-p", "udp", "--dport", "9999", "-j", "ACCEPT"},
	{"ip6tables-legacy", "-t", "raw", "-A", "PREROUTING", "-p", "ipv6-icmp", "--icmpv6-type", "echo-request", "-j", "TRACE"},
	{"ip6tables-legacy", "-A", "INPUT", "-p", "ipv6-icmp", "--icmpv6-type", "echo-request", "-j", "ACCEPT"},
}

func newLegacyLab(t *testing.T) *legacyLab {
	t.Helper()
	nstest.RequireRoot(t)
	for _, cmd := range []string{"iptables-legacy", "ip6tables-legacy", "iptables-legacy-save", "ping"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Fatalf("%s not installed (.ci/run installs iptables)", cmd)
		}
	}
	lab := &legacyLab{a: nstest.New(t, "hxtla"), b: nstest.New(t, "hxtlb")}
	lab.ifA, lab.ifB = "la"+lab.a[len(lab.a)-4:], "lb"+lab.b[len(lab.b)-4:]
	lab.addrB4, lab.addrB6 = "10.203.0.2", "fd00:203::2"
	nstest.Veth(t, lab.a, lab.ifA, "10.203.0.1/24", lab.b, lab.ifB, lab.addrB4+"/24")
	for _, c := range [][]string{
		{"ip", "-n", lab.a, "addr", "add", "fd00:203::1/64", "dev", lab.ifA, "nodad"},
		{"ip", "-n", lab.b, "addr", "add", lab.addrB6 + "/64", "dev", lab.ifB, "nodad"},
	} {
		nstest.Run(t, c...)
	}
	// Fixed neighbours: no neighbour discovery in the traced traffic.
	macA := ifaceMAC(t, lab.a, lab.ifA)
	macB := ifaceMAC(t, lab.b, lab.ifB)
	nstest.Run(t, "ip", "-n", lab.a, "neigh", "replace", lab.addrB4, "lladdr", macB, "dev", lab.ifA, "nud", "permanent")
	nstest.Run(t, "ip", "-n", lab.a, "neigh", "replace", lab.addrB6, "lladdr", macB, "dev", lab.ifA, "nud", "permanent")
	nstest.Run(t, "ip", "-n", lab.b, "neigh", "replace", "10.203.0.1", "lladdr", macA, "dev", lab.ifB, "nud", "permanent")
	nstest.Run(t, "ip", "-n", lab.b, "neigh", "replace", "fd00:203::1", "lladdr", macA, "dev", lab.ifB, "nud", "permanent")
	for _, r := range legacyRules {
		nstest.Run(t, append([]string{"ip", "netns", "exec", lab.b}, r...)...)
	}
	nss, err := capture.NamespaceSpec(lab.b)
	if err != nil {
		t.Fatal(err)
	}
	lab.namespaces = nss
	return lab
}

func ifaceMAC(t *testing.T, ns, iface string) string {
	t.Helper()
	out := nstest.Run(t, "ip", "-n", ns, "-o", "link", "show", iface)
	m := regexp.MustCompile(`link/ether ([0-9a-f:]{17})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no MAC address in %q", out)
	}
	return m[1]
}

// traffic sends, one after the other: a ping, a UDP datagram to the
// accepted port, one to a port the policy drops, and a ping6.
func (lab *legacyLab) traffic(t *testing.T) {
	t.Helper()
	nstest.Run(t, "ip", "netns", "exec", lab.a, "ping", "-c", "1", "-W", "1", lab.addrB4)
	for _, port := range []string{"9999", "9998"} {
		nstest.In(t, lab.a, func() error {
			c, err := net.Dial("udp", net.JoinHostPort(lab.addrB4, port))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("hooktrace"))
			return err
		})
		time.Sleep(50 * time.Millisecond)
	}
	nstest.Run(t, "ip", "netns", "exec", lab.a, "ping", "-6", "-c", "1", "-W", "1", lab.addrB6)
}

// wantLegacySteps are the steps the traffic takes, as the kernel names
// them, with the packet: source > destination protocol.
var wantLegacySteps = []string{
	"TRACE: raw:PREROUTING:policy:3 10.203.0.1>10.203.0.2 ICMP",
	"TRACE: filter:INPUT:rule:2 10.203.0.1>10.203.0.2 ICMP",
	"TRACE: filter:icmpchk:rule:2 10.203.0.1>10.203.0.2 ICMP",
	"TRACE: filter:icmpchk:rule:3 10.203.0.1>10.203.0.2 ICMP",
	"TRACE: raw:PREROUTING:policy:3 10.203.0.1>10.203.0.2 UDP",
	"TRACE: filter:INPUT:rule:3 10.203.0.1>10.203.0.2 UDP",
	"TRACE: filter:udpchk:rule:1 10.203.0.1>10.203.0.2 UDP",
	"TRACE: raw:PREROUTING:policy:3 10.203.0.1>10.203.0.2 UDP",
	"TRACE: filter:INPUT:rule:3 10.203.0.1>10.203.0.2 UDP",
	"TRACE: filter:udpchk:return:2 10.203.0.1>10.203.0.2 UDP",
	"TRACE: filter:INPUT:policy:4 10.203.0.1>10.203.0.2 UDP",
	"TRACE: raw:PREROUTING:policy:2 fd00:203::1>fd00:203::2 ICMPv6",
	"TRACE: filter:INPUT:rule:1 fd00:203::1>fd00:203::2 ICMPv6",
}

// eventPrinter collects trace events.
type eventPrinter struct {
	mu     sync.Mutex
	events []decode.TraceEvent
}

func (p *eventPrinter) Trace(ev *decode.TraceEvent) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, *ev)
	return nil
}

func (p *eventPrinter) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}

// stepOf formats an event as the kernel's log line starts, with the rule
// count of the chain for policy and return lines (the kernel numbers them
// after the last rule), and the packet.
func stepOf(t *testing.T, ev decode.TraceEvent, rules *nflog.LegacyRules) string {
	n := ev.RuleNumber
	if n == 0 {
		n = 1
		for {
			if _, ok := rules.Rule(nflog.FamilyName(ev.Family), ev.Table, ev.Chain, n); !ok {
				break
			}
			n++
		}
	}
	f, _ := ev.Snapshot()
	return fmt.Sprintf("TRACE: %s:%s:%s:%d %s", ev.Table, ev.Chain, ev.Type, n, packetOf(f.Data))
}

// packetOf names the source, destination and protocol of an IP packet as
// nf_log_syslog does.
func packetOf(p []byte) string {
	switch {
	case len(p) >= 20 && p[0]>>4 == 4:
		return fmt.Sprintf("%s>%s %s", net.IP(p[12:16]), net.IP(p[16:20]), map[byte]string{1: "ICMP", 6: "TCP", 17: "UDP"}[p[9]])
	case len(p) >= 40 && p[0]>>4 == 6:
		return fmt.Sprintf("%s>%s %s", net.IP(p[8:24]), net.IP(p[24:40]), map[byte]string{58: "ICMPv6", 6: "TCP", 17: "UDP"}[p[6]])
	}
	return "?"
}

var kmsgTrace = regexp.MustCompile(`(TRACE: \S+) IN=(\S*) OUT=(\S*) .*SRC=(\S+) DST=(\S+) .*PROTO=(\S+)`)

// kernelTraceLines sends the traffic with the kernel's own text logger
// (nf_log_syslog, the namespace's default backend) and reads its TRACE
// lines from /dev/kmsg. The kernel logs from other namespaces than the
// first only with net.netfilter.nf_log_all_netns set: it is set for the
// traffic and put back.
func kernelTraceLines(t *testing.T, lab *legacyLab) []string {
	t.Helper()
	for fam, want := range map[uint8]string{nflog.LogFamilyIPv4: "nf_log_ipv4", nflog.LogFamilyIPv6: "nf_log_ipv6"} {
		if got, err := nflog.ReadLogBackend(lab.namespaces[0].Path, fam); err != nil || got != want {
			t.Skipf("backend for family %d is %q (%v), not the kernel's text logger", fam, got, err)
		}
	}
	const allNetns = "/proc/sys/net/netfilter/nf_log_all_netns"
	old, err := os.ReadFile(allNetns)
	if err != nil {
		t.Skipf("no %s: %v", allNetns, err)
	}
	kmsg, err := os.OpenFile("/dev/kmsg", os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Skipf("cannot read the kernel log: %v", err)
	}
	defer kmsg.Close()
	if _, err := unix.Seek(int(kmsg.Fd()), 0, unix.SEEK_END); err != nil {
		t.Fatalf("seek to the end of /dev/kmsg: %v", err)
	}
	if err := os.WriteFile(allNetns, []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := os.WriteFile(allNetns, old, 0); err != nil {
				t.Errorf("restore %s: %v", allNetns, err)
			}
		}
	}
	defer restore()
	lab.traffic(t)
	restore()
	var lines []string
	buf := make([]byte, 8192)
	deadline := time.Now().Add(2 * time.Second)
	for len(lines) < len(wantLegacySteps) && time.Now().Before(deadline) {
		n, err := kmsg.Read(buf)
		if errors.Is(err, syscall.EAGAIN) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if errors.Is(err, syscall.EPIPE) { // overwritten records: go on
			continue
		}
		if err != nil {
			t.Fatalf("read /dev/kmsg: %v", err)
		}
		m := kmsgTrace.FindStringSubmatch(string(buf[:n]))
		if m == nil || (m[2] != lab.ifB && m[3] != lab.ifB) {
			continue // not ours
		}
		// nf_log_syslog writes IPv6 addresses in full.
		lines = append(lines, fmt.Sprintf("%s %s>%s %s", m[1], net.ParseIP(m[4]), net.ParseIP(m[5]), m[6]))
	}
	return lines
}

// TestLegacyTraceMatchesKernelLog sends the same traffic twice through an
// iptables-legacy rule set: once with hooktrace listening, once with the
// kernel's text logger, and compares the steps each reports.
func TestLegacyTraceMatchesKernelLog(t *testing.T) {
	lab := newLegacyLab(t)
	before := legacyState(t, lab)

	reference := kernelTraceLines(t, lab)
	if strings.Join(reference, "\n") != strings.Join(wantLegacySteps, "\n") {
		t.Errorf("the kernel's log:\n%s\nwant:\n%s", strings.Join(reference, "\n"), strings.Join(wantLegacySteps, "\n"))
	}

	p := &eventPrinter{}
	var stderr bytes.Buffer
	lt := startLegacyTracing(lab.namespaces, func(string, int) string { return lab.ifB }, p, &stderr)
	t.Cleanup(func() { lt.close() })
	if len(lt.sources) != 1 {
		t.Fatalf("not listening: %s", stderr.String())
	}
	for fam := range map[uint8]bool{nflog.LogFamilyIPv4: true, nflog.LogFamilyIPv6: true} {
		if got, _ := nflog.ReadLogBackend(lab.namespaces[0].Path, fam); got != nflog.NfnetlinkLog {
			t.Errorf("backend of family %d during the run: %s", fam, got)
		}
	}
	lab.traffic(t)
	for deadline := time.Now().Add(2 * time.Second); p.len() < len(wantLegacySteps) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if err := lt.close(); err != nil {
		t.Error(err)
	}
	rules, err := nflog.LoadLegacyRules(lab.namespaces[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range p.events {
		got = append(got, stepOf(t, ev, rules))
		if ev.IIFName != lab.ifB || ev.Netns != lab.b || ev.Hook == "" || (ev.Type == nflog.TraceRule && ev.IptablesRule == "") {
			t.Errorf("event lacks what the record gives: %+v", ev)
		}
	}
	if strings.Join(got, "\n") != strings.Join(reference, "\n") {
		t.Errorf("hooktrace:\n%s\nthe kernel's log:\n%s", strings.Join(got, "\n"), strings.Join(reference, "\n"))
	}
	if stderr.Len() != 0 {
		t.Errorf("warnings: %s", stderr.String())
	}
	wantVerdicts := []string{"accept", "jump icmpchk", "continue", "accept", "accept", "jump udpchk", "accept", "accept", "jump udpchk", "return", "drop", "accept", "accept"}
	var verdicts []string
	for _, ev := range p.events {
		v, _ := ev.Outcome()
		verdicts = append(verdicts, strings.TrimSpace(v.String()+" "+ev.JumpTarget))
	}
	if strings.Join(verdicts, ",") != strings.Join(wantVerdicts, ",") {
		t.Errorf("verdicts %v, want %v", verdicts, wantVerdicts)
	}
	if after := legacyState(t, lab); after != before {
		t.Errorf("state after the run:\n%s\nbefore:\n%s", after, before)
	}
}

// legacyState is what a run must leave as it found: every nf_log backend
// of the traced namespace and of the test's, and the legacy rules without
// counters.
func legacyState(t *testing.T, lab *legacyLab) string {
	t.Helper()
	var b strings.Builder
	for _, path := range []string{"", lab.namespaces[0].Path} {
		for fam := uint8(0); fam <= 12; fam++ {
			v, err := nflog.ReadLogBackend(path, fam)
			if err != nil {
				continue // families this kernel has no sysctl for
			}
			fmt.Fprintf(&b, "%q nf_log/%d %s\n", path, fam, v)
		}
	}
	counters := regexp.MustCompile(`\[\d+:\d+\]`)
	for _, save := range []string{"iptables-legacy-save", "ip6tables-legacy-save"} {
		out := nstest.Run(t, "ip", "netns", "exec", lab.b, save)
		for _, l := range strings.Split(out, "\n") {
			if !strings.HasPrefix(l, "#") {
				b.WriteString(counters.ReplaceAllString(l, "") + "\n")
			}
		}
	}
	return b.String()
}

// legacyHelperEnv makes the test binary a process that only does
// startLegacyTracing in a namespace, prints "ready", and waits to be
// killed: hooktrace killed mid-run.
const legacyHelperEnv = "HOOKTRACE_LEGACY_HELPER_NETNS"

func TestLegacyTraceHelperProcess(t *testing.T) {
	ns := os.Getenv(legacyHelperEnv)
	if ns == "" {
		t.Skip("helper for TestLegacyBackendsRestoredAfterKill")
	}
	nss, err := capture.NamespaceSpec(ns)
	if err != nil {
		t.Fatal(err)
	}
	lt := startLegacyTracing(nss, nil, nil, os.Stderr)
	if len(lt.sources) != 1 {
		t.Fatal("not listening")
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	lt.close()
}

// startKilledRun runs the helper, waits until it set the backends, and
// kills it with SIGKILL.
func startKilledRun(t *testing.T, lab *legacyLab) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLegacyTraceHelperProcess$")
	cmd.Env = append(os.Environ(), legacyHelperEnv+"="+lab.b)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Kill()
	cmd.Wait()
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("helper: %q", line)
	}
	if got, _ := nflog.ReadLogBackend(lab.namespaces[0].Path, nflog.LogFamilyIPv4); got != nflog.NfnetlinkLog {
		t.Fatalf("backend after the kill: %s, want the killed run's %s", got, nflog.NfnetlinkLog)
	}
}

// TestLegacyBackendsRestoredAfterKill kills a run with SIGKILL: the next
// hooktrace warns, `hooktrace cleanup` restores; and the cleanup guard
// restores by itself when the run it watches dies.
func TestLegacyBackendsRestoredAfterKill(t *testing.T) {
	lab := newLegacyLab(t)
	before := legacyState(t, lab)
	t.Cleanup(func() { exec.Command(hooktraceBin, "cleanup", "--netns", lab.b).Run() })

	t.Run("cleanup", func(t *testing.T) {
		startKilledRun(t, lab)
		_, _, errOut := runBinary(t, "--netns", lab.b, "-c", "1", "--duration", "100ms")
		if !strings.Contains(errOut, "network namespace "+lab.b+" still has nf_log backend nfnetlink_log for IPv4 from a hooktrace run that was killed (it was nf_log_ipv4)") {
			t.Errorf("no warning about the leftover: %s", errOut)
		}
		code, out, errOut := runBinary(t, "cleanup", "--netns", lab.b)
		if code != 0 || !strings.Contains(out, "restored nf_log backend for IPv4 in network namespace "+lab.b+" to nf_log_ipv4") ||
			!strings.Contains(out, "restored nf_log backend for IPv6 in network namespace "+lab.b+" to nf_log_ipv6") {
			t.Errorf("cleanup: exit %d: %s %s", code, out, errOut)
		}
		if after := legacyState(t, lab); after != before {
			t.Errorf("state after cleanup:\n%s\nbefore:\n%s", after, before)
		}
		if _, out, _ := runBinary(t, "cleanup", "--netns", lab.b); !strings.Contains(out, "nothing to clean") {
			t.Errorf("second cleanup: %s", out)
		}
	})
	t.Run("guard", func(t *testing.T) {
		startKilledRun(t, lab)
		// The guard holds a pipe from the run it watches; closing it is
		// the run ending.
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		var errb bytes.Buffer
		guard := exec.Command(hooktraceBin, "cleanup", "--guard", "--netns", "/run/netns/"+lab.b)
		guard.Stdin, guard.Stderr = r, &errb
		if err := guard.Start(); err != nil {
			t.Fatal(err)
		}
		r.Close()
		time.Sleep(100 * time.Millisecond)
		if got, _ := nflog.ReadLogBackend(lab.namespaces[0].Path, nflog.LogFamilyIPv4); got != nflog.NfnetlinkLog {
			t.Errorf("the guard restored before its run ended: %s", got)
		}
		w.Close()
		if err := guard.Wait(); err != nil {
			t.Errorf("guard: %v: %s", err, errb.String())
		}
		if after := legacyState(t, lab); after != before {
			t.Errorf("state after the guard:\n%s\nbefore:\n%s", after, before)
		}
	})
}

// runBinary runs the hooktrace binary.
func runBinary(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(hooktraceBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// TestLegacyTraceEndToEnd runs `hooktrace --trace` on the legacy rule set
// and ends it every way it can end: the TRACE lines are printed, and the
// backends and rules are as they were afterwards.
func TestLegacyTraceEndToEnd(t *testing.T) {
	lab := newLegacyLab(t)
	before := legacyState(t, lab)
	t.Cleanup(func() { exec.Command(hooktraceBin, "cleanup", "--netns", lab.b).Run() })
	for _, end := range []string{"duration", "SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"} {
		t.Run(end, func(t *testing.T) {
			args := []string{"--trace", "--netns", lab.b, "--print", "icmp or udp or icmp6"}
			if end == "duration" {
				args = append([]string{"--duration", "2s"}, args...)
			}
			r := startHooktrace(t, args...)
			lab.traffic(t)
			time.Sleep(300 * time.Millisecond)
			switch end {
			case "duration":
			case "SIGKILL":
				r.cmd.Process.Kill()
			default:
				r.cmd.Process.Signal(map[string]syscall.Signal{"SIGINT": syscall.SIGINT, "SIGTERM": syscall.SIGTERM, "SIGHUP": syscall.SIGHUP}[end])
			}
			r.cmd.Wait()
			if end != "SIGKILL" && !strings.Contains(r.stdout.String(), "iptables-legacy ip filter INPUT (input prio 0) rule num 2 -A INPUT -p icmp -j icmpchk => jump icmpchk") {
				t.Errorf("no legacy TRACE step printed:\n%s\n%s", r.stdout.String(), r.stderr.String())
			}
			// After SIGKILL the guard restores once it sees hooktrace gone.
			deadline := time.Now().Add(5 * time.Second)
			for after := legacyState(t, lab); after != before; after = legacyState(t, lab) {
				if time.Now().After(deadline) {
					t.Fatalf("state after %s:\n%s\nbefore:\n%s", end, after, before)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
