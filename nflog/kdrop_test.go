package nflog

import (
	"encoding/binary"
	"errors"
	"math/rand"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
)

// dropWait bounds how long a test waits for a drop it provoked.
const dropWait = 5 * time.Second

// dropTopo is a client and a server namespace joined by a veth:
// kc 10.231.0.1/24 in the client, ks 10.231.0.2/24 in the server.
type dropTopo struct {
	client, server   string
	clientInode      uint64
	serverInode      uint64
	serverIfindex    uint32
	serverMAC        string
	clientAddr, addr netip.Addr // client's and server's veth addresses
}

// newDropTopo builds the namespaces; they go, with every sysctl set in
// them, when the test ends.
func newDropTopo(t *testing.T) *dropTopo {
	t.Helper()
	nstest.RequireRoot(t)
	d := &dropTopo{
		client:     nstest.New(t, "hxtkc"),
		server:     nstest.New(t, "hxtks"),
		clientAddr: netip.MustParseAddr("10.231.0.1"),
		addr:       netip.MustParseAddr("10.231.0.2"),
	}
	nstest.Veth(t, d.client, "kc", "10.231.0.1/24", d.server, "ks", "10.231.0.2/24")
	var err error
	if d.clientInode, err = namespaceInode("/run/netns/" + d.client); err != nil {
		t.Fatal(err)
	}
	if d.serverInode, err = namespaceInode("/run/netns/" + d.server); err != nil {
		t.Fatal(err)
	}
	d.serverIfindex, d.serverMAC = linkIndexMAC(t, d.server, "ks")
	return d
}

// linkIndexMAC reads an interface's index and MAC address in a namespace.
func linkIndexMAC(t *testing.T, ns, dev string) (uint32, string) {
	t.Helper()
	f := strings.Fields(nstest.Run(t, "ip", "-n", ns, "-o", "link", "show", dev))
	idx, err := strconv.ParseUint(strings.TrimSuffix(f[0], ":"), 10, 32)
	if err != nil {
		t.Fatalf("ifindex of %s in %s: %q", dev, ns, f[0])
	}
	for i := range f[:len(f)-1] {
		if f[i] == "link/ether" {
			return uint32(idx), f[i+1]
		}
	}
	t.Fatalf("no MAC address for %s in %s", dev, ns)
	return 0, ""
}

// sysctl sets a sysctl inside a namespace (namespaced settings only, so
// that deleting the namespace undoes it).
func sysctl(t *testing.T, ns, key, value string) {
	t.Helper()
	nstest.Run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", key+"="+value)
}

// startDropProbe starts a probe and a goroutine feeding its drops into
// the returned channel; both end when the test does.
func startDropProbe(t *testing.T, opts DropProbeOptions) (*DropProbe, <-chan KernelDrop) {
	t.Helper()
	p, err := StartDropProbe(opts)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan KernelDrop, 1<<14)
	done := make(chan error, 1)
	go func() {
		defer close(ch)
		for {
			d, err := p.Next()
			if err != nil {
				done <- err
				return
			}
			select {
			case ch <- d:
			default: // a busy host: the test's drops are looked for among the latest
			}
		}
	}()
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close probe: %v", err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("Next after Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Next still blocked 5s after Close")
		}
	})
	return p, ch
}

// waitDrop returns the first drop match accepts, failing the test after
// dropWait.
func waitDrop(t *testing.T, ch <-chan KernelDrop, what string, match func(KernelDrop) bool) KernelDrop {
	t.Helper()
	timeout := time.After(dropWait)
	for {
		select {
		case d, ok := <-ch:
			if !ok {
				t.Fatalf("%s: probe ended", what)
			}
			if match(d) {
				return d
			}
		case <-timeout:
			t.Fatalf("%s: no such drop within %v", what, dropWait)
		}
	}
}

// packetTuple is what the tests check in a dropped packet's headers.
type packetTuple struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16
	tcpFlags     uint8
}

