package nflog

import (
	"fmt"
	"strings"
)

// NFTA_TRACE_* attribute types (linux/netfilter/nf_tables.h).
// golang.org/x/sys/unix stops at NFTA_TRACE_PAD: 18 to 21 came in Linux 6.16.
const (
	traceAttrTable           = 1
	traceAttrChain           = 2
	traceAttrRuleHandle      = 3
	traceAttrType            = 4
	traceAttrVerdict         = 5
	traceAttrID              = 6
	traceAttrLLHeader        = 7
	traceAttrNetworkHeader   = 8
	traceAttrTransportHeader = 9
	traceAttrIIF             = 10
	traceAttrIIFType         = 11
	traceAttrOIF             = 12
	traceAttrOIFType         = 13
	traceAttrMark            = 14
	traceAttrNFProto         = 15
	traceAttrPolicy          = 16
	traceAttrPad             = 17
	traceAttrCTID            = 18
	traceAttrCTDirection     = 19
	traceAttrCTStatus        = 20
	traceAttrCTState         = 21
)

// NFTA_VERDICT_* attribute types, nested in NFTA_TRACE_VERDICT.
const (
	traceVerdictCode  = 1
	traceVerdictChain = 2
)

var traceAttrNames = [...]string{
	traceAttrTable:           "table",
	traceAttrChain:           "chain",
	traceAttrRuleHandle:      "rule handle",
	traceAttrType:            "type",
	traceAttrVerdict:         "verdict",
	traceAttrID:              "id",
	traceAttrLLHeader:        "link-layer header",
	traceAttrNetworkHeader:   "network header",
	traceAttrTransportHeader: "transport header",
	traceAttrIIF:             "iif",
	traceAttrIIFType:         "iif type",
	traceAttrOIF:             "oif",
	traceAttrOIFType:         "oif type",
	traceAttrMark:            "mark",
	traceAttrNFProto:         "nfproto",
	traceAttrPolicy:          "policy",
	traceAttrPad:             "pad",
	traceAttrCTID:            "ct id",
	traceAttrCTDirection:     "ct direction",
	traceAttrCTStatus:        "ct status",
	traceAttrCTState:         "ct state",
}

// traceAttrName names an NFTA_TRACE_* attribute type for error messages.
func traceAttrName(typ uint16) string {
	if int(typ) < len(traceAttrNames) && traceAttrNames[typ] != "" {
		return traceAttrNames[typ]
	}
	return fmt.Sprintf("type %d", typ)
}

// traceVerdictAttrName names an NFTA_VERDICT_* attribute type.
func traceVerdictAttrName(typ uint16) string {
	switch typ {
	case traceVerdictCode:
		return "verdict code"
	case traceVerdictChain:
		return "verdict chain"
	}
	return fmt.Sprintf("verdict attribute type %d", typ)
}

// traceAttrSet records which attribute types a message carried.
type traceAttrSet uint32

func (s *traceAttrSet) add(typ uint16) {
	if typ < 32 {
		*s |= 1 << typ
	}
}

// requireBasics fails unless the attributes the kernel puts in every
// trace event are there.
func (s traceAttrSet) requireBasics() error {
	for _, typ := range []uint16{traceAttrType, traceAttrID, traceAttrTable, traceAttrChain} {
		if s&(1<<typ) == 0 {
			return fmt.Errorf("nf_tables trace: no %s attribute", traceAttrName(typ))
		}
	}
	return nil
}

// TraceType says why a trace event was sent (NFT_TRACETYPE_*).
type TraceType uint32

// Trace event types.
const (
	TracePolicy TraceType = 1 // the base chain's policy decided
	TraceReturn TraceType = 2 // the packet returned from a chain
	TraceRule   TraceType = 3 // a rule gave a verdict, or the chain ended (continue, no handle)
)

// String returns "policy", "return" or "rule".
func (t TraceType) String() string {
	switch t {
	case TracePolicy:
		return "policy"
	case TraceReturn:
		return "return"
	case TraceRule:
		return "rule"
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Verdict is an nf_tables verdict code: a netfilter verdict (drop,
// accept, stolen, queue) or an nf_tables one (negative).
type Verdict int32

// Verdict codes.
const (
	VerdictDrop     Verdict = 0
	VerdictAccept   Verdict = 1
	VerdictStolen   Verdict = 2
	VerdictQueue    Verdict = 3
	VerdictContinue Verdict = -1
	VerdictBreak    Verdict = -2
	VerdictJump     Verdict = -3
	VerdictGoto     Verdict = -4
	VerdictReturn   Verdict = -5
)

var traceVerdictNames = map[Verdict]string{
	VerdictDrop:     "drop",
	VerdictAccept:   "accept",
	VerdictStolen:   "stolen",
	VerdictQueue:    "queue",
	VerdictContinue: "continue",
	VerdictBreak:    "break",
	VerdictJump:     "jump",
	VerdictGoto:     "goto",
	VerdictReturn:   "return",
}

// String returns the verdict's nft name ("accept", "jump", ...), or
// "verdict(N)" for a code it does not know. Like nft, it names a
// netfilter verdict by its low byte (NF_VERDICT_MASK): the upper bits
// carry a queue number or an errno.
func (v Verdict) String() string {
	code := v
	if code >= 0 {
		code &= 0xff
	}
	if s, ok := traceVerdictNames[code]; ok {
		return s
	}
	return fmt.Sprintf("verdict(%d)", int32(v))
}

// FamilyName returns the nft name of a table family: "inet", "ip",
// "ip6", "bridge", "netdev" or "arp", else "family(N)".
func FamilyName(f uint8) string {
	switch f {
	case 1:
		return "inet"
	case 2:
		return "ip"
	case 3:
		return "arp"
	case 5:
		return "netdev"
	case 7:
		return "bridge"
	case 10:
		return "ip6"
	}
	return fmt.Sprintf("family(%d)", f)
}

// NF_CT_STATE_* bits: NF_CT_STATE_INVALID_BIT, then
// NF_CT_STATE_BIT(ctinfo) = 1 << (ctinfo%IP_CT_IS_REPLY + 1) for
// IP_CT_ESTABLISHED (0), IP_CT_RELATED (1) and IP_CT_NEW (2), and
// NF_CT_STATE_UNTRACKED_BIT.
var traceCTStateBits = []struct {
	bit  uint32
	name string
}{
	{1 << 0, "invalid"},
	{1 << 1, "established"},
	{1 << 2, "related"},
	{1 << 3, "new"},
	{1 << 6, "untracked"},
}

// CTStateString names the NF_CT_STATE_* bits of state, joined with ","
// ("new", "established", "related", "invalid", "untracked"); bits it does
// not know are shown in hex. It returns "" for 0.
func CTStateString(state uint32) string {
	var names []string
	for _, b := range traceCTStateBits {
		if state&b.bit != 0 {
			names = append(names, b.name)
			state &^= b.bit
		}
	}
	if state != 0 {
		names = append(names, fmt.Sprintf("%#x", state))
	}
	return strings.Join(names, ",")
}
