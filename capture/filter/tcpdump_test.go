package filter

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// ethernetExprs are checked against tcpdump on the Ethernet corpus. Each must
// keep some packets of it and drop others.
var ethernetExprs = []string{
	"host 10.0.0.1",
	"src host 10.0.0.1",
	"dst host 10.0.0.1",
	"host 2001:db8::1",
	"net 10.0.0.0/8",
	"src net 172.16.0.0/12",
	"dst net 10.0.0.0 mask 255.255.255.0",
	"ip6 net 2001:db8:1::/48",
	"port 53",
	"src port 443",
	"dst port 80",
	"portrange 8000-8100",
	"port 53 or port 5353",
	"tcp",
	"udp",
	"icmp",
	"icmp6",
	"arp",
	"ip",
	"ip6",
	"vlan",
	"vlan 100",
	"vlan and tcp",
	"vlan and ip6",
	"vlan 10 and vlan",
	"mpls",
	"mpls 100",
	"mpls and host 10.0.0.1",
	"tcp[tcpflags] & tcp-syn != 0",
	"tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
	"tcp[tcpflags] == tcp-rst",
	"tcp[13] = 0x12",
	"proto 47",
	"ip proto gre",
	"udp port 4789",
	"ether broadcast",
	"ether multicast",
	"ip multicast",
	"ether host 02:00:00:00:00:01",
	"ether src 52:54:00:12:34:56",
	"ether proto 0x88cc",
	"stp",
	"less 100",
	"greater 200",
	"len >= 1000 and len <= 1500",
	"not tcp",
	"not arp",
	"tcp and not port 22",
	"udp or icmp",
	"udp and not port 53",
	"not (host 10.0.0.1 or host 10.0.0.2)",
	"(tcp or udp) and not ip6",
	"tcp port 443 and not host 10.0.0.1",
	"ip[8] < 64",
	"ip[6:2] & 0x1fff != 0",
	"ip[0] & 0xf > 5",
	"ip[0] | 0x40 = 0x45",
	"icmp[icmptype] == icmp-echo",
	"ip6 and tcp",
	"ip6 and udp port 53",
	"icmp6 and ip6[40] == 128",
	"ip6 protochain 6",
	"tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
	"ip[2:2] / (ip[8] - 64) > 1",
	"ip[2:2] % ip[9] = 0",
	"ip[2:2] * 3 > 3000",
	"ip[8] << 2 > 200",
	"ip[8] << (ip[9] & 3) > 100",
	"ip[8] >> (ip[9] & 7) > 10",
	"ip[8] ^ 0xff > 200",
	"ip[8] ^ ip[9] > 100",
	"ip[8] * ip[9] > 1000",
	"ip[2:2] - ip[8] > 500",
	"-ip[8] & 0xff > 200",
	"tcp[0:2] > tcp[2:2]",
	"tcp[0:2] >= tcp[2:2]",
	"udp[0:2] = udp[2:2]",
}

// sll2Exprs are checked on the Linux cooked v2 corpus.
var sll2Exprs = []string{
	"tcp", "udp port 53", "host 10.0.0.1", "ip6", "not udp", "inbound", "outbound",
	"ifindex 2", "arp", "icmp or icmp6", "tcp[tcpflags] & tcp-syn != 0", "less 80",
	"ip6 and tcp", "greater 500",
}

// rawExprs are checked on the raw IP corpus.
var rawExprs = []string{
	"tcp", "ip6", "host 10.0.0.1", "port 443", "icmp", "less 60", "udp port 53",
	"net 192.168.0.0/16", "ip6 and tcp", "not ip", "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
	"ip[6:2] & 0x1fff != 0", "greater 1000",
}

func TestMatchAgreesWithTcpdumpEthernet(t *testing.T) {
	testAgainstTcpdump(t, layers.LinkTypeEthernet, ethernetCorpus(t), ethernetExprs)
}

func TestMatchAgreesWithTcpdumpSLL2(t *testing.T) {
	testAgainstTcpdump(t, layers.LinkTypeLinuxSLL2, sll2Corpus(t), sll2Exprs)
}

func TestMatchAgreesWithTcpdumpRawIP(t *testing.T) {
	testAgainstTcpdump(t, layers.LinkTypeRaw, rawIPCorpus(t), rawExprs)
}