// ipv4Tuple reads an IPv4 header and the ports after it.
func ipv4Tuple(b []byte) (packetTuple, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return packetTuple{}, false
	}
	ihl := int(b[0]&0xf) * 4
	p := packetTuple{
		src:   netip.AddrFrom4([4]byte(b[12:16])),
		dst:   netip.AddrFrom4([4]byte(b[16:20])),
		proto: b[9],
	}
	if len(b) >= ihl+4 {
		p.sport = binary.BigEndian.Uint16(b[ihl:])
		p.dport = binary.BigEndian.Uint16(b[ihl+2:])
	}
	if p.proto == syscall.IPPROTO_TCP && len(b) >= ihl+14 {
		p.tcpFlags = b[ihl+13]
	}
	return p, true
}

// isPacket matches an IPv4 drop to a destination address and port.
func isPacket(d KernelDrop, dst netip.Addr, proto uint8, dport uint16) bool {
	p, ok := ipv4Tuple(d.Network)
	return ok && p.dst == dst && p.proto == proto && p.dport == dport
}

// sendDropUDP sends one datagram from ns, from src (zero: any) to dst.
func sendDropUDP(t *testing.T, ns string, src netip.Addr, dst netip.AddrPort, payload string) {
	t.Helper()
	nstest.In(t, ns, func() error {
		laddr := &net.UDPAddr{}
		if src.IsValid() {
			laddr.IP = src.AsSlice()
		}
		c, err := net.ListenUDP("udp4", laddr)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteToUDPAddrPort([]byte(payload), dst)
		return err
	})
}

// randomPort picks a port nobody in a fresh namespace listens on.
func randomPort() uint16 { return uint16(20000 + rand.Intn(30000)) }

// checkDrop checks what every BPF drop of the tests should carry.
func checkDrop(t *testing.T, d KernelDrop, reason string, inode uint64, ifindex uint32) {
	t.Helper()
	if d.Reason != reason {
		t.Errorf("reason %q, want %q", d.Reason, reason)
	}
	if d.NetnsInode != inode {
		t.Errorf("netns inode %d, want %d", d.NetnsInode, inode)
	}
	if ifindex != 0 && d.Ifindex != ifindex {
		t.Errorf("ifindex %d, want %d", d.Ifindex, ifindex)
	}
	if d.Protocol != 0x0800 {
		t.Errorf("protocol %#x, want 0x0800", d.Protocol)
	}
	if d.Probable {
		t.Error("a BPF drop is marked probable")
	}
	if !strings.Contains(d.Location, "+0x") {
		t.Errorf("location %q is not symbol+offset", d.Location)
	}
	if age := time.Since(d.Time); age < 0 || age > dropWait+time.Second {
		t.Errorf("drop time %v is %v from now", d.Time, age)
	}
}

// sameInTracefs waits for the tracepoint's own record of a BPF drop in
// the tracefs probe's stream: same reason, location and protocol, within
// 50ms. It is how the tests know the BPF program reads the tracepoint's
// arguments as the kernel means them.
func sameInTracefs(t *testing.T, tr <-chan KernelDrop, d KernelDrop) {
	t.Helper()
	waitDrop(t, tr, "tracefs record of "+d.Reason+" at "+d.Location, func(e KernelDrop) bool {
		dt := e.Time.Sub(d.Time)
		return e.Reason == d.Reason && e.Location == d.Location && e.Protocol == d.Protocol &&
			dt > -50*time.Millisecond && dt < 50*time.Millisecond
	})
}

// startBoth starts a BPF probe (limited to inodes when given) and a
// tracefs probe to compare it with.
func startBoth(t *testing.T, inodes ...uint64) (bpf, tracefs <-chan KernelDrop) {
	t.Helper()
	p, b := startDropProbe(t, DropProbeOptions{NetnsInodes: inodes})
	if p.Mode() != DropProbeBPF {
		t.Fatalf("BPF probe did not load: %s", p.FallbackReason())
	}
	_, tr := startDropProbe(t, DropProbeOptions{DisableBPF: true})
	return b, tr
}

