package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
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

// step is one (table, chain, handle, verdict) of a traced packet.
type step struct{ id, where string }

var nftMonitorLine = regexp.MustCompile(`^trace id ([0-9a-f]+) (\S+) (\S+) (\S+) (rule .* # handle (\d+) \(verdict ([a-z]+)|policy ([a-z]+))`)

// parseNftMonitor reads the steps `nft -a monitor trace` printed.
func parseNftMonitor(out string) []step {
	var steps []step
	for _, l := range strings.Split(out, "\n") {
		m := nftMonitorLine.FindStringSubmatch(l)
		if m == nil || m[3] == "hooktrace" {
			continue
		}
		if m[6] != "" {
			steps = append(steps, step{m[1], fmt.Sprintf("%s %s %s #%s %s", m[2], m[3], m[4], m[6], m[7])})
		} else {
			steps = append(steps, step{m[1], fmt.Sprintf("%s %s %s policy %s", m[2], m[3], m[4], m[8])})
		}
	}
	return steps
}

func TestTraceMatchesNftMonitor(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t, "hxtta"), nstest.New(t, "hxttb")
	nstest.Veth(t, a, "ta", "10.85.0.1/24", b, "tb", "10.85.0.2/24")
	load := exec.Command("ip", "netns", "exec", b, "nft", "-f", "-")
	load.Stdin = strings.NewReader(tracedRules)
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("load rules: %v %s", err, out)
	}
	r := startHooktrace(t, "--netns", b, "--trace", "--json", "host 10.85.0.1")

	// nft monitor trace, side by side; it is ready once it is subscribed.
	mon := exec.Command("ip", "netns", "exec", b, "nft", "-a", "monitor", "trace")
	var monOut strings.Builder
	var monMu sync.Mutex
	pipe, _ := mon.StdoutPipe()
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mon.Process.Kill(); mon.Wait() })
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			monMu.Lock()
			monOut.WriteString(sc.Text() + "\n")
			monMu.Unlock()
		}
	}()
	waitForSubscribers(t, b, 2)

	nstest.Run(t, "ip", "netns", "exec", a, "ping", "-c", "1", "-W", "1", "10.85.0.2")
	nstest.In(t, a, func() error {
		c, err := net.DialTimeout("tcp4", "10.85.0.2:9", 300*time.Millisecond)
		if err == nil {
			c.Close()
			return fmt.Errorf("port 9 answered; the drop rule did not act")
		}
		return nil
	})
	// The last event is the drop: once nft printed it, the kernel sent it
	// to hooktrace too; hooktrace reads what is queued before it exits.
	for deadline := time.Now().Add(5 * time.Second); ; {
		monMu.Lock()
		done := strings.Contains(monOut.String(), "(verdict drop)")
		monMu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nft monitor trace never showed the drop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.stop(t)
	monMu.Lock()
	want := parseNftMonitor(monOut.String())
	monMu.Unlock()

	var got []step
	rules := map[string]string{}
	for _, line := range strings.Split(r.stdout.String(), "\n") {
		var rec struct {
			Type, ID, Family, Table, Chain, Hook, Rule, Verdict string
			TraceType                                           string `json:"trace_type"`
			Handle                                              uint64
		}
		if line == "" || json.Unmarshal([]byte(line), &rec) != nil || rec.Type != "trace" {
			continue
		}
		switch {
		case rec.TraceType == "policy":
			got = append(got, step{rec.ID, fmt.Sprintf("%s %s %s policy %s", rec.Family, rec.Table, rec.Chain, rec.Verdict)})
		case rec.Handle != 0:
			w := fmt.Sprintf("%s %s %s #%d %s", rec.Family, rec.Table, rec.Chain, rec.Handle, rec.Verdict)
			got = append(got, step{rec.ID, w})
			rules[w] = rec.Rule + " @" + rec.Hook
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(want) < 3 {
		t.Fatalf("hooktrace's steps differ from nft monitor trace's:\n got %v\nwant %v\nnft said:\n%s", got, want, monOut.String())
	}
	for w, rule := range rules {
		if strings.HasPrefix(rule, " @") || strings.HasSuffix(rule, " @") {
			t.Errorf("%s: rule text or hook missing: %q", w, rule)
		}
	}
	if !strings.Contains(fmt.Sprint(rules), "tcp dport 9 drop @input") {
		t.Errorf("the drop rule's text and hook are not shown: %v", rules)
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
