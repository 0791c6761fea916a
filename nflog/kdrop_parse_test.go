package nflog

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// readKdropTestdata reads a file of testdata/kdrop.
func readKdropTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/kdrop/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recordedReasons are the reason names of the recorded format file
// (Linux 6.18).
func recordedReasons(t testing.TB) map[uint32]string {
	t.Helper()
	r, err := parseReasonFormat(string(readKdropTestdata(t, "kfree_skb.format")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParseReasonFormat(t *testing.T) {
	r := recordedReasons(t)
	for v, name := range map[uint32]string{2: "NOT_SPECIFIED", 3: "NO_SOCKET", 16: "IP_RPFILTER", 88: "IP_INNOROUTES", 128: "MAX"} {
		if r[v] != name {
			t.Errorf("reason %d = %q, want %q", v, r[v], name)
		}
	}
	if len(r) != 127 {
		t.Errorf("%d reasons, want 127 (2..128)", len(r))
	}
	for _, bad := range []string{
		"print fmt: \"%s\", REC->name",
		"__print_symbolic(REC->reason, )",
		"__print_symbolic(REC->reason, { x, \"A\" })",
		"__print_symbolic(REC->reason, { 2, \"A\" ",
		"__print_symbolic(REC->reason, { 2, \"\" })",
	} {
		if _, err := parseReasonFormat(bad); err == nil {
			t.Errorf("parseReasonFormat(%q) accepted", bad)
		}
	}
}

func TestParseKfreeSkbLine(t *testing.T) {
	reasons := recordedReasons(t)
	tests := []struct {
		line string
		want kfreeSkbEvent
		ok   bool
	}{
		{
			line: "   scenario.test-16429   [001] ..s1. 12200.340709: kfree_skb: skbaddr=00000000054d36b3 rx_sk=0000000000000000 protocol=2048 location=__udp4_lib_rcv+0x4bc/0xd00 reason: NO_SOCKET\n",
			want: kfreeSkbEvent{mono: 12200340709000, protocol: 0x0800, location: "__udp4_lib_rcv+0x4bc", reason: "NO_SOCKET"},
			ok:   true,
		},
		{ // before 6.8: no rx_sk
			line: "<idle>-0 [000] ..s. 5.5: kfree_skb: skbaddr=000000001 protocol=34525 location=ip6_pkt_discard+0x11/0x20 reason: IP_INNOROUTES",
			want: kfreeSkbEvent{mono: 5500000000, protocol: 0x86dd, location: "ip6_pkt_discard+0x11", reason: "IP_INNOROUTES"},
			ok:   true,
		},
		{ // a raw address, for the symbols to name; nanosecond clock
			line: "x-1 [000] ..... 1.000000001: kfree_skb: skbaddr=1 protocol=2048 location=0xffffffff82048c10 reason: 3",
			want: kfreeSkbEvent{mono: 1000000001, protocol: 0x0800, location: "0xffffffff82048c10", address: 0xffffffff82048c10, reason: "NO_SOCKET"},
			ok:   true,
		},
		{ // a subsystem reason outside the table stays as printed
			line: "x-1 [000] ..... 2.5: kfree_skb: skbaddr=1 protocol=0 location=f+0x1/0x2 reason: 0x10001",
			want: kfreeSkbEvent{mono: 2500000000, location: "f+0x1", reason: "0x10001"},
			ok:   true,
		},
		{line: "x-1 [000] ..... 2.5: consume_skb: skbaddr=1 location=f+0x1/0x2"},
		{line: "x-1 [000] ..... 2.5: kfree_skb: skbaddr=1 protocol=0 location=f+0x1/0x2"},
		{line: "x-1 [000] ..... 2.5: kfree_skb: skbaddr=1 reason: "},
		{line: "x-1 [000] ..... 2: kfree_skb: skbaddr=1 reason: NO_SOCKET"},
		{line: "x-1 [000] ..... 2.1234567890: kfree_skb: reason: NO_SOCKET"},
		{line: "kfree_skb: reason: NO_SOCKET"},
		{line: ""},
	}
	for _, tt := range tests {
		got, ok := parseKfreeSkbLine([]byte(tt.line), reasons)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseKfreeSkbLine(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

// TestParseRecordedTracePipe reads lines the kernel wrote: every one is
// understood, its reason is in the format's table and its location is
// symbol+offset.
func TestParseRecordedTracePipe(t *testing.T) {
	reasons := recordedReasons(t)
	names := map[string]bool{}
	for _, n := range reasons {
		names[n] = true
	}
	lines := bytes.Split(bytes.TrimSpace(readKdropTestdata(t, "trace_pipe.txt")), []byte("\n"))
	for _, line := range lines {
		ev, ok := parseKfreeSkbLine(line, reasons)
		if !ok {
			t.Errorf("not parsed: %s", line)
			continue
		}
		if !names[ev.reason] || strings.Contains(ev.location, "/") || !strings.Contains(ev.location, "+0x") || ev.mono == 0 {
			t.Errorf("%s: parsed as %+v", line, ev)
		}
	}
	if len(lines) < 10 {
		t.Errorf("only %d recorded lines", len(lines))
	}
}

func TestKallsymsResolve(t *testing.T) {
	ks, err := parseKallsyms(bytes.NewReader(readKdropTestdata(t, "kallsyms.txt")))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr uint64
		want string
		ok   bool
	}{
		{0xffffffff82048c10 + 0x4bc, "__udp4_lib_rcv+0x4bc", true},
		{0xffffffff81ff79f0 + 0x25b, "ip_rcv_finish_core+0x25b", true},
		{0xffffffff81000000, "srso_alias_untrain_ret+0x0", true}, // first of three aliases, as the kernel picks
		{0xffffffff81000010, "srso_alias_untrain_ret+0x10", true},
		{0xffffffffc0a01010, "vxlan_rcv+0x10", true}, // a module's symbol
		{0xffffffff80ffffff, "0xffffffff80ffffff", false},
		{0xffffffff82400010, "0xffffffff82400010", false}, // data, far past the last function
		{0, "0x0", false},
	}
	for _, tt := range tests {
		got, ok := ks.Resolve(tt.addr)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Resolve(%#x) = %q, %v; want %q, %v", tt.addr, got, ok, tt.want, tt.ok)
		}
	}
	if _, err := parseKallsyms(strings.NewReader("0000000000000000 T _text\n0000000000000000 t f\n")); err == nil {
		t.Error("kallsyms with every address hidden accepted")
	}
}

func TestTraceStatsLost(t *testing.T) {
	stats := "entries: 1\noverrun: 7\ncommit overrun: 2\nbytes: 44\noldest event ts: 11722.756611\nnow ts: 11724.774133\ndropped events: 3\nread events: 0\n"
	if n := traceStatsLost(stats); n != 10 {
		t.Errorf("lost %d, want 10 (overrun 7 + dropped 3)", n)
	}
}

func TestInstanceOwner(t *testing.T) {
	for name, want := range map[string]int{"hooktrace-42": 42, "hooktrace-42-3": 42, "hooktrace-x": 0, "hooktrace-42-x": 0, "hooktrace--1": 0, "other-42": 0, "hooktrace-0": 0} {
		pid, ok := instanceOwner(name)
		if pid != want || ok != (want != 0) {
			t.Errorf("instanceOwner(%q) = %d, %v; want %d", name, pid, ok, want)
		}
	}
}

// TestDecodeDropRecord checks the record layout the program writes as
// the reader reads it.
func TestDecodeDropRecord(t *testing.T) {
	ks, err := parseKallsyms(bytes.NewReader(readKdropTestdata(t, "kallsyms.txt")))
	if err != nil {
		t.Fatal(err)
	}
	b := &bpfDrops{layout: &kernelLayout{reasons: recordedReasons(t)}, syms: ks}
	rec := make([]byte, recSize)
	ne := binary.NativeEndian
	ne.PutUint64(rec[recTime:], 1)
	ne.PutUint64(rec[recLocation:], 0xffffffff82048c10+0x4bc)
	ne.PutUint32(rec[recReason:], 16)
	ne.PutUint32(rec[recInum:], 4026531840)
	ne.PutUint32(rec[recIfindex:], 7)
	binary.BigEndian.PutUint16(rec[recProtocol:], 0x0800)
	ne.PutUint16(rec[recLen:], 3)
	copy(rec[recData:], "\x45\x00\x00")
	d, ok := b.decode(rec)
	if !ok {
		t.Fatal("record refused")
	}
	if d.Reason != "IP_RPFILTER" || d.Location != "__udp4_lib_rcv+0x4bc" || d.NetnsInode != 4026531840 ||
		d.Ifindex != 7 || d.Protocol != 0x0800 || string(d.Network) != "\x45\x00\x00" || d.Probable {
		t.Errorf("decoded %+v", d)
	}
	ne.PutUint32(rec[recReason:], 0x10001)
	ne.PutUint16(rec[recLen:], DropHeaderBytes+1)
	if d, _ := b.decode(rec); d.Reason != "0x10001" || d.Network != nil {
		t.Errorf("unknown reason, impossible length: %+v", d)
	}
	if _, ok := b.decode(rec[:recSize-1]); ok {
		t.Error("short record accepted")
	}
}

func FuzzKfreeSkbLine(f *testing.F) {
	for _, line := range bytes.Split(readKdropTestdata(f, "trace_pipe.txt"), []byte("\n")) {
		f.Add(line)
	}
	reasons := recordedReasons(f)
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, ok := parseKfreeSkbLine(line, reasons)
		if !ok {
			return
		}
		if ev.reason == "" || strings.ContainsAny(ev.reason, " \t") {
			t.Errorf("reason %q", ev.reason)
		}
		if ev.address == 0 && strings.Contains(ev.location, "/") {
			t.Errorf("location %q keeps its size", ev.location)
		}
		if ev.mono < 0 {
			t.Errorf("time %d", ev.mono)
		}
	})
}

func FuzzKallsyms(f *testing.F) {
	f.Add(string(readKdropTestdata(f, "kallsyms.txt")), uint64(0xffffffff82048c10+0x4bc))
	f.Add("ffffffff81000000 T a\nffffffff81000000 t b\n", uint64(0xffffffff81000001))
	f.Fuzz(func(t *testing.T, text string, addr uint64) {
		ks, err := parseKallsyms(strings.NewReader(text))
		if err != nil {
			return
		}
		for i := 1; i < len(ks.addrs); i++ {
			if ks.addrs[i] < ks.addrs[i-1] {
				t.Fatalf("symbols not sorted at %d", i)
			}
		}
		name, ok := ks.Resolve(addr)
		if !ok {
			if !strings.HasPrefix(name, "0x") {
				t.Errorf("unresolved %#x named %q", addr, name)
			}
			return
		}
		sym, _, found := strings.Cut(name, "+0x")
		if !found || !strings.Contains(text, sym) {
			t.Errorf("Resolve(%#x) = %q, not a symbol of the input", addr, name)
		}
	})
}

func BenchmarkParseKfreeSkbLine(b *testing.B) {
	reasons := recordedReasons(b)
	line := []byte("   scenario.test-16429   [001] ..s1. 12200.340709: kfree_skb: skbaddr=00000000054d36b3 rx_sk=0000000000000000 protocol=2048 location=__udp4_lib_rcv+0x4bc/0xd00 reason: NO_SOCKET\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := parseKfreeSkbLine(line, reasons); !ok {
			b.Fatal("not parsed")
		}
	}
}

func BenchmarkDecodeDropRecord(b *testing.B) {
	ks, err := parseKallsyms(bytes.NewReader(readKdropTestdata(b, "kallsyms.txt")))
	if err != nil {
		b.Fatal(err)
	}
	d := &bpfDrops{layout: &kernelLayout{reasons: recordedReasons(b)}, syms: ks}
	rec := make([]byte, recSize)
	binary.NativeEndian.PutUint64(rec[recLocation:], 0xffffffff82048c10+0x4bc)
	binary.NativeEndian.PutUint32(rec[recReason:], 3)
	binary.NativeEndian.PutUint16(rec[recLen:], 60)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := d.decode(rec); !ok {
			b.Fatal("refused")
		}
	}
}
