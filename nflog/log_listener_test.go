package nflog

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
	"github.com/mdlayher/netlink"
)

// logRules sends UDP to port 9999 on loopback to NFLOG group 41.
const logRules = `table inet hxlogtest {
	chain out {
		type filter hook output priority 0; policy accept;
		udp dport 9999 log prefix "hxlog " group 41
	}
}
`

// newLogNamespace creates a namespace holding logRules.
func newLogNamespace(t *testing.T) string {
	t.Helper()
	nstest.RequireRoot(t)
	ns := nstest.New(t, "hxtlog")
	if _, err := nftCommand("/run/netns/"+ns, logRules, "-f", "-"); err != nil {
		t.Fatalf("load rules: %v", err)
	}
	return ns
}

// sendUDP sends n datagrams to 127.0.0.1:9999 from inside ns.
func sendUDP(t *testing.T, ns string, n int) { sendUDPTo(t, ns, 9999, n) }

// logPrefix returns the NFULA_PREFIX of a message.
func logPrefix(data []byte) string {
	var p string
	forEachAttr(data[4:], func(typ uint16, v []byte) {
		if typ == 10 {
			p = strings.TrimRight(string(v), "\x00")
		}
	})
	return p
}

// readLogs returns messages from l until n arrived or the deadline.
func readLogs(t *testing.T, l *LogListener, n int, within time.Duration) []LogMessage {
	t.Helper()
	got := make(chan LogMessage, n)
	go func() {
		for i := 0; i < n; i++ {
			m, err := l.Next()
			if err != nil {
				close(got)
				return
			}
			got <- m
		}
		close(got)
	}()
	var msgs []LogMessage
	deadline := time.After(within)
	for {
		select {
		case m, ok := <-got:
			if !ok {
				return msgs
			}
			msgs = append(msgs, m)
		case <-deadline:
			return msgs
		}
	}
}

func TestListenLogReceivesGroup(t *testing.T) {
	ns := newLogNamespace(t)
	l, err := ListenLog(ns, "/run/netns/"+ns, 41, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	sendUDP(t, ns, 5)
	msgs := readLogs(t, l, 5, 5*time.Second)
	if len(msgs) != 5 {
		t.Fatalf("received %d messages, want 5", len(msgs))
	}
	for _, m := range msgs {
		if m.Netns != ns || m.Group != 41 {
			t.Errorf("message from netns %q group %d, want %q 41", m.Netns, m.Group, ns)
		}
		if p := logPrefix(m.Data); p != "hxlog " {
			t.Errorf("prefix %q, want %q", p, "hxlog ")
		}
		if m.Data[0] != 2 { // the inet table logs an IPv4 packet as NFPROTO_IPV4
			t.Errorf("family %d, want 2", m.Data[0])
		}
		if m.Time.Before(start.Add(-time.Second)) || m.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("time %v is not around now", m.Time)
		}
	}
	if l.Missed() != 0 || l.Lost() != 0 {
		t.Errorf("missed %d, lost %d; want none", l.Missed(), l.Lost())
	}
}

func TestListenLogGroupBusy(t *testing.T) {
	ns := newLogNamespace(t)
	l, err := ListenLog(ns, "/run/netns/"+ns, 41, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l2, err := ListenLog(ns, "/run/netns/"+ns, 41, 0)
	var busy *LogGroupBusyError
	if !errors.As(err, &busy) {
		if l2 != nil {
			l2.Close()
		}
		t.Fatalf("second bind of group 41: %v, want LogGroupBusyError", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "group 41") {
		t.Errorf("error %q: want one line naming the group", msg)
	}
	// Groups are per namespace: the same group binds elsewhere.
	other := nstest.New(t, "hxtlog")
	l3, err := ListenLog(other, "/run/netns/"+other, 41, 0)
	if err != nil {
		t.Fatalf("group 41 in another namespace: %v", err)
	}
	l3.Close()
	// Once closed, the group is free again.
	l.Close()
	l4, err := ListenLog(ns, "/run/netns/"+ns, 41, 0)
	if err != nil {
		t.Fatalf("rebind after close: %v", err)
	}
	l4.Close()
}

// TestListenLogCountsFlood overruns a small socket buffer: every message
// is either received or counted as missed, and the counts add up.
func TestListenLogCountsFlood(t *testing.T) {
	ns := newLogNamespace(t)
	l, err := ListenLog(ns, "/run/netns/"+ns, 41, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const flood = 5000
	sendUDP(t, ns, flood) // nothing reads meanwhile: the buffer overflows
	var received atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := l.Next(); err != nil {
				return
			}
			received.Add(1)
		}
	}()
	// Once what was kept is drained, one more message gets through, and
	// the gap in numbering before it counts what the flood lost at its
	// tail. Until the reader has drained the buffer, such a message may be
	// lost too: send another.
	sent := uint64(flood)
	for try := 0; ; try++ {
		sendUDP(t, ns, 1)
		sent++
		deadline := time.Now().Add(300 * time.Millisecond)
		for received.Load()+l.Missed() < sent && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if received.Load()+l.Missed() == sent {
			break
		}
		if try == 20 {
			t.Fatalf("received %d + missed %d, want %d", received.Load(), l.Missed(), sent)
		}
	}
	l.Close()
	<-done
	if l.Lost() == 0 || l.Missed() == 0 {
		t.Fatalf("a 4 KiB buffer took %d messages without loss (lost %d, missed %d): the test did not flood", sent, l.Lost(), l.Missed())
	}
	if total := received.Load() + l.Missed(); total != sent {
		t.Errorf("received %d + missed %d = %d, want %d", received.Load(), l.Missed(), total, sent)
	}
	t.Logf("flood of %d: received %d, missed %d, ENOBUFS %d", sent, received.Load(), l.Missed(), l.Lost())
}

// FuzzLogRecord feeds arbitrary bytes to the parsing a received datagram
// goes through, as one record and as a datagram of netlink messages: it
// must never panic, whatever the kernel (or a fuzzer) sends.
func FuzzLogRecord(f *testing.F) {
	f.Add([]byte{2, 0, 0, 41, 8, 0, 12, 0, 0, 0, 0, 7})
	f.Fuzz(func(t *testing.T, data []byte) {
		l := &LogListener{}
		var at time.Time
		l.account(data, &at)
		now := time.Now()
		l.queue(splitMessages(data), now)
		l.queue([]netlink.Message{{Header: netlink.Header{Type: nfulnlMsgPacket}, Data: data}}, now)
		for _, m := range l.pending {
			if m.Time.After(now) {
				t.Fatalf("message time %v after its receive time %v", m.Time, now)
			}
		}
	})
}
