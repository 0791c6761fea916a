package ui

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
)

// rawTCPSYN is an IPv4 TCP SYN as a raw IP frame.
func rawTCPSYN(t time.Time, src, dst string, sport, dport uint16) capture.Frame {
	b := make([]byte, 40)
	b[0], b[8], b[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(b[2:], 40)
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[20:], sport)
	binary.BigEndian.PutUint16(b[22:], dport)
	binary.BigEndian.PutUint32(b[24:], 3045326790)
	b[32], b[33] = 5<<4, 0x02
	binary.BigEndian.PutUint16(b[34:], 64240)
	return capture.Frame{Time: t, LinkType: capture.LinkTypeRaw, Len: len(b), Data: b}
}

func ep(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// markdownJourneys are journeys of the kinds the summary has to show: a
// rule drop after DNAT with its kernel drop and hint, and a packet lost
// from sight with lost events.
func markdownJourneys() []*decode.Journey {
	t0 := time.Date(2026, 11, 25, 10, 6, 59, 526954000, time.UTC)
	at := func(us int) time.Time { return t0.Add(time.Duration(us) * time.Microsecond) }
	const router = "hxtnd-router"
	drop := &decode.Journey{
		ID: 1, First: at(0), Last: at(374), Frame: rawTCPSYN(at(0), "10.205.0.2", "10.205.0.1", 40205, 8080),
		Flow: decode.Endpoints{Src: ep("10.205.0.2:40205"), Dst: ep("10.205.0.1:8080")}, Proto: "tcp",
		Steps: []decode.Step{
			{Time: at(0), Netns: router, Kind: decode.StepCapture, Iface: "r0", Dir: "in"},
			{Time: at(27), Netns: router, Kind: decode.StepHook, Hook: "prerouting", First: true, Family: "inet"},
			{Time: at(305), Netns: router, Kind: decode.StepRule, Hook: "prerouting", Family: "ip", Table: "hxnat", Chain: "prerouting", Priority: -100, HasPriority: true,
				Handle: 3, Rule: `iifname "r0" tcp dport 8080 counter dnat to 10.205.1.2:80`, Verdict: "accept"},
			{Time: at(305), Netns: router, Kind: decode.StepNAT, Hook: "prerouting", Before: &decode.Endpoints{Src: ep("10.205.0.2:40205"), Dst: ep("10.205.0.1:8080")},
				After: &decode.Endpoints{Src: ep("10.205.0.2:40205"), Dst: ep("10.205.1.2:80")}, Detail: "destination rewritten (DNAT)"},
			{Time: at(374), Netns: router, Kind: decode.StepHook, Hook: "forward", First: true, Family: "inet"},
			{Time: at(374), Netns: router, Kind: decode.StepRule, Hook: "forward", Family: "inet", Table: "hxfilter", Chain: "forward", HasPriority: true,
				Handle: 2, Rule: "ip daddr 10.205.1.2 tcp dport 80 counter drop", Verdict: "drop"},
			{Time: at(94), Netns: router, Kind: decode.StepDrop, Iface: "r0", Reason: "NETFILTER_DROP", Location: "nft_do_chain+0x3e8"},
		},
		Outcome: decode.OutcomeDropped,
		Drop: &decode.Drop{By: "rule", Netns: router, Hook: "forward", Family: "inet", Table: "hxfilter", Chain: "forward", Handle: 2,
			Rule:        "ip daddr 10.205.1.2 tcp dport 80 counter drop",
			Explanation: "Dropped in namespace hxtnd-router at FORWARD by rule inet hxfilter forward handle 2: ip daddr 10.205.1.2 tcp dport 80 counter drop.",
			Hint:        "to let it through, put an accept before that rule:\n  ip netns exec hxtnd-router nft insert rule inet hxfilter forward handle 2 ip saddr 10.205.0.2 th dport 80 accept"},
	}
	lost := &decode.Journey{
		ID: 2, First: at(1000), Last: at(1040), Frame: rawTCPSYN(at(1000), "10.9.0.1", "10.9.0.2", 5555, 443),
		Flow: decode.Endpoints{Src: ep("10.9.0.1:5555"), Dst: ep("10.9.0.2:443")}, Proto: "tcp",
		Steps: []decode.Step{
			{Time: at(1000), Netns: "a|b", Kind: decode.StepCapture, Iface: "eth_0", Dir: "out"},
			{Time: at(1040), Netns: "c", Kind: decode.StepHook, Hook: "input", First: true, Family: "inet"},
		},
		Outcome: decode.OutcomeUnknown, LastSeen: "c at input", Incomplete: true,
	}
	return []*decode.Journey{drop, lost}
}

// TestMarkdownGolden holds the Markdown summary of journeys against its
// golden file (go test ./ui -update rewrites it).
func TestMarkdownGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b, markdownJourneys(), MarkdownOptions{Location: time.UTC, Recording: "incident 1.pcapng"}); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "golden", "journeys.md")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./ui -update)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("Markdown differs from %s:\n got:\n%s\nwant:\n%s", golden, b.Bytes(), want)
	}
}

func TestMarkdownEscaping(t *testing.T) {
	for in, want := range map[string]string{
		"a|b":     "`a\\|b`",
		"x`y":     "``x`y``",
		"`start":  "`` `start ``",
		"two\nln": "`two ln`",
	} {
		if got := mdCode(in); got != want {
			t.Errorf("mdCode(%q) = %s, want %s", in, got, want)
		}
	}
	if got := mdText("*a* _b_ <c> [d]"); got != `\*a\* \_b\_ \<c> \[d\]` {
		t.Errorf("mdText: %s", got)
	}
}
