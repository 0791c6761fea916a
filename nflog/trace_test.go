package nflog

import (
	"encoding/binary"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
)

// buildTraceMsg hand-builds a trace payload: the nfgenmsg of family, then
// the attributes fn encodes, big-endian like the kernel's.
func buildTraceMsg(t testing.TB, family uint8, fn func(ae *netlink.AttributeEncoder)) []byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	fn(ae)
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{family, 0, 0, 0}, b...)
}

// traceBasics encodes what the kernel puts in every event, in its order.
func traceBasics(ae *netlink.AttributeEncoder, typ TraceType, id uint32, table, chain string) {
	ae.Uint32(traceAttrNFProto, 2)
	ae.Uint32(traceAttrType, uint32(typ))
	ae.Uint32(traceAttrID, id)
	ae.String(traceAttrChain, chain)
	ae.String(traceAttrTable, table)
}

// traceVerdictAttr encodes a nested verdict, as nft_verdict_dump does.
func traceVerdictAttr(ae *netlink.AttributeEncoder, v Verdict, target string) {
	ae.Nested(traceAttrVerdict, func(nae *netlink.AttributeEncoder) error {
		nae.Uint32(traceVerdictCode, uint32(v))
		if target != "" {
			nae.String(traceVerdictChain, target)
		}
		return nil
	})
}

