package nflog

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/fixtures/netns"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

var recordTraces = flag.Bool("record-traces", false,
	"record real nf_tables trace messages into testdata/traces and testdata/fuzz/FuzzParseTrace")

// traceRecordRuleset gives the recorded packets every kind of event: rule
// verdicts continue, jump, accept and drop, the end of a base chain, a
// return from a regular chain, policy, a mark and conntrack state.
const traceRecordRuleset = `table inet hxtest {
	chain pre {
		type filter hook prerouting priority -300;
		ip saddr 10.84.0.1 meta nftrace set 1
		udp dport 9 meta mark set 0x2a
	}
	chain in {
		type filter hook input priority 0; policy accept;
		ct state new counter
		icmp type echo-request jump icmpchk
		udp dport 9 jump udpchk
		tcp dport 9 drop
	}
	chain icmpchk {
		ip saddr 10.84.0.1 counter accept
	}
	chain udpchk {
		counter
	}
}
`

// traceRecordNames names a recording by the IP protocol of its packet.
var traceRecordNames = map[byte]string{
	unix.IPPROTO_ICMP: "icmp-echo-jump-accept",
	unix.IPPROTO_TCP:  "tcp-syn-drop",
	unix.IPPROTO_UDP:  "udp-mark-jump-return",
}

// TestRecordTraces sends a ping, a TCP SYN and a UDP datagram through
// traceRecordRuleset and saves the raw trace messages of each packet,
// with what `nft -a monitor trace` printed for it, in testdata/traces;
// each message also becomes a seed of FuzzParseTrace.
//
//	go test ./nflog -run TestRecordTraces -record-traces
func TestRecordTraces(t *testing.T) {
	if !*recordTraces {
		t.Skip("pass -record-traces to record new messages from the kernel")
	}
	topo := newTraceTopo(t, traceRecordRuleset)
	raw := listenRawTraces(t, topo.nsPath())
	mon := startTraceNftMonitor(t, topo.recv, 1)
	topo.ping(t, "-c", "1")
	topo.dialTCP(t)
	topo.sendUDP(t)
	traceSettle(func() int { return len(raw.payloads()) }, 1<<30, time.Second)

	byID := map[uint32][][]byte{}
	var order []uint32
	for _, p := range raw.payloads() {
		tr, err := ParseTrace(p)
		if err != nil {
			t.Fatalf("recorded message does not parse: %v\n%x", err, p)
		}
		if byID[tr.ID] == nil {
			order = append(order, tr.ID)
		}
		byID[tr.ID] = append(byID[tr.ID], p)
	}
	if len(order) != len(traceRecordNames) {
		t.Fatalf("recorded %d packets, want %d", len(order), len(traceRecordNames))
	}
	nftLines := map[uint32][]string{}
	for _, line := range mon.Lines() {
		s, err := parseNftTraceLine(line)
		if err != nil {
			t.Fatal(err)
		}
		nftLines[s.ID] = append(nftLines[s.ID], line)
	}
	for _, id := range order {
		writeTraceRecording(t, byID[id], nftLines[id])
	}
}

// writeTraceRecording writes one packet's messages and nft's lines.
func writeTraceRecording(t *testing.T, msgs [][]byte, nftLines []string) {
	t.Helper()
	first, _ := ParseTrace(msgs[0])
	if len(first.Network) < 10 {
		t.Fatalf("first event of %08x has no network header", first.ID)
	}
	name := traceRecordNames[first.Network[9]]
	var b strings.Builder
	fmt.Fprintf(&b, "# Real NFT_MSG_TRACE payloads of one packet: the nfgenmsg and the attributes\n")
	fmt.Fprintf(&b, "# after the 16-byte nlmsghdr, one message per line in arrival order, as\n")
	fmt.Fprintf(&b, "# Linux %s sent them for traceRecordRuleset in trace_record_test.go.\n", kernelRelease(t))
	fmt.Fprintf(&b, "# Recorded with: go test ./nflog -run TestRecordTraces -record-traces\n")
	fmt.Fprintf(&b, "# What `nft -a monitor trace` (%s) printed for them:\n", strings.TrimSpace(netns.Run(t, "nft", "--version")))
	for _, line := range nftLines {
		fmt.Fprintf(&b, "# nft| %s\n", line)
	}
	for _, m := range msgs {
		fmt.Fprintf(&b, "%x\n", m)
	}
	writeTestdata(t, filepath.Join("testdata", "traces", name+".hex"), b.String())
	for i, m := range msgs {
		seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", m)
		writeTestdata(t, filepath.Join("testdata", "fuzz", "FuzzParseTrace", fmt.Sprintf("%s-%d", name, i+1)), seed)
	}
}

func writeTestdata(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

func kernelRelease(t *testing.T) string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(u.Release[:])
}

// rawTraces keeps the payloads of the trace messages a plain netlink
// socket received, as the kernel sent them.
type rawTraces struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (r *rawTraces) payloads() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.msgs...)
}

// listenRawTraces joins the trace group in the namespace at nsPath with a
// socket of its own, independent of TraceListener.
func listenRawTraces(t *testing.T, nsPath string) *rawTraces {
	t.Helper()
	f, err := os.Open(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: int(f.Fd())})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.JoinGroup(traceGroup); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	r := &rawTraces{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msgs, err := conn.Receive()
			if err != nil {
				return
			}
			r.mu.Lock()
			for _, m := range msgs {
				if IsTraceMessage(uint16(m.Header.Type)) {
					r.msgs = append(r.msgs, m.Data)
				}
			}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return r
}
