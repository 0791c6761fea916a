package nflog

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestTranslateFilter(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{"", []string{""}},
		{"host 10.0.0.1", []string{"ip saddr 10.0.0.1", "ip daddr 10.0.0.1"}},
		{"src host 2001:db8::1", []string{"ip6 saddr 2001:db8::1"}},
		{"dst 10.0.0.2", []string{"ip daddr 10.0.0.2"}},
		{"net 10.1.2.3/8", []string{"ip saddr 10.0.0.0/8", "ip daddr 10.0.0.0/8"}},
		{"tcp port 443", []string{"meta l4proto tcp th sport 443", "meta l4proto tcp th dport 443"}},
		{"tcp and dst port 80", []string{"meta l4proto tcp th dport 80"}},
		{"port 53", []string{"meta l4proto { tcp, udp, sctp } th sport 53", "meta l4proto { tcp, udp, sctp } th dport 53"}},
		{"not port 22", []string{"meta l4proto != { tcp, udp, sctp }", "meta l4proto { tcp, udp, sctp } th sport != 22 th dport != 22"}},
		{"not host 10.0.0.1", []string{"ip saddr != 10.0.0.1 ip daddr != 10.0.0.1"}},
		{"not (icmp or udp)", []string{"meta l4proto != icmp meta l4proto != udp"}},
		{"icmp or host 10.0.0.9 && !tcp", []string{"meta l4proto icmp", "ip saddr 10.0.0.9 meta l4proto != tcp", "ip daddr 10.0.0.9 meta l4proto != tcp"}},
		{"portrange 8000-8080", []string{"meta l4proto { tcp, udp, sctp } th sport 8000-8080", "meta l4proto { tcp, udp, sctp } th dport 8000-8080"}},
		{"proto 47", []string{"meta l4proto 47"}},
	} {
		got, err := TranslateFilter(tc.expr)
		if err != nil {
			t.Errorf("%q: %v", tc.expr, err)
			continue
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%q:\n got %q\nwant %q", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{"vlan 100", "host example.com", "tcp[13] & 2 != 0", "(host 10.0.0.1", "port", "ether host 1:2:3:4:5:6", "port 70000"} {
		if _, err := TranslateFilter(bad); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: want a one-line error, got %v", bad, err)
		}
	}
}

func TestTraceScriptIsValidNft(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nft is not installed")
		}
		t.Skip("nft is not installed")
	}
	for _, expr := range []string{"", "host 10.0.0.1 and not port 22", "net 10.42.0.0/16", "icmp6 or udp portrange 1-1024"} {
		m, err := TranslateFilter(expr)
		if err != nil {
			t.Fatal(err)
		}
		script := TraceScript(m, DefaultTraceRate, DefaultLogGroup)
		cmd := exec.Command("nft", "-c", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%q: nft -c refuses the script: %v\n%s\n%s", expr, err, out, script)
		}
	}
	m, _ := TranslateFilter("src host 10.0.0.1 and dst net 10.42.0.0/16")
	if s := TraceScript(m, 0, -1); !strings.Contains(s, "udp dport { 4789, 8472 } @th,336,32 0x0a000001 @th,368,32 & 0xffff0000 == 0x0a2a0000 meta nftrace set 1") {
		t.Errorf("no VXLAN rule for the inner addresses:\n%s", s)
	}
}
