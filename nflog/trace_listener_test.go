package nflog

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/fixtures/netns"
	"golang.org/x/sys/unix"
)

// traceCollector reads a listener until it is closed and keeps what came.
type traceCollector struct {
	l    *TraceListener
	mu   sync.Mutex
	got  []Trace
	err  error // the error that stopped Next
	done chan struct{}
}

// collectTraces opens a listener on topo's receiving namespace and reads
// it in the background; it is closed when the test ends.
func collectTraces(t *testing.T, topo traceTopo, bufBytes int) *traceCollector {
	t.Helper()
	l, err := ListenTraces(topo.recv, topo.nsPath(), bufBytes)
	if err != nil {
		t.Fatalf("ListenTraces: %v", err)
	}
	c := &traceCollector{l: l, done: make(chan struct{})}
	t.Cleanup(func() { c.stop(t) })
	go c.run()
	return c
}

// collectTracesLater opens a listener on topo's receiving namespace and reads it
// only when read is called, so that the socket buffer fills meanwhile.
func collectTracesLater(t *testing.T, topo traceTopo, bufBytes int) (c *traceCollector, read func()) {
	t.Helper()
	l, err := ListenTraces(topo.recv, topo.nsPath(), bufBytes)
	if err != nil {
		t.Fatalf("ListenTraces: %v", err)
	}
	c = &traceCollector{l: l, done: make(chan struct{})}
	t.Cleanup(func() { c.stop(t) })
	return c, func() { go c.run() }
}

func (c *traceCollector) run() {
	defer close(c.done)
	for {
		tr, err := c.l.Next()
		c.mu.Lock()
		if err != nil {
			c.err = err
			c.mu.Unlock()
			return
		}
		c.got = append(c.got, tr)
		c.mu.Unlock()
	}
}

// stop closes the listener and checks that Next ended with net.ErrClosed.
func (c *traceCollector) stop(t *testing.T) {
	t.Helper()
	if err := c.l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
		t.Fatal("Next did not return after Close")
	}
	if c.err != nil && !errors.Is(c.err, net.ErrClosed) {
		t.Errorf("Next stopped with %v, want net.ErrClosed", c.err)
	}
}

func (c *traceCollector) traces() []Trace {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Trace(nil), c.got...)
}

