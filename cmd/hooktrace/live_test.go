package main

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
)

// sendTraffic sends, from nsA to nsB (10.77.0.2): two pings, three UDP
// datagrams to port 9999 and one TCP connection to port 8080 that sends
// "hello" and closes. It returns once everything was acknowledged.
func sendTraffic(t *testing.T, nsA, nsB, dst string) {
	t.Helper()
	var udpConn *net.UDPConn
	var ln net.Listener
	nstest.In(t, nsB, func() error {
		var err error
		if udpConn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(dst), Port: 9999}); err != nil {
			return err
		}
		ln, err = net.Listen("tcp4", dst+":8080")
		return err
	})
	defer udpConn.Close()
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- err
			return
		}
		buf := make([]byte, 16)
		n, _ := c.Read(buf)
		if string(buf[:n]) != "hello" {
			err = fmt.Errorf("server read %q", buf[:n])
		}
		c.Close()
		accepted <- err
	}()
	nstest.Run(t, "ip", "netns", "exec", nsA, "ping", "-c", "2", "-i", "0.2", "-W", "2", dst)
	nstest.In(t, nsA, func() error {
		u, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(dst), Port: 9999})
		if err != nil {
			return err
		}
		defer u.Close()
		for i := 0; i < 3; i++ {
			if _, err := u.Write([]byte(fmt.Sprintf("datagram %d", i))); err != nil {
				return err
			}
		}
		c, err := net.Dial("tcp4", dst+":8080")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	})
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for i := 0; i < 3; i++ {
		if _, err := udpConn.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
}

// count tallies records by "summary-prefix @ where".
func countBy(recs []record, match func(record) bool) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		if match(r) {
			m[r.where()]++
		}
	}
	return m
}

func TestLiveVethBetweenNamespaces(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t, "hxta"), nstest.New(t, "hxtb")
	nstest.Veth(t, a, "va", "10.77.0.1/24", b, "vb", "10.77.0.2/24")
	pcap := filepath.Join(t.TempDir(), "live.pcapng")
	r := startHooktrace(t, "--netns", a+","+b, "--json", "-w", pcap, "ip and net 10.77.0.0/24")
	sendTraffic(t, a, b, "10.77.0.2")
	r.stop(t)
	packets, stats := parseLiveRecords(t, r.stdout.Bytes())
	if stats == nil {
		t.Fatalf("no stats record; stderr: %s", r.stderr.String())
	}
	if stats.KernelDrops != 0 || stats.HooktraceDrops != 0 || int(stats.Received) != len(packets) {
		t.Errorf("stats %+v for %d packet records", *stats, len(packets))
	}
	outA, inB := a+"/va out", b+"/vb in"
	inA, outB := a+"/va in", b+"/vb out"
	for _, tc := range []struct {
		what  string
		match func(record) bool
		want  map[string]int
	}{
		{"echo requests", func(r record) bool { return strings.Contains(r.Summary, "echo request") }, map[string]int{outA: 2, inB: 2}},
		{"echo replies", func(r record) bool { return strings.Contains(r.Summary, "echo reply") }, map[string]int{outB: 2, inA: 2}},
		{"UDP to 9999", func(r record) bool {
			return strings.HasPrefix(r.Summary, "UDP 10.77.0.1:") && strings.Contains(r.Summary, "> 10.77.0.2:9999")
		}, map[string]int{outA: 3, inB: 3}},
		{"SYN", func(r record) bool { return strings.Contains(r.Summary, "> 10.77.0.2:8080 [S]") }, map[string]int{outA: 1, inB: 1}},
		{"SYN-ACK", func(r record) bool {
			return strings.Contains(r.Summary, "10.77.0.2:8080 > 10.77.0.1") && strings.Contains(r.Summary, "[S.]")
		}, map[string]int{outB: 1, inA: 1}},
	} {
		got := countBy(packets, tc.match)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.what, got, tc.want)
		}
	}
	for _, p := range packets {
		if !strings.Contains(p.Summary, "10.77.0.") {
			t.Errorf("packet outside the test's traffic: %s", p.Summary)
		}
	}
	checkPcapngRoundTrip(t, pcap, packets)
}