func TestDropProbeUDPNoSocket(t *testing.T) {
	topo := newDropTopo(t)
	b, tr := startBoth(t, topo.serverInode)
	port := randomPort()
	sendDropUDP(t, topo.client, netip.Addr{}, netip.AddrPortFrom(topo.addr, port), "hooktrace no socket")
	d := waitDrop(t, b, "UDP to a closed port", func(d KernelDrop) bool {
		return isPacket(d, topo.addr, syscall.IPPROTO_UDP, port)
	})
	checkDrop(t, d, "NO_SOCKET", topo.serverInode, topo.serverIfindex)
	if p, _ := ipv4Tuple(d.Network); p.src != topo.clientAddr {
		t.Errorf("source %v, want %v", p.src, topo.clientAddr)
	}
	if !strings.HasSuffix(string(d.Network), "hooktrace no socket") {
		t.Errorf("packet %q does not end with the payload sent", d.Network)
	}
	sameInTracefs(t, tr, d)
}

// TestDropProbeNetnsFilter checks that a probe limited to one namespace
// does not report another's drops until that one is allowed.
func TestDropProbeNetnsFilter(t *testing.T) {
	topo := newDropTopo(t)
	p, b := startDropProbe(t, DropProbeOptions{NetnsInodes: []uint64{topo.serverInode}})
	if p.Mode() != DropProbeBPF {
		t.Fatalf("BPF probe did not load: %s", p.FallbackReason())
	}
	loop := netip.MustParseAddr("127.0.0.1")
	first, second := randomPort(), randomPort()
	sendDropUDP(t, topo.client, netip.Addr{}, netip.AddrPortFrom(loop, first), "not reported")
	// A drop in the allowed namespace, sent after: once it arrives, the
	// earlier one would have too.
	marker := randomPort()
	sendDropUDP(t, topo.client, netip.Addr{}, netip.AddrPortFrom(topo.addr, marker), "marker")
	waitDrop(t, b, "drop in the allowed namespace", func(d KernelDrop) bool {
		if d.NetnsInode != topo.serverInode {
			t.Errorf("drop in netns %d reported by a probe limited to %d: %+v", d.NetnsInode, topo.serverInode, d)
		}
		return isPacket(d, topo.addr, syscall.IPPROTO_UDP, marker)
	})
	if err := p.AllowNetns(topo.clientInode); err != nil {
		t.Fatal(err)
	}
	sendDropUDP(t, topo.client, netip.Addr{}, netip.AddrPortFrom(loop, second), "reported")
	d := waitDrop(t, b, "drop in the namespace allowed later", func(d KernelDrop) bool {
		if isPacket(d, loop, syscall.IPPROTO_UDP, first) {
			t.Errorf("drop reported from a namespace not allowed then: %+v", d)
		}
		return isPacket(d, loop, syscall.IPPROTO_UDP, second)
	})
	checkDrop(t, d, "NO_SOCKET", topo.clientInode, 1)
}

// TestDropProbeRPFilter: the server's reverse-path filter is strict and
// its route back to the client's second address goes elsewhere (a veth
// pair of its own: this kernel has no dummy devices), so the packet dies
// as IP_RPFILTER.
func TestDropProbeRPFilter(t *testing.T) {
	topo := newDropTopo(t)
	spoof := netip.MustParseAddr("10.232.0.1")
	nstest.Run(t, "ip", "-n", topo.client, "addr", "add", spoof.String()+"/32", "dev", "kc")
	// The server would not answer ARP for a source it rejects.
	nstest.Run(t, "ip", "-n", topo.client, "neigh", "replace", topo.addr.String(), "lladdr", topo.serverMAC, "dev", "kc", "nud", "permanent")
	nstest.Run(t, "ip", "-n", topo.server, "link", "add", "kd", "type", "veth", "peer", "name", "kd2")
	nstest.Run(t, "ip", "-n", topo.server, "link", "set", "kd", "up")
	nstest.Run(t, "ip", "-n", topo.server, "link", "set", "kd2", "up")
	nstest.Run(t, "ip", "-n", topo.server, "route", "add", "10.232.0.0/24", "dev", "kd")
	sysctl(t, topo.server, "net.ipv4.conf.all.rp_filter", "1")
	sysctl(t, topo.server, "net.ipv4.conf.ks.rp_filter", "1")
	b, tr := startBoth(t, topo.serverInode)
	port := randomPort()
	sendDropUDP(t, topo.client, spoof, netip.AddrPortFrom(topo.addr, port), "hooktrace rp_filter")
	d := waitDrop(t, b, "packet from a source routed elsewhere", func(d KernelDrop) bool {
		return isPacket(d, topo.addr, syscall.IPPROTO_UDP, port)
	})
	checkDrop(t, d, "IP_RPFILTER", topo.serverInode, topo.serverIfindex)
	if p, _ := ipv4Tuple(d.Network); p.src != spoof {
		t.Errorf("source %v, want %v", p.src, spoof)
	}
	sameInTracefs(t, tr, d)
}