// testAgainstTcpdump writes pkts to a capture file, and for each expression
// checks that Compile gives the program tcpdump -ddd prints, that String is
// tcpdump -d, and that Match keeps exactly the packets tcpdump prints.
func testAgainstTcpdump(t *testing.T, linkType layers.LinkType, pkts []testPacket, exprs []string) {
	tcpdump := tcpdumpPath(t)
	file := writeCapture(t, linkType, pkts)
	t.Logf("%d expressions on %d packets of link type %d", len(exprs), len(pkts), linkType)
	for _, expr := range exprs {
		t.Run(expr, func(t *testing.T) {
			t.Parallel()
			p, err := Compile(expr, int(linkType), maxSnaplen)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if want := tcpdumpOutput(t, tcpdump, "-d", "-r", file, "--", expr); p.String() != want {
				t.Errorf("String() =\n%s\ntcpdump -d =\n%s", p.String(), want)
			}
			if want := parseDDD(t, tcpdumpOutput(t, tcpdump, "-ddd", "-r", file, "--", expr)); !equalRaw(p.Instructions(), want) {
				t.Errorf("Instructions() = %v, tcpdump -ddd = %v", p.Instructions(), want)
			}
			want := tcpdumpKept(t, tcpdump, file, expr, len(pkts))
			kept := 0
			for i, pkt := range pkts {
				got := p.Match(pkt.data, pkt.wireLen)
				if got {
					kept++
				}
				if got != want[i] {
					t.Errorf("packet %d (%s, %d of %d bytes): Match = %v, tcpdump kept it: %v", i, pkt.name, len(pkt.data), pkt.wireLen, got, want[i])
				}
			}
			t.Logf("kept %d of %d packets", kept, len(pkts))
			if kept == 0 || kept == len(pkts) {
				t.Errorf("expression keeps %d of %d packets: the corpus does not exercise it", kept, len(pkts))
			}
		})
	}
}

// tcpdumpPath returns where tcpdump is. Without it the test is skipped, unless
// the CI variable is set, in which case it fails.
func tcpdumpPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("tcpdump")
	if err == nil {
		return path
	}
	if _, ci := os.LookupEnv("CI"); ci {
		t.Fatalf("tcpdump is required in CI: %v", err)
	}
	t.Skipf("tcpdump is not installed: %v", err)
	return ""
}

// tcpdumpOutput runs tcpdump with args and returns its standard output.
func tcpdumpOutput(t *testing.T, tcpdump string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(tcpdump, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	return stdout.String()
}

// tcpdumpKept returns which of the n packets in file tcpdump prints for expr,
// telling them apart by their timestamps.
func tcpdumpKept(t *testing.T, tcpdump, file, expr string, n int) []bool {
	t.Helper()
	out := tcpdumpOutput(t, tcpdump, "-nn", "-tt", "--time-stamp-precision=micro", "-r", file, "--", expr)
	kept := make([]bool, n)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		i, ok := packetIndex(sc.Text())
		if !ok {
			continue // a continuation line
		}
		if i < 0 || i >= n || kept[i] {
			t.Fatalf("tcpdump printed an unexpected timestamp: %q", sc.Text())
		}
		kept[i] = true
	}
	return kept
}

// packetIndex reads the "SECONDS.MICROS" that starts a tcpdump -tt line and
// returns the number of the packet stamped so.
func packetIndex(line string) (int, bool) {
	sec, usec, ok := strings.Cut(strings.SplitN(line, " ", 2)[0], ".")
	if !ok || len(usec) != 6 {
		return 0, false
	}
	s, err1 := strconv.ParseInt(sec, 10, 64)
	u, err2 := strconv.ParseInt(usec, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	d := time.Unix(s, u*1000).Sub(corpusStart)
	if d%time.Millisecond != 0 {
		return -1, true
	}
	return int(d / time.Millisecond), true
}

// parseDDD parses tcpdump -ddd output: a count, then "code jt jf k" lines.
func parseDDD(t *testing.T, out string) []bpf.RawInstruction {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	n, err := strconv.Atoi(lines[0])
	if err != nil || n != len(lines)-1 {
		t.Fatalf("tcpdump -ddd printed %d instructions after count %q", len(lines)-1, lines[0])
	}
	raw := make([]bpf.RawInstruction, n)
	for i, l := range lines[1:] {
		var op, jt, jf, k uint64
		if _, err := fmt.Sscan(l, &op, &jt, &jf, &k); err != nil {
			t.Fatalf("parse tcpdump -ddd line %q: %v", l, err)
		}
		raw[i] = bpf.RawInstruction{Op: uint16(op), Jt: uint8(jt), Jf: uint8(jf), K: uint32(k)}
	}
	return raw
}

func equalRaw(a, b []bpf.RawInstruction) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