// checkPcapngRoundTrip reads the written pcapng back with hooktrace and
// tshark and compares it with what was printed live.
func checkPcapngRoundTrip(t *testing.T, pcap string, live []record) {
	t.Helper()
	out, err := exec.Command(hooktraceBin, "--json", "-r", pcap).Output()
	if err != nil {
		t.Fatalf("replay %s: %v", pcap, err)
	}
	replayed, _ := parseLiveRecords(t, out)
	if len(replayed) != len(live) {
		t.Fatalf("replayed %d packets, captured %d", len(replayed), len(live))
	}
	for i := range live {
		if live[i].where() != replayed[i].where() || live[i].Summary != replayed[i].Summary {
			t.Errorf("packet %d: live %s %s, replayed %s %s", i+1, live[i].where(), live[i].Summary, replayed[i].where(), replayed[i].Summary)
		}
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Log("tshark not installed: pcapng not checked with it")
		return
	}
	ts, err := exec.Command("tshark", "-r", pcap, "-T", "fields", "-e", "frame.interface_name", "-e", "frame.packet_flags_direction", "-e", "ip.src", "-e", "ip.dst").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", pcap, err, ts)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(ts)), "\n") {
		if !strings.HasPrefix(l, "Running as user") && l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) != len(live) {
		t.Fatalf("tshark reads %d packets, hooktrace captured %d:\n%s", len(lines), len(live), ts)
	}
	for i, l := range lines {
		f := strings.Split(l, "\t")
		dir := map[string]string{"1": "in", "2": "out", "0x1": "in", "0x2": "out", "0x00000001": "in", "0x00000002": "out"}[f[1]]
		if got := f[0] + " " + dir; got != live[i].where() {
			t.Errorf("packet %d: tshark says %q, hooktrace %q", i+1, got, live[i].where())
		}
		if !strings.Contains(live[i].Summary, f[2]) || !strings.Contains(live[i].Summary, f[3]) {
			t.Errorf("packet %d: tshark addresses %s > %s, hooktrace %s", i+1, f[2], f[3], live[i].Summary)
		}
	}
}

func TestLiveStopsOnCountDurationAndSignals(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t, "hxtsa"), nstest.New(t, "hxtsb")
	nstest.Veth(t, a, "va", "10.82.0.1/24", b, "vb", "10.82.0.2/24")

	t.Run("count", func(t *testing.T) {
		r := startHooktrace(t, "--netns", b, "-c", "3", "--json", "icmp")
		done := make(chan error, 1)
		go func() { done <- r.cmd.Wait() }()
		nstest.Run(t, "ip", "netns", "exec", a, "ping", "-c", "5", "-i", "0.2", "10.82.0.2")
		if err := <-done; err != nil {
			t.Fatalf("exit: %v: %s", err, r.stderr.String())
		}
		packets, stats := parseLiveRecords(t, r.stdout.Bytes())
		if len(packets) != 3 || stats == nil {
			t.Errorf("%d packets and stats %v, want 3 and a stats record", len(packets), stats)
		}
	})
	t.Run("duration", func(t *testing.T) {
		r := startHooktrace(t, "--netns", b, "--duration", "500ms", "--print", "icmp")
		if err := r.cmd.Wait(); err != nil {
			t.Fatalf("exit: %v: %s", err, r.stderr.String())
		}
		if !strings.Contains(r.stderr.String(), "packets captured") {
			t.Errorf("no counters on stderr: %q", r.stderr.String())
		}
	})
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			pcap := filepath.Join(t.TempDir(), "s.pcapng")
			r := startHooktrace(t, "--netns", a+","+b, "-w", pcap, "icmp")
			nstest.Run(t, "ip", "netns", "exec", a, "ping", "-c", "2", "-i", "0.2", "10.82.0.2")
			r.cmd.Process.Signal(sig)
			if err := r.cmd.Wait(); err != nil {
				t.Fatalf("exit after %v: %v: %s", sig, err, r.stderr.String())
			}
			out, err := exec.Command(hooktraceBin, "-r", pcap).Output()
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			// Two requests and two replies, each seen on both veth ends.
			if n := strings.Count(string(out), "\n"); n != 8 {
				t.Errorf("file holds %d packets, want 8:\n%s", n, out)
			}
		})
	}
}

func TestLiveErrorsAreOneLine(t *testing.T) {
	nstest.RequireRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv (util-linux) is needed to run hooktrace without privileges")
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
		hooktraceBin, "--print", "-i", "lo")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("unprivileged run: %v, want exit 2: %s", err, out)
	}
	msg := strings.TrimSpace(string(out))
	if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "CAP_NET_RAW") || !strings.Contains(msg, "setcap") {
		t.Errorf("unprivileged run says %q, want one line naming CAP_NET_RAW and how to grant it", msg)
	}
}
