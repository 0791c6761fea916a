package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/nflog"
)

// traceEventsForTest are the kinds of events a traced packet produces: the
// first event of a base chain (headers, interfaces, conntrack), a jump, a
// rule in a user chain with its iptables text, a chain's implicit end, a
// policy, and a marked packet leaving.
func traceEventsForTest() []decode.TraceEvent {
	at := time.Date(2026, 3, 1, 8, 8, 17, 644063000, time.UTC)
	// 45 00 00 54 12 34 40 00 40 01 00 00 0a 55 00 01 0a 55 00 02: IPv4 ICMP 10.85.0.1 > 10.85.0.2
	network := []byte{0x45, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 0x40, 1, 0, 0, 10, 0x55, 0, 1, 10, 0x55, 0, 2}
	// 08 00 00 00 12 a7 00 01: echo request id 4775 seq 1
	transport := []byte{8, 0, 0, 0, 0x12, 0xa7, 0, 1}
	return []decode.TraceEvent{{
		Trace: nflog.Trace{Netns: "hxq4", Time: at, ID: 0xc0660ea6, Family: 1, Table: "userfw", Chain: "input",
			Handle: 3, Type: nflog.TraceRule, Verdict: nflog.VerdictJump, HasVerdict: true, JumpTarget: "icmpchk",
			Network: network, Transport: transport, IIF: 2, NFProto: 2,
			CTID: 3501001520, CTState: 1 << 3, HasCT: true},
		Hook: "input", Priority: 0, HasPriority: true, Rule: "icmp type echo-request jump icmpchk", IIFName: "tb",
	}, {
		Trace: nflog.Trace{Netns: "hxq4", Time: at.Add(38 * time.Microsecond), ID: 0xc0660ea6, Family: 2, Table: "filter", Chain: "CHK",
			Handle: 6, Type: nflog.TraceRule, Verdict: nflog.VerdictAccept, HasVerdict: true},
		Hook: "input", HasPriority: true, Rule: "ip saddr 10.85.0.1 counter packets 0 bytes 0 accept",
		IptablesRule: "-A CHK -s 10.85.0.1/32 -j ACCEPT",
	}, {
		Trace: nflog.Trace{Netns: "hxq4", Time: at.Add(time.Millisecond), ID: 0x1e8ced1, Family: 1, Table: "userfw", Chain: "input",
			Type: nflog.TraceRule, Verdict: nflog.VerdictContinue, HasVerdict: true},
		Hook: "input", HasPriority: true,
	}, {
		Trace: nflog.Trace{Netns: "hxq4", Time: at.Add(time.Millisecond), ID: 0x1e8ced1, Family: 1, Table: "userfw", Chain: "input",
			Type: nflog.TracePolicy, Policy: nflog.VerdictDrop, HasPolicy: true},
		Hook: "input", HasPriority: true,
	}, {
		Trace: nflog.Trace{Netns: "", Time: at.Add(2 * time.Second), ID: 0x9dff5a4a, Family: 2, Table: "natfw", Chain: "post",
			Handle: 10, Type: nflog.TraceRule, Verdict: nflog.VerdictAccept, HasVerdict: true,
			Network: network, Transport: transport, IIF: 2, OIF: 3, Mark: 0x2a, CTDirection: 1, CTState: 1 << 1, HasCT: true},
		Hook: "postrouting", Priority: 100, HasPriority: true, Rule: `oifname "rs" masquerade`, IIFName: "rc", OIFName: "rs",
	}, {
		// An iptables-legacy TRACE line: a rule number, no handle.
		Trace: nflog.Trace{Netns: "hxq4", Time: at.Add(3 * time.Second), ID: 0x577e7f42, Family: 2, Table: "filter", Chain: "INPUT",
			Type: nflog.TraceRule, Verdict: nflog.VerdictJump, HasVerdict: true, JumpTarget: "icmpchk",
			Network: network, Transport: transport, IIF: 2, NFProto: 2},
		Hook: "input", HasPriority: true, Rule: "-A INPUT -p icmp -j icmpchk", IptablesRule: "-A INPUT -p icmp -j icmpchk",
		IIFName: "tb", Legacy: true, RuleNumber: 2,
	}}
}

func printTraces(t *testing.T, p TracePrinter, evs []decode.TraceEvent) {
	t.Helper()
	for i := range evs {
		if err := p.Trace(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGoldenTraceOutput(t *testing.T) {
	var tb, jb bytes.Buffer
	printTraces(t, NewText(&tb, time.UTC), traceEventsForTest())
	printTraces(t, NewNDJSON(&jb), traceEventsForTest())
	for i, line := range bytes.Split(bytes.TrimSuffix(jb.Bytes(), []byte("\n")), []byte("\n")) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		checkNoDuplicateKeys(t, line)
	}
	for ext, got := range map[string][]byte{".txt": tb.Bytes(), ".ndjson": jb.Bytes()} {
		golden := filepath.Join("testdata", "golden", "trace-events"+ext)
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./ui -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("trace events differ from %s:\n got:\n%s\nwant:\n%s", golden, got, want)
		}
	}
}

// serialWriter takes whole writes from several goroutines, as hooktrace's
// shared output does.
type serialWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *serialWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// hooktrace prints the events of each traced namespace from that
// namespace's listener: one printer, several goroutines at once. Every
// record must come out whole, as it does when printed alone.
func TestTracePrintersConcurrent(t *testing.T) {
	const goroutines, rounds = 8, 100
	printers := map[string]func(w *serialWriter) TracePrinter{
		"text":   func(w *serialWriter) TracePrinter { return NewText(w, time.UTC) },
		"ndjson": func(w *serialWriter) TracePrinter { return NewNDJSON(w) },
	}
	for name, newPrinter := range printers {
		t.Run(name, func(t *testing.T) {
			events := make([][]decode.TraceEvent, goroutines)
			alone := &serialWriter{}
			for g := range events {
				events[g] = traceEventsForTest()
				for i := range events[g] {
					events[g][i].Netns = fmt.Sprintf("ns%d", g)
					events[g][i].ID += uint32(g)
				}
				printTraces(t, newPrinter(alone), events[g])
			}
			var want []string
			for range rounds {
				want = append(want, strings.SplitAfter(alone.b.String(), "\n")...)
			}

			shared := &serialWriter{}
			p := newPrinter(shared)
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for range rounds {
						for i := range events[g] {
							p.Trace(&events[g][i])
						}
					}
				})
			}
			wg.Wait()
			got := strings.SplitAfter(shared.b.String(), "\n")
			want = slices.DeleteFunc(want, func(s string) bool { return s == "" })
			got = slices.DeleteFunc(got, func(s string) bool { return s == "" })
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				for i := range min(len(got), len(want)) {
					if got[i] != want[i] {
						t.Fatalf("%d records, want %d; first difference:\n got %s\nwant %s", len(got), len(want), got[i], want[i])
					}
				}
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
		})
	}
}