// TestDropProbeNoRoute: the server forwards but has no route to the
// destination: IP_INNOROUTES (after an ICMP network unreachable).
func TestDropProbeNoRoute(t *testing.T) {
	topo := newDropTopo(t)
	nowhere := netip.MustParseAddr("10.233.0.9")
	nstest.Run(t, "ip", "-n", topo.client, "route", "add", "10.233.0.0/24", "via", topo.addr.String())
	sysctl(t, topo.server, "net.ipv4.ip_forward", "1")
	b, tr := startBoth(t, topo.serverInode)
	port := randomPort()
	sendDropUDP(t, topo.client, netip.Addr{}, netip.AddrPortFrom(nowhere, port), "hooktrace no route")
	d := waitDrop(t, b, "packet with no route", func(d KernelDrop) bool {
		return isPacket(d, nowhere, syscall.IPPROTO_UDP, port)
	})
	checkDrop(t, d, "IP_INNOROUTES", topo.serverInode, topo.serverIfindex)
	sameInTracefs(t, tr, d)
}

// TestDropProbeTCPClosedPort: a SYN to a closed port is answered with a
// reset and dropped as NO_SOCKET.
func TestDropProbeTCPClosedPort(t *testing.T) {
	topo := newDropTopo(t)
	b, tr := startBoth(t, topo.serverInode)
	port := randomPort()
	nstest.In(t, topo.client, func() error {
		c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(topo.addr, port).String(), 2*time.Second)
		if err == nil {
			c.Close()
			return errors.New("connected to a port nobody listens on")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
		return nil
	})
	d := waitDrop(t, b, "SYN to a closed port", func(d KernelDrop) bool {
		return isPacket(d, topo.addr, syscall.IPPROTO_TCP, port)
	})
	checkDrop(t, d, "NO_SOCKET", topo.serverInode, topo.serverIfindex)
	if p, _ := ipv4Tuple(d.Network); p.tcpFlags != 0x02 {
		t.Errorf("TCP flags %#x, want SYN (0x02)", p.tcpFlags)
	}
	sameInTracefs(t, tr, d)
}

