package capture_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
)

// seen is one captured frame, as the tests compare it.
type seen struct {
	where   string // netns/iface dir
	summary string
}

// collector drains a Live capture in the background.
type collector struct {
	live   *capture.Live
	mu     sync.Mutex
	frames []seen
	done   chan struct{}
}

func startCapture(t *testing.T, opts capture.LiveOptions) *collector {
	t.Helper()
	var notices []string
	var nmu sync.Mutex
	opts.Notify = func(s string) { nmu.Lock(); notices = append(notices, s); nmu.Unlock() }
	live, err := capture.StartLive(context.Background(), opts)
	if err != nil {
		t.Fatalf("start capture: %v", err)
	}
	c := &collector{live: live, done: make(chan struct{})}
	t.Cleanup(func() {
		live.Close()
		<-c.done
		nmu.Lock()
		defer nmu.Unlock()
		t.Logf("notices: %q", notices)
	})
	go func() {
		defer close(c.done)
		dec := decode.NewDecoder()
		for {
			f, err := live.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			s := seen{where: f.Netns + "/" + f.Iface + " " + f.Dir.String(), summary: string(dec.Decode(f).AppendSummary(nil))}
			c.mu.Lock()
			c.frames = append(c.frames, s)
			c.mu.Unlock()
		}
	}()
	return c
}

// stop ends the capture and returns every frame.
func (c *collector) stop() []seen {
	c.live.Stop()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames
}

// count tallies frames whose summary contains every part, by place.
func count(frames []seen, parts ...string) map[string]int {
	m := map[string]int{}
next:
	for _, f := range frames {
		for _, p := range parts {
			// A part starting with ^ must begin the summary.
			if prefix, ok := strings.CutPrefix(p, "^"); ok && !strings.HasPrefix(f.summary, prefix) ||
				!ok && !strings.Contains(f.summary, p) {
				continue next
			}
		}
		m[f.where]++
	}
	return m
}

func expect(t *testing.T, frames []seen, want map[string]int, parts ...string) {
	t.Helper()
	if got := count(frames, parts...); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%q: got %v, want %v", parts, got, want)
	}
}

func ping(t *testing.T, ns, dst string, n int) {
	t.Helper()
	nstest.Run(t, "ip", "netns", "exec", ns, "ping", "-c", fmt.Sprint(n), "-i", "0.2", "-W", "2", dst)
}

func TestLiveBridgeOfThreeNamespaces(t *testing.T) {
	nstest.RequireRoot(t)
	br := nstest.New(t, "hxtbr")
	nstest.Run(t, "ip", "-n", br, "link", "add", "br0", "type", "bridge")
	nstest.Run(t, "ip", "-n", br, "link", "set", "br0", "up")
	var hosts []string
	for i := 1; i <= 3; i++ {
		h := nstest.New(t, fmt.Sprintf("hxth%d", i))
		hosts = append(hosts, h)
		port := fmt.Sprintf("p%d", i)
		nstest.Veth(t, h, "eth0", fmt.Sprintf("10.79.0.%d/24", i), br, port, "")
		nstest.Run(t, "ip", "-n", br, "link", "set", port, "master", "br0")
	}
	nss, err := capture.NamespaceSpec(strings.Join(append([]string{br}, hosts...), ","))
	if err != nil {
		t.Fatal(err)
	}
	c := startCapture(t, capture.LiveOptions{Namespaces: nss, Filter: "icmp"})
	ping(t, hosts[0], "10.79.0.3", 2)
	frames := c.stop()
	expect(t, frames, map[string]int{
		hosts[0] + "/eth0 out": 2, br + "/p1 in": 2, br + "/p3 out": 2, hosts[2] + "/eth0 in": 2,
	}, "echo request", "10.79.0.1 > 10.79.0.3")
	for _, f := range frames {
		if strings.HasPrefix(f.where, hosts[1]+"/") || strings.HasPrefix(f.where, br+"/p2") {
			t.Errorf("unicast seen on the third host's path: %v", f)
		}
	}
}