// traceSettle waits until count() reaches want, or has not changed for quiet.
func traceSettle(count func() int, want int, quiet time.Duration) {
	last, since := -1, time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		n := count()
		if n >= want {
			return
		}
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) > quiet {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTraceListenerMatchesNftMonitor sends two pings and a dropped TCP SYN
// through a traced ruleset and checks that, for every trace id, the
// listener got the same table, chain, handle and verdict steps as
// `nft -a monitor trace` printed.
func TestTraceListenerMatchesNftMonitor(t *testing.T) {
	topo := newTraceTopo(t, traceTestRuleset)
	c := collectTraces(t, topo, 4<<20)
	mon := startTraceNftMonitor(t, topo.recv, 1)

	topo.ping(t, "-c", "2", "-i", "0.2")
	topo.dialTCP(t)
	// Each ping: pre rule, pre end of chain, pre policy, in jump, icmpchk
	// accept. The SYN: pre rule, end, policy, in drop.
	const events = 2*5 + 4
	traceSettle(func() int { return len(c.traces()) }, events, time.Second)
	traceSettle(func() int { return len(mon.Lines()) }, 2*6+5, time.Second)

	got := c.traces()
	t.Logf("%d events, %d distinct trace ids for 3 packets", len(got), len(traceSteps(got)))
	if len(got) != events {
		t.Errorf("got %d events, want %d", len(got), events)
	}
	compareTraceSteps(t, traceSteps(got), traceNftSteps(t, mon.Lines()))
	if t.Failed() {
		t.Logf("nft printed:\n%s", strings.Join(mon.Lines(), "\n"))
	}
	checkListenerTraces(t, topo, got)
	if c.l.Lost() != 0 {
		t.Errorf("Lost() = %d, want 0", c.l.Lost())
	}
}

// checkListenerTraces checks what nft does not print: the namespace name,
// receive times, the end-of-chain events and how each packet ended.
// Packets are told apart by their events, not their ids: two pings in a
// row may well get the same id (the same skb address, hash and iif).
func checkListenerTraces(t *testing.T, topo traceTopo, got []Trace) {
	t.Helper()
	ends := 0
	var outcomes []string
	for _, tr := range got {
		if tr.Netns != topo.recv || tr.Time.IsZero() || tr.Family != 1 || tr.NFProto != unix.NFPROTO_IPV4 {
			t.Errorf("event %+v: want netns %s, a time, family inet, nfproto ipv4", tr, topo.recv)
		}
		if tr.Type == TraceRule && tr.Handle == 0 {
			ends++
			if tr.Verdict != VerdictContinue || tr.Chain != "pre" {
				t.Errorf("end of chain event %+v: want continue in pre", tr)
			}
		}
		if v, _ := tr.Outcome(); tr.Chain != "pre" && (v == VerdictAccept || v == VerdictDrop) {
			outcomes = append(outcomes, tr.Chain+" "+v.String())
		}
	}
	if ends != 3 {
		t.Errorf("%d end-of-chain events, want 3 (one per packet)", ends)
	}
	if want := "icmpchk accept,icmpchk accept,in drop"; strings.Join(outcomes, ",") != want {
		t.Errorf("packets ended %v, want %s", outcomes, want)
	}
}

// TestTraceListenerNoLossWithLargeBuffer floods 2000 pings through the
// traced ruleset with a 64 MiB buffer, read while it runs: every event
// arrives and nothing is reported lost.
func TestTraceListenerNoLossWithLargeBuffer(t *testing.T) {
	topo := newTraceTopo(t, traceTestRuleset)
	c := collectTraces(t, topo, 64<<20)
	sent := traceFloodPings(t, topo)
	want := 5 * sent
	traceSettle(func() int { return len(c.traces()) }, want, 2*time.Second)
	got := len(c.traces())
	t.Logf("%d pings sent, %d events received, Lost() = %d", sent, got, c.l.Lost())
	if got != want || c.l.Lost() != 0 {
		t.Errorf("got %d events and Lost() = %d, want %d events and no loss", got, c.l.Lost(), want)
	}
}

// TestTraceListenerCountsLoss floods 2000 pings while nobody reads a
// listener with a small buffer: the kernel drops events, and Lost says so.
func TestTraceListenerCountsLoss(t *testing.T) {
	topo := newTraceTopo(t, traceTestRuleset)
	c, read := collectTracesLater(t, topo, 64<<10)
	sent := traceFloodPings(t, topo)
	read()
	want := 5 * sent
	traceSettle(func() int { return len(c.traces()) }, want, time.Second)
	got := len(c.traces())
	t.Logf("%d pings sent, %d events received, Lost() = %d", sent, got, c.l.Lost())
	if got >= want {
		t.Fatalf("got all %d events through a 64 KiB buffer nobody read", got)
	}
	if c.l.Lost() == 0 {
		t.Errorf("%d of %d events arrived, but Lost() = 0", got, want)
	}
}

var tracePingTransmitted = regexp.MustCompile(`(\d+) packets transmitted`)

// traceFloodPings sends 2000 pings as fast as replies come and returns how
// many were sent.
func traceFloodPings(t *testing.T, topo traceTopo) int {
	t.Helper()
	out := topo.ping(t, "-f", "-c", "2000")
	m := tracePingTransmitted.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ping printed no statistics:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestTraceListenerCloseUnblocksNext closes a listener while Next waits.
func TestTraceListenerCloseUnblocksNext(t *testing.T) {
	netns.RequireRoot(t)
	ns := netns.New(t, "hxttc")
	l, err := ListenTraces(ns, "/run/netns/"+ns, 0)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := l.Next()
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Next after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Next still blocked 2 s after Close")
	}
	if _, err := l.Next(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Next on a closed listener: %v, want net.ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestListenTracesOwnNamespace opens a listener in hooktrace's own
// namespace ("" path).
func TestListenTracesOwnNamespace(t *testing.T) {
	netns.RequireRoot(t)
	l, err := ListenTraces("host", "", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestListenTracesNoSuchNamespace(t *testing.T) {
	_, err := ListenTraces("hxtgone", "/run/netns/hxt-no-such-namespace", 0)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "netns hxtgone") {
		t.Errorf("ListenTraces on a missing namespace: %v", err)
	}
}

func TestTraceErrNamesCapability(t *testing.T) {
	err := traceErr("join nf_tables trace group", "hxs", os.NewSyscallError("setsockopt", unix.EPERM))
	want := "join nf_tables trace group in netns hxs: setsockopt: operation not permitted (hooktrace needs CAP_NET_ADMIN"
	if !strings.HasPrefix(err.Error(), want) || !errors.Is(err, unix.EPERM) {
		t.Errorf("got %q, want it to start with %q and wrap EPERM", err, want)
	}
}

// TestListenTracesBufferFallback runs the child test below in a new user
// and network namespace: there the process may join the trace group of
// its own namespace but may not use SO_RCVBUFFORCE, so ListenTraces must
// fall back to SO_RCVBUF and say so.
func TestListenTracesBufferFallback(t *testing.T) {
	netns.RequireRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--net",
		os.Args[0], "-test.run=^TestTraceBufferFallbackChild$", "-test.v")
	cmd.Env = append(os.Environ(), "HXT_TRACE_FALLBACK_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestTraceBufferFallbackChild") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}

func TestTraceBufferFallbackChild(t *testing.T) {
	if os.Getenv("HXT_TRACE_FALLBACK_CHILD") == "" {
		t.Skip("run by TestListenTracesBufferFallback")
	}
	l, err := ListenTraces("userns", "", 8<<20)
	var be *TraceBufferError
	if !errors.As(err, &be) || l == nil {
		t.Fatalf("ListenTraces: listener %v, error %v; want a listener and a *TraceBufferError", l, err)
	}
	defer l.Close()
	if !errors.Is(err, unix.EPERM) || be.Want != 8<<20 || be.Got <= 0 {
		t.Errorf("TraceBufferError %+v: want EPERM, Want 8 MiB and the granted size", be)
	}
	t.Log(err)
}