// TestDropProbeTracefsFallback forces the fallback: drops come without
// packet or namespace and are marked probable; the instance and a mount
// the probe made are gone after Close.
func TestDropProbeTracefsFallback(t *testing.T) {
	topo := newDropTopo(t)
	mountedBefore := isTracefs(tracefsRoot)
	p, err := StartDropProbe(DropProbeOptions{DisableBPF: true, NetnsInodes: []uint64{topo.serverInode}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Mode() != DropProbeTracefs || p.FallbackReason() != "BPF disabled by option" {
		t.Fatalf("mode %v, reason %q", p.Mode(), p.FallbackReason())
	}
	if !strings.Contains(p.Note(), "time only") {
		t.Errorf("note %q does not say the match is by time only", p.Note())
	}
	instance := p.src.(*tracefsDrops).dir
	if _, err := os.Stat(instance); err != nil {
		t.Fatalf("instance: %v", err)
	}
	const n = 5
	start := time.Now()
	for i := 0; i < n; i++ {
		sendDropUDP(t, topo.client, netip.Addr{}, netip.AddrPortFrom(topo.addr, randomPort()), "fallback")
	}
	got := 0
	deadline := time.Now().Add(dropWait)
	for got < n && time.Now().Before(deadline) {
		d, err := nextBefore(p, deadline)
		if err != nil {
			t.Fatal(err)
		}
		if d.Reason != "NO_SOCKET" || !strings.HasPrefix(d.Location, "__udp4_lib_rcv+0x") {
			continue
		}
		if !d.Probable || d.Network != nil || d.NetnsInode != 0 || d.Protocol != 0x0800 {
			t.Errorf("fallback drop %+v: want Probable, no packet, no netns, protocol 0x0800", d)
		}
		if d.Time.Before(start.Add(-time.Millisecond)) || d.Time.After(time.Now()) {
			t.Errorf("drop time %v outside the test's %v..now", d.Time, start)
		}
		got++
	}
	if got < n {
		t.Fatalf("%d UDP NO_SOCKET drops from tracefs, want %d", got, n)
	}
	if st := p.Stats(); st.Received < n {
		t.Errorf("stats %+v: received < %d", st, n)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(instance); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("instance still there after Close: %v", err)
	}
	if mounted := isTracefs(tracefsRoot); mounted != mountedBefore {
		t.Errorf("tracefs mounted at %s %v after Close, %v before", tracefsRoot, mounted, mountedBefore)
	}
	if _, err := os.Stat(privateTracefsPath(os.Getpid())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("private tracefs mount point still there after Close: %v", err)
	}
}

// nextBefore is Next with a deadline, closing the probe when it passes.
func nextBefore(p *DropProbe, deadline time.Time) (KernelDrop, error) {
	timer := time.AfterFunc(time.Until(deadline), func() { p.Close() })
	defer timer.Stop()
	d, err := p.Next()
	if errors.Is(err, net.ErrClosed) && !time.Now().Before(deadline) {
		return d, errors.New("no drop before the deadline")
	}
	return d, err
}

// TestDropProbeSkipsNotSpecified: by default NOT_SPECIFIED is filtered in
// the kernel; with KeepNotSpecified a probe may report it. The check is
// on the program's filter: no reported drop may carry it.
func TestDropProbeSkipsNotSpecified(t *testing.T) {
	topo := newDropTopo(t)
	_, b := startDropProbe(t, DropProbeOptions{})
	port := randomPort()
	sendDropUDP(t, topo.client, netip.Addr{}, netip.AddrPortFrom(topo.addr, port), "marker")
	waitDrop(t, b, "marker drop", func(d KernelDrop) bool {
		if d.Reason == "NOT_SPECIFIED" || d.Reason == "CONSUMED" || d.Reason == "NOT_DROPPED_YET" {
			t.Errorf("skipped reason reported: %+v", d)
		}
		return isPacket(d, topo.addr, syscall.IPPROTO_UDP, port)
	})
}

// TestCleanupDropProbe: an instance named after a process that is gone
// is removed; one of a live process (this one's running probe) stays.
func TestCleanupDropProbe(t *testing.T) {
	nstest.RequireRoot(t)
	p, _ := startDropProbe(t, DropProbeOptions{DisableBPF: true})
	dead := deadPID(t)
	leftover := filepath.Join(filepath.Dir(p.src.(*tracefsDrops).dir), dropInstancePrefix+strconv.Itoa(dead))
	if err := os.Mkdir(leftover, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(leftover) })
	// What a killed probe leaves: the event enabled in the instance.
	if err := os.WriteFile(filepath.Join(leftover, "events/skb/kfree_skb/enable"), []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	removed, err := CleanupDropProbe()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != filepath.Base(leftover) {
		t.Errorf("removed %v, want [%s]", removed, filepath.Base(leftover))
	}
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover instance still there: %v", err)
	}
	own := p.src.(*tracefsDrops).dir
	if _, err := os.Stat(own); err != nil {
		t.Errorf("the running probe's instance was removed: %v", err)
	}
}

// deadPID returns the PID of a process that has ended.
func deadPID(t *testing.T) int {
	t.Helper()
	proc, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proc.Wait(); err != nil {
		t.Fatal(err)
	}
	return proc.Pid
}

// TestDropReasonNamesAgree: the BPF probe names reasons from BTF, the
// fallback from the event's format; the running kernel's two must agree.
func TestDropReasonNamesAgree(t *testing.T) {
	nstest.RequireRoot(t)
	layout, err := loadKernelLayout()
	if err != nil {
		t.Fatal(err)
	}
	root, err := acquireTracefs()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := releaseTracefs(); err != nil {
			t.Error(err)
		}
	}()
	format, err := os.ReadFile(filepath.Join(root, "events/skb/kfree_skb/format"))
	if err != nil {
		t.Fatal(err)
	}
	fromFormat, err := parseReasonFormat(string(format))
	if err != nil {
		t.Fatal(err)
	}
	for v, name := range fromFormat {
		if layout.reasons[v] != name {
			t.Errorf("reason %d: %q in the format, %q in BTF", v, name, layout.reasons[v])
		}
	}
}

