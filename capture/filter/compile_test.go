package filter

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/bpf"
)

func TestCompileRefusesBadExpressions(t *testing.T) {
	tests := []struct {
		expr     string
		linkType int
		wantMsg  string // part of libpcap's message
	}{
		{"tcp prot 80", 1, "syntax error"},
		{"host", 1, "syntax error"},
		{"port 99999", 1, "illegal port number 99999"},
		{"ip broadcast", 1, "netmask not known"},
		{"vlan", 276, "no VLAN support"},
		{"ether broadcast", 101, "not a broadcast link"},
		{"tcp", 12345, "unknown data link type"},
		{"tcp", -1, "link type -1 out of range"},
		{"tcp\x00 and udp", 1, "NUL byte"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.expr, tt.linkType, 0)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Compile(%q, %d): error %v is not a *SyntaxError", tt.expr, tt.linkType, err)
			continue
		}
		if se.Expr != tt.expr || !strings.Contains(se.Msg, tt.wantMsg) {
			t.Errorf("Compile(%q, %d): SyntaxError{Expr: %q, Msg: %q}, want Msg containing %q", tt.expr, tt.linkType, se.Expr, se.Msg, tt.wantMsg)
		}
		want := fmt.Sprintf("filter expression %q: %s", tt.expr, se.Msg)
		if got := err.Error(); got != want || strings.ContainsAny(got, "\r\n") {
			t.Errorf("Compile(%q, %d): error %q, want %q on one line", tt.expr, tt.linkType, got, want)
		}
	}
}

func TestCompileEmptyAcceptsAll(t *testing.T) {
	for _, expr := range []string{"", "  \t"} {
		for _, linkType := range []int{1, 101, 276, 12345} {
			p, err := Compile(expr, linkType, 0)
			if err != nil {
				t.Fatalf("Compile(%q, %d): %v", expr, linkType, err)
			}
			for _, data := range [][]byte{nil, {0}, make([]byte, 1500)} {
				if !p.Match(data, len(data)) {
					t.Errorf("Compile(%q, %d) rejects %d bytes", expr, linkType, len(data))
				}
			}
			want := []bpf.RawInstruction{{Op: 0x06, K: maxSnaplen}}
			if got := p.Instructions(); !equalRaw(got, want) {
				t.Errorf("Compile(%q, %d).Instructions() = %v, want %v", expr, linkType, got, want)
			}
		}
	}
}

func TestCompileSnaplen(t *testing.T) {
	for _, tt := range []struct{ snaplen, want int }{{0, maxSnaplen}, {-5, maxSnaplen}, {96, 96}, {1 << 30, maxSnaplen}} {
		p, err := Compile("tcp", 1, tt.snaplen)
		if err != nil {
			t.Fatal(err)
		}
		ins := p.Instructions()
		var accept uint32
		for _, in := range ins {
			if in.Op == 0x06 && in.K != 0 {
				accept = in.K
			}
		}
		if accept != uint32(tt.want) {
			t.Errorf("Compile with snaplen %d accepts with ret #%d, want #%d", tt.snaplen, accept, tt.want)
		}
	}
}

// TestCompileRawLinkTypes checks that the LINKTYPE_ values of raw IP map to
// libpcap's DLT_RAW.
func TestCompileRawLinkTypes(t *testing.T) {
	want, err := Compile("udp port 53", 101, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, linkType := range []int{12, 14} {
		p, err := Compile("udp port 53", linkType, 0)
		if err != nil {
			t.Fatalf("Compile for link type %d: %v", linkType, err)
		}
		if p.String() != want.String() {
			t.Errorf("link type %d compiles to\n%s, link type 101 to\n%s", linkType, p, want)
		}
	}
}

// TestCompileConcurrently compiles and matches from many goroutines; run it
// with -race.
func TestCompileConcurrently(t *testing.T) {
	exprs := []string{"tcp port 443", "udp", "vlan and ip6", "icmp or arp", "not host 10.0.0.1"}
	want := make(map[string]string)
	for _, e := range exprs {
		p, err := Compile(e, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		want[e] = p.String()
	}
	shared, err := Compile("tcp port 443 and not host 10.0.0.1", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	pkt := benchPacket(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				e := exprs[(g+i)%len(exprs)]
				p, err := Compile(e, 1, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if p.String() != want[e] {
					t.Errorf("%q compiled concurrently differs", e)
				}
				if !shared.Match(pkt, len(pkt)) {
					t.Error("shared program rejects the packet")
				}
			}
		})
	}
	wg.Wait()
}

func TestInstructionsIsACopy(t *testing.T) {
	p, err := Compile("tcp", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	ins := p.Instructions()
	ins[0] = bpf.RawInstruction{Op: 0x06}
	if p.Instructions()[0] == ins[0] {
		t.Error("changing the result of Instructions changed the program")
	}
}
