package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
)

const tracedRules = `table inet userfw {
	chain input {
		type filter hook input priority 0; policy accept;
		icmp type echo-request jump icmpchk
		tcp dport 9 drop
	}
	chain icmpchk {
		ip saddr 10.85.0.1 counter accept
	}
}
`

func TestTraceMatchesNftMonitor(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t, "hxtta"), nstest.New(t, "hxttb")
	nstest.Veth(t, a, "ta", "10.85.0.1/24", b, "tb", "10.85.0.2/24")
	loadNft(t, b, tracedRules)
	s := startTraceSession(t, "host 10.85.0.1", b)

	nstest.Run(t, "ip", "netns", "exec", a, "ping", "-c", "1", "-W", "1", "10.85.0.2")
	if got, _ := dialTCP(t, a, "10.85.0.2:9", 300*time.Millisecond, false); got != outcomeTimeout {
		t.Fatalf("port 9: %s; the drop rule did not act", got)
	}
	// The last event is the drop.
	got, nft := s.settle(t, func(nft map[string][]traceStep) bool {
		return hasSteps(nft[b], expectStep{"input", "tcp dport 9 drop", "drop"})
	})
	if len(nft[b]) < 3 {
		t.Fatalf("nft monitor trace showed %d steps, want at least 3:\n%s", len(nft[b]), s.nftText())
	}
	checkHooktraceDetails(t, got[b], nft[b], map[string]string{"input": "input", "icmpchk": "input"})
	for _, st := range got[b] {
		if !st.Policy && st.Rule == "" {
			t.Errorf("%s: rule text missing", st.key())
		}
	}
}

// waitForSubscribers waits until n netlink sockets in the namespace have
// joined the nf_tables trace group (9), as /proc/net/netlink shows.
func waitForSubscribers(t *testing.T, ns string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := nstest.Run(t, "ip", "netns", "exec", ns, "cat", "/proc/net/netlink")
		count := 0
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			// sk Eth Pid Groups ...: protocol 12 is NETLINK_NETFILTER,
			// group 9 is bit 8 of the first groups word.
			if len(f) > 3 && f[1] == "12" {
				var groups uint64
				fmt.Sscanf(f[3], "%x", &groups)
				if groups&(1<<8) != 0 {
					count++
				}
			}
		}
		if count >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d trace subscribers in %s after 10 s", count, ns)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