// TestCleanupDropProbeMount: a private tracefs mount left by a process
// that is gone is unmounted and its directory removed.
func TestCleanupDropProbeMount(t *testing.T) {
	nstest.RequireRoot(t)
	dir := privateTracefsPath(deadPID(t))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tracefs", dir, "tracefs", 0, ""); err != nil {
		os.Remove(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Unmount(dir, 0)
		os.Remove(dir)
	})
	removed, err := CleanupDropProbe()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, dir) {
		t.Errorf("removed %v, not %s", removed, dir)
	}
	if isTracefs(dir) {
		t.Errorf("%s still mounted", dir)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there: %v", dir, err)
	}
}

// BenchmarkDropProbeCost measures what the probe adds to a dropped
// packet: UDP datagrams to a closed port of another namespace, sent with
// no probe, with the BPF probe (limited to that namespace, or to another
// one: the cost of a drop nobody asked for) and with the tracefs
// fallback.
func BenchmarkDropProbeCost(b *testing.B) {
	nstest.RequireRoot(b)
	for _, c := range []struct {
		name  string
		opts  *DropProbeOptions
		other bool
	}{
		{"off", nil, false},
		{"bpf", &DropProbeOptions{}, false},
		{"bpf-other-netns", &DropProbeOptions{}, true},
		{"tracefs", &DropProbeOptions{DisableBPF: true}, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			client, server := nstest.New(b, "hxtkc"), nstest.New(b, "hxtks")
			nstest.Veth(b, client, "kc", "10.231.0.1/24", server, "ks", "10.231.0.2/24")
			var p *DropProbe
			if c.opts != nil {
				opts := *c.opts
				ino, err := namespaceInode("/run/netns/" + server)
				if err != nil {
					b.Fatal(err)
				}
				if c.other {
					ino++
				}
				opts.NetnsInodes = []uint64{ino}
				if p, err = StartDropProbe(opts); err != nil {
					b.Fatal(err)
				}
				go func() {
					for {
						if _, err := p.Next(); err != nil {
							return
						}
					}
				}()
			}
			dst := netip.MustParseAddrPort("10.231.0.2:9")
			b.ResetTimer()
			nstest.In(b, client, func() error {
				conn, err := net.ListenUDP("udp4", &net.UDPAddr{})
				if err != nil {
					return err
				}
				defer conn.Close()
				msg := []byte("hooktrace benchmark")
				for i := 0; i < b.N; i++ {
					conn.WriteToUDPAddrPort(msg, dst) // ICMP errors coming back may fail a write; the drop happened
				}
				return nil
			})
			b.StopTimer()
			if p != nil {
				st := p.Stats()
				p.Close()
				b.ReportMetric(float64(st.Lost), "lost")
			}
		})
	}
}