func TestLiveVXLANSeenOuterAndInner(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t, "hxtxa"), nstest.New(t, "hxtxb")
	nstest.Veth(t, a, "u1", "10.80.0.1/24", b, "u2", "10.80.0.2/24")
	for _, side := range []struct{ ns, local, remote, addr string }{{a, "10.80.0.1", "10.80.0.2", "10.42.0.1/24"}, {b, "10.80.0.2", "10.80.0.1", "10.42.0.2/24"}} {
		nstest.Run(t, "ip", "-n", side.ns, "link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789",
			"local", side.local, "remote", side.remote)
		nstest.Run(t, "ip", "-n", side.ns, "addr", "add", side.addr, "dev", "vx0")
		nstest.Run(t, "ip", "-n", side.ns, "link", "set", "vx0", "up")
	}
	nss, err := capture.NamespaceSpec(a + "," + b)
	if err != nil {
		t.Fatal(err)
	}
	c := startCapture(t, capture.LiveOptions{Namespaces: nss})
	ping(t, a, "10.42.0.2", 2)
	frames := c.stop()
	// The same inner echo request: encapsulated on both underlay ends, plain
	// on both vxlan devices.
	expect(t, frames, map[string]int{a + "/vx0 out": 2, b + "/vx0 in": 2}, "^ICMP 10.42.0.1 > 10.42.0.2 echo request")
	expect(t, frames, map[string]int{a + "/u1 out": 2, b + "/u2 in": 2}, "VXLAN vni 42 10.80.0.1:", "> 10.80.0.2:4789 | ICMP 10.42.0.1 > 10.42.0.2 echo request")
}

func TestLiveNamespacesComeAndGo(t *testing.T) {
	nstest.RequireRoot(t)
	first := nstest.New(t, "hxtw")
	nss, err := capture.NamespaceSpec("all")
	if err != nil {
		t.Fatal(err)
	}
	c := startCapture(t, capture.LiveOptions{Namespaces: nss, WatchNamespaces: true, Filter: "icmp and net 10.81.0.0/24"})
	// A namespace pair created after the capture started is picked up.
	late := nstest.New(t, "hxtl")
	nstest.Veth(t, first, "wa", "10.81.0.1/24", late, "wb", "10.81.0.2/24")
	deadline := time.Now().Add(10 * time.Second)
	for !captured(c.live, late, "wb") {
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s not captured after 10 s: %+v", late, c.live.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ping(t, first, "10.81.0.2", 1)
	// A namespace that vanishes is closed; capture elsewhere goes on.
	nstest.Delete(t, late)
	for captured(c.live, late, "wb") {
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s still captured after it was deleted", late)
		}
		time.Sleep(50 * time.Millisecond)
	}
	frames := c.stop()
	expect(t, frames, map[string]int{first + "/wa out": 1, late + "/wb in": 1}, "ICMP 10.81.0.1 > 10.81.0.2 echo request")
}

// captured says whether an interface is being captured now.
func captured(l *capture.Live, ns, iface string) bool {
	for _, s := range l.Stats() {
		if s.Netns == ns && s.Iface == iface && s.Open {
			return true
		}
	}
	return false
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestLiveReleasesEverything(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t, "hxtra"), nstest.New(t, "hxtrb")
	nstest.Veth(t, a, "ra", "10.83.0.1/24", b, "rb", "10.83.0.2/24")
	nss, err := capture.NamespaceSpec(a + "," + b)
	if err != nil {
		t.Fatal(err)
	}
	run := func() {
		c := startCapture(t, capture.LiveOptions{Namespaces: nss, Filter: "icmp"})
		ping(t, a, "10.83.0.2", 1)
		if frames := c.stop(); len(frames) != 4 {
			t.Errorf("captured %d frames, want 4", len(frames))
		}
	}
	run() // the first run loads what stays loaded (netlink sockets of the library, ...)
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		run()
	}
	// Goroutines may take a moment to finish returning after Stop.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := openFDs(t); n > fds {
		t.Errorf("open file descriptors grew from %d to %d over 5 captures", fds, n)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines grew from %d to %d over 5 captures:\n%s", goroutines, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestLiveInjectMergesFrames checks that frames from another source come