func TestParseTrace(t *testing.T) {
	ll := []byte{0x0a, 0x4e, 0xe1, 0x1a, 0x86, 0xdc, 0x02, 0xa7, 0xb8, 0x4c, 0x76, 0x22, 0x08, 0x00}
	ip := []byte{0x45, 0, 0, 0x54, 0x52, 0xf8, 0x40, 0, 0x40, 0x01, 0xd3, 0x06, 10, 84, 0, 1, 10, 84, 0, 2}
	icmp := []byte{8, 0, 0xa5, 0x01, 0x4f, 0x90, 0, 1}
	tests := []struct {
		name   string
		family uint8
		attrs  func(ae *netlink.AttributeEncoder)
		want   Trace
	}{{
		name: "rule accept", family: 1,
		attrs: func(ae *netlink.AttributeEncoder) {
			traceBasics(ae, TraceRule, 0x1d5b0a3c, "filter", "input")
			ae.Bytes(traceAttrPad, nil) // nla_put_be64 aligns the handle with a PAD
			ae.Uint64(traceAttrRuleHandle, 7)
			traceVerdictAttr(ae, VerdictAccept, "")
		},
		want: Trace{ID: 0x1d5b0a3c, Family: 1, Table: "filter", Chain: "input", Handle: 7, Type: TraceRule,
			Verdict: VerdictAccept, HasVerdict: true, NFProto: 2},
	}, {
		name: "jump with target", family: 2,
		attrs: func(ae *netlink.AttributeEncoder) {
			traceBasics(ae, TraceRule, 1, "hxtest", "in")
			ae.Uint64(traceAttrRuleHandle, 5)
			traceVerdictAttr(ae, VerdictJump, "icmpchk")
		},
		want: Trace{ID: 1, Family: 2, Table: "hxtest", Chain: "in", Handle: 5, Type: TraceRule,
			Verdict: VerdictJump, HasVerdict: true, JumpTarget: "icmpchk", NFProto: 2},
	}, {
		name: "goto", family: 10,
		attrs: func(ae *netlink.AttributeEncoder) {
			traceBasics(ae, TraceRule, 2, "t", "c")
			ae.Uint64(traceAttrRuleHandle, 1<<40)
			traceVerdictAttr(ae, VerdictGoto, "other")
		},
		want: Trace{ID: 2, Family: 10, Table: "t", Chain: "c", Handle: 1 << 40, Type: TraceRule,
			Verdict: VerdictGoto, HasVerdict: true, JumpTarget: "other", NFProto: 2},
	}, {
		name: "policy", family: 1,
		attrs: func(ae *netlink.AttributeEncoder) {
			traceBasics(ae, TracePolicy, 3, "filter", "input")
			ae.Uint32(traceAttrPolicy, uint32(VerdictDrop))
		},
		want: Trace{ID: 3, Family: 1, Table: "filter", Chain: "input", Type: TracePolicy,
			Policy: VerdictDrop, HasPolicy: true, NFProto: 2},
	}, {
		name: "end of chain: continue without handle", family: 1,
		attrs: func(ae *netlink.AttributeEncoder) {
			traceBasics(ae, TraceRule, 4, "filter", "pre")
			traceVerdictAttr(ae, VerdictContinue, "")
		},
		want: Trace{ID: 4, Family: 1, Table: "filter", Chain: "pre", Type: TraceRule,
			Verdict: VerdictContinue, HasVerdict: true, NFProto: 2},
	}, {
		name: "return", family: 1,
		attrs: func(ae *netlink.AttributeEncoder) {
			traceBasics(ae, TraceReturn, 5, "filter", "sub")
			traceVerdictAttr(ae, VerdictReturn, "")
		},
		want: Trace{ID: 5, Family: 1, Table: "filter", Chain: "sub", Type: TraceReturn,
			Verdict: VerdictReturn, HasVerdict: true, NFProto: 2},
	}, {
		name: "conntrack", family: 1,
		attrs: func(ae *netlink.AttributeEncoder) {
			traceBasics(ae, TraceRule, 6, "filter", "input")
			ae.Uint64(traceAttrRuleHandle, 9)
			traceVerdictAttr(ae, VerdictContinue, "")
			ae.Uint32(traceAttrCTState, 2)
			ae.Uint8(traceAttrCTDirection, 1)
			ae.Uint32(traceAttrCTID, 0xba39c1a9)
			ae.Uint32(traceAttrCTStatus, 0x18a)
		},
		want: Trace{ID: 6, Family: 1, Table: "filter", Chain: "input", Handle: 9, Type: TraceRule,
			Verdict: VerdictContinue, HasVerdict: true, NFProto: 2,
			CTID: 0xba39c1a9, CTDirection: 1, CTStatus: 0x18a, CTState: 2, HasCT: true},
	}, {
		name: "header snapshots, interfaces and mark", family: 1,
		attrs: func(ae *netlink.AttributeEncoder) {
			traceBasics(ae, TraceRule, 7, "filter", "forward")
			ae.Uint64(traceAttrRuleHandle, 3)
			traceVerdictAttr(ae, VerdictDrop, "")
			ae.Uint32(traceAttrMark, 0x2a)
			ae.Uint32(traceAttrIIF, 2)
			ae.Uint16(traceAttrIIFType, 1)
			ae.Uint32(traceAttrOIF, 5)
			ae.Uint16(traceAttrOIFType, 772)
			ae.Bytes(traceAttrNetworkHeader, ip)
			ae.Bytes(traceAttrTransportHeader, icmp)
			ae.Bytes(traceAttrLLHeader, ll)
		},
		want: Trace{ID: 7, Family: 1, Table: "filter", Chain: "forward", Handle: 3, Type: TraceRule,
			Verdict: VerdictDrop, HasVerdict: true, NFProto: 2, Mark: 0x2a,
			IIF: 2, IIFType: 1, OIF: 5, OIFType: 772, LL: ll, Network: ip, Transport: icmp},
	}, {
		name: "unknown attributes and a verdict chain id are skipped", family: 7,
		attrs: func(ae *netlink.AttributeEncoder) {
			traceBasics(ae, TraceRule, 8, "br", "fwd")
			ae.Nested(traceAttrVerdict, func(nae *netlink.AttributeEncoder) error {
				nae.Uint32(traceVerdictCode, uint32(VerdictQueue))
				nae.Uint32(3, 77) // NFTA_VERDICT_CHAIN_ID
				return nil
			})
			ae.Bytes(40, []byte("from a later kernel"))
		},
		want: Trace{ID: 8, Family: 7, Table: "br", Chain: "fwd", Type: TraceRule,
			Verdict: VerdictQueue, HasVerdict: true, NFProto: 2},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTrace(buildTraceMsg(t, tt.family, tt.attrs))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestParseTraceCopiesHeaders checks that header snapshots do not alias
// the buffer they were parsed from, which the socket reuses.
func TestParseTraceCopiesHeaders(t *testing.T) {
	msg := buildTraceMsg(t, 1, func(ae *netlink.AttributeEncoder) {
		traceBasics(ae, TraceRule, 1, "t", "c")
		ae.Bytes(traceAttrLLHeader, []byte{1, 2, 3})
		ae.Bytes(traceAttrNetworkHeader, []byte{4, 5, 6})
		ae.Bytes(traceAttrTransportHeader, []byte{7, 8, 9})
	})
	tr, err := ParseTrace(msg)
	if err != nil {
		t.Fatal(err)
	}
	clear(msg)
	if string(tr.LL) != "\x01\x02\x03" || string(tr.Network) != "\x04\x05\x06" || string(tr.Transport) != "\x07\x08\x09" {
		t.Errorf("headers changed with the buffer: %v %v %v", tr.LL, tr.Network, tr.Transport)
	}
}

func TestParseTraceErrors(t *testing.T) {
	basics := func(ae *netlink.AttributeEncoder) { traceBasics(ae, TraceRule, 1, "t", "c") }
	tests := []struct {
		name string
		msg  []byte
		want string
	}{
		{"empty", nil, "0 bytes, shorter than the 4-byte nfgenmsg header"},
		{"short nfgenmsg", []byte{1, 0}, "2 bytes, shorter than the 4-byte nfgenmsg header"},
		{"nfgenmsg only", []byte{1, 0, 0, 0}, "no type attribute"},
		{"no table", buildTraceMsg(t, 1, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(traceAttrType, 3)
			ae.Uint32(traceAttrID, 1)
			ae.String(traceAttrChain, "c")
		}), "no table attribute"},
		{"no id", buildTraceMsg(t, 1, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(traceAttrType, 3)
			ae.String(traceAttrChain, "c")
			ae.String(traceAttrTable, "t")
		}), "no id attribute"},
		{"short id", buildTraceMsg(t, 1, func(ae *netlink.AttributeEncoder) {
			basics(ae)
			ae.Bytes(traceAttrID, []byte{1, 2, 3})
		}), "nf_tables trace id attribute: netlink: attribute 6 is not a uint32; length: 3"},
		{"short handle", buildTraceMsg(t, 1, func(ae *netlink.AttributeEncoder) {
			basics(ae)
			ae.Uint32(traceAttrRuleHandle, 4)
		}), "rule handle attribute: netlink: attribute 3 is not a uint64"},
		{"wide ct direction", buildTraceMsg(t, 1, func(ae *netlink.AttributeEncoder) {
			basics(ae)
			ae.Uint32(traceAttrCTDirection, 1)
		}), "ct direction attribute"},
		{"short verdict code", buildTraceMsg(t, 1, func(ae *netlink.AttributeEncoder) {
			basics(ae)
			ae.Nested(traceAttrVerdict, func(nae *netlink.AttributeEncoder) error {
				nae.Uint16(traceVerdictCode, 1)
				return nil
			})
		}), "verdict attribute: verdict code: netlink: attribute 1 is not a uint32; length: 2"},
		{"broken nested header", buildTraceMsg(t, 1, func(ae *netlink.AttributeEncoder) {
			basics(ae)
			ae.Bytes(traceAttrVerdict, []byte{8, 0, 1, 0, 0, 0})
		}), "verdict attribute: verdict code: invalid attribute"},
		{"attribute longer than the message", append(buildTraceMsg(t, 1, basics), 200, 0, traceAttrChain, 0, 'x', 0, 0, 0),
			"chain attribute: invalid attribute; length too short or too large"},
		{"attribute shorter than its header", append(buildTraceMsg(t, 1, basics), 2, 0, traceAttrMark, 0),
			"mark attribute: invalid attribute"},
		{"trailing bytes", append(buildTraceMsg(t, 1, basics), 8, 0),
			"nf_tables trace attributes: invalid attribute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTrace(tt.msg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestParseTraceTruncated cuts real messages at every length: no panic,
// and a cut inside an attribute is an error.
func TestParseTraceTruncated(t *testing.T) {
	for _, rec := range loadTraceRecordings(t) {
		for _, msg := range rec.msgs {
			bounds := traceAttrBoundaries(msg)
			for n := 0; n < len(msg); n++ {
				_, err := ParseTrace(msg[:n])
				if err == nil && !bounds[n] {
					t.Errorf("%s: cut at %d of %d inside an attribute parsed without error", rec.name, n, len(msg))
				}
			}
		}
	}
}

// traceAttrBoundaries returns the offsets in msg where a top-level
// attribute ends: after its data, or anywhere in the padding that aligns
// the next one (a missing pad loses nothing).
func traceAttrBoundaries(msg []byte) map[int]bool {
	b := map[int]bool{traceNfgenmsgLen: true}
	for i := traceNfgenmsgLen; i+4 <= len(msg); {
		l := max(int(binary.NativeEndian.Uint16(msg[i:])), 4)
		for n := i + l; n <= i+(l+3)&^3; n++ {
			b[n] = true
		}
		i += (l + 3) &^ 3
	}
	return b
}

// TestParseTraceGarbage feeds random bytes, and random bytes after a valid
// nfgenmsg and attribute header: errors, never a panic.
func TestParseTraceGarbage(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		b := make([]byte, rnd.Intn(200))
		rnd.Read(b)
		if len(b) > 8 && i%2 == 0 {
			copy(b, []byte{1, 0, 0, 0, byte(len(b) - 4), 0, byte(rnd.Intn(23)), 0})
		}
		ParseTrace(b)
	}
}

func TestIsTraceMessage(t *testing.T) {
	if !IsTraceMessage(0x0a11) {
		t.Error("0x0a11 is NFT_MSG_TRACE")
	}
	for _, typ := range []uint16{0x0a10, 0x0a00, 0x0011, 0x0b11, 2, 3} {
		if IsTraceMessage(typ) {
			t.Errorf("%#x is not NFT_MSG_TRACE", typ)
		}
	}
}

func TestTraceNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{TracePolicy.String(), "policy"},
		{TraceReturn.String(), "return"},
		{TraceRule.String(), "rule"},
		{TraceType(9).String(), "type(9)"},
		{VerdictDrop.String(), "drop"},
		{VerdictAccept.String(), "accept"},
		{VerdictStolen.String(), "stolen"},
		{VerdictQueue.String(), "queue"},
		{VerdictContinue.String(), "continue"},
		{VerdictBreak.String(), "break"},
		{VerdictJump.String(), "jump"},
		{VerdictGoto.String(), "goto"},
		{VerdictReturn.String(), "return"},
		{Verdict(-6).String(), "verdict(-6)"},
		{Verdict(7).String(), "verdict(7)"},
		{Verdict(5<<16 | 3).String(), "queue"}, // NF_QUEUE_NR(5)
		{Verdict(1<<16 | 0).String(), "drop"},  // NF_DROP_ERR(-EPERM)
		{FamilyName(1), "inet"},
		{FamilyName(2), "ip"},
		{FamilyName(3), "arp"},
		{FamilyName(5), "netdev"},
		{FamilyName(7), "bridge"},
		{FamilyName(10), "ip6"},
		{FamilyName(4), "family(4)"},
		{CTStateString(0), ""},
		{CTStateString(1), "invalid"},
		{CTStateString(2), "established"},
		{CTStateString(4), "related"},
		{CTStateString(8), "new"},
		{CTStateString(64), "untracked"},
		{CTStateString(8 | 4), "related,new"},
		{CTStateString(2 | 0x100), "established,0x100"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestTraceOutcome(t *testing.T) {
	for _, tt := range []struct {
		tr   Trace
		want Verdict
		ok   bool
	}{
		{Trace{Verdict: VerdictJump, HasVerdict: true}, VerdictJump, true},
		{Trace{Policy: VerdictDrop, HasPolicy: true}, VerdictDrop, true},
		{Trace{}, 0, false},
	} {
		if v, ok := tt.tr.Outcome(); v != tt.want || ok != tt.ok {
			t.Errorf("%+v: Outcome() = %v, %v; want %v, %v", tt.tr, v, ok, tt.want, tt.ok)
		}
	}
}