// out of Next, merged in time order, that a consumer far behind makes
// Inject shed (and say so), and that nothing is taken after Stop.
func TestLiveInjectMergesFrames(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t, "hxtinj")
	nss, err := capture.NamespaceSpec(ns)
	if err != nil {
		t.Fatal(err)
	}
	live, err := capture.StartLive(context.Background(), capture.LiveOptions{Namespaces: nss, Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	base := time.Now().Add(-time.Second)
	frame := func(i int) capture.Frame {
		return capture.Frame{Time: base.Add(time.Duration(i) * time.Millisecond), Netns: ns, Iface: "nflog:7", LinkType: 239, Data: []byte{2, 0, 0, 7, byte(i)}, Len: 5}
	}
	// Two injections whose times interleave come out merged.
	if n, _ := live.Inject([]capture.Frame{frame(0), frame(2), frame(4)}); n != 3 {
		t.Fatalf("Inject took %d of 3", n)
	}
	if n, _ := live.Inject([]capture.Frame{frame(1), frame(3)}); n != 2 {
		t.Fatalf("Inject took %d of 2", n)
	}
	for want := 0; want < 5; want++ {
		f, err := live.Next()
		if err != nil {
			t.Fatal(err)
		}
		if f.Iface != "nflog:7" || int(f.Data[4]) != want || !f.Time.Equal(frame(want).Time) {
			t.Fatalf("frame %d: got %s %v %x", want, f.Iface, f.Time, f.Data)
		}
	}
	// Nobody reads: the pool runs out, and Inject says how much it took.
	many := make([]capture.Frame, 400000)
	for i := range many {
		many[i] = frame(10)
	}
	if n, stopped := live.Inject(many); n == 0 || n >= len(many) || stopped {
		t.Fatalf("Inject of %d frames with no reader took %d: want some, not all", len(many), n)
	}
	live.Stop()
	if n, stopped := live.Inject([]capture.Frame{frame(5)}); n != 0 || !stopped {
		t.Fatalf("Inject after Stop took %d frames, stopped %v", n, stopped)
	}
}

// TestLiveNamespaceGoneAtStart starts a capture of "all" with a namespace
// deleted after it was listed: it is left out with a notice, and the
// capture of the others starts (tests and containers delete namespaces at
// any time).
func TestLiveNamespaceGoneAtStart(t *testing.T) {
	nstest.RequireRoot(t)
	keep, gone := nstest.New(t, "hxtk"), nstest.New(t, "hxtg")
	nss, err := capture.NamespaceSpec("all")
	if err != nil {
		t.Fatal(err)
	}
	nstest.Delete(t, gone)
	var notices []string
	var mu sync.Mutex
	live, err := capture.StartLive(context.Background(), capture.LiveOptions{Namespaces: nss, WatchNamespaces: true,
		Notify: func(s string) { mu.Lock(); notices = append(notices, s); mu.Unlock() }})
	if err != nil {
		t.Fatalf("start capture with a namespace gone: %v", err)
	}
	defer live.Close()
	mu.Lock()
	said := strings.Join(notices, "\n")
	mu.Unlock()
	if !strings.Contains(said, "network namespace "+gone+" vanished as capture started") {
		t.Errorf("notices %q do not say %s vanished", said, gone)
	}
	found := false
	for _, s := range live.Stats() {
		found = found || s.Netns == keep
		if s.Netns == gone {
			t.Errorf("the deleted namespace is captured: %+v", s)
		}
	}
	if !found {
		t.Errorf("namespace %s not captured: %+v", keep, live.Stats())
	}
}

// TestLiveInterfaceNamesKept: the capture names every interface it
// captured, by index, after that interface was deleted and after the
// capture stopped (a save from the UI once the capture ended needs them).
func TestLiveInterfaceNamesKept(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t, "hxtnm")
	for _, d := range []string{"d0", "d1"} {
		nstest.Run(t, "ip", "-n", ns, "link", "add", d, "type", "veth", "peer", "name", d+"p")
		nstest.Run(t, "ip", "-n", ns, "link", "set", d, "up")
	}
	index := func(iface string) int {
		var i int
		var name string
		fmt.Sscanf(nstest.Run(t, "ip", "-n", ns, "-o", "link", "show", iface), "%d: %s", &i, &name)
		if i == 0 {
			t.Fatalf("no index for %s in %s", iface, ns)
		}
		return i
	}
	d0, d1 := index("d0"), index("d1")
	nss, err := capture.NamespaceSpec(ns)
	if err != nil {
		t.Fatal(err)
	}
	c := startCapture(t, capture.LiveOptions{Namespaces: nss})
	if got := c.live.InterfaceName(ns, d0); got != "d0" {
		t.Fatalf("InterfaceName(%s, %d) = %q while captured, want d0", ns, d0, got)
	}
	// An interface deleted while captured is still named.
	nstest.Run(t, "ip", "-n", ns, "link", "del", "d1")
	deadline := time.Now().Add(10 * time.Second)
	for captured(c.live, ns, "d1") {
		if time.Now().After(deadline) {
			t.Fatalf("d1 still captured after it was deleted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := c.live.InterfaceName(ns, d1); got != "d1" {
		t.Errorf("InterfaceName(%s, %d) = %q after d1 was deleted, want d1", ns, d1, got)
	}
	c.stop()
	for want, i := range map[string]int{"d0": d0, "d1": d1} {
		if got := c.live.InterfaceName(ns, i); got != want {
			t.Errorf("InterfaceName(%s, %d) = %q after Stop, want %s", ns, i, got, want)
		}
	}
	if got := c.live.InterfaceName(ns, 1000); got != "" {
		t.Errorf("InterfaceName of an index never captured = %q", got)
	}
}
