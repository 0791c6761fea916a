// Package nflog holds hooktrace's kernel event sources: nf_tables trace
// events, NFLOG messages, and the rules hooktrace installs to produce them.
package nflog

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/mdlayher/netlink"
)

// Trace is one nf_tables trace event as the kernel sent it: one rule,
// policy or return step of one packet through one chain.
type Trace struct {
	Netns  string    // the namespace the event came from, set by the listener
	Time   time.Time // when hooktrace received it (the kernel sends no time)
	ID     uint32    // the packet's trace id, as `nft monitor trace` prints it
	Family uint8     // nfgenmsg family of the table (see FamilyName)
	Table  string
	Chain  string
	Handle uint64 // rule handle, 0 when absent (policy, end of chain)
	Type   TraceType

	Verdict    Verdict // NFTA_TRACE_VERDICT code, for rule and return events
	HasVerdict bool
	JumpTarget string  // chain of a jump or goto verdict
	Policy     Verdict // the base chain's policy, for policy events
	HasPolicy  bool

	// Header snapshots: at most 20, 40 and 20 bytes, sent only in the
	// first event of each base-chain run. They are copies, not aliases
	// of the socket buffer.
	LL, Network, Transport []byte

	IIF, OIF         uint32 // ifindexes in Netns, 0 when absent
	IIFType, OIFType uint16 // ARPHRD_* types of those interfaces
	Mark             uint32 // packet mark, sent only when non-zero
	NFProto          uint32 // the packet's protocol family (NFPROTO_*)

	// Conntrack view of the packet (kernels from 6.16, and only when
	// conntrack is loaded in the namespace).
	CTID        uint32 // the id `conntrack -L -o id` prints
	CTDirection uint8  // 0 original, 1 reply
	CTStatus    uint32 // IPS_* bits
	CTState     uint32 // NF_CT_STATE_* bits (see CTStateString)
	HasCT       bool
}

// Outcome returns the event's verdict: the rule's or return's verdict, or
// the policy of a policy event. ok is false when the event has neither.
func (t *Trace) Outcome() (v Verdict, ok bool) {
	switch {
	case t.HasVerdict:
		return t.Verdict, true
	case t.HasPolicy:
		return t.Policy, true
	}
	return 0, false
}

// NFT_MSG_TRACE in the nf_tables netfilter subsystem.
const traceMsgType = 10<<8 | 17

// IsTraceMessage says whether a netlink message type is NFT_MSG_TRACE
// ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE = 0x0a11).
func IsTraceMessage(msgType uint16) bool { return msgType == traceMsgType }

// traceNfgenmsgLen is the size of struct nfgenmsg that starts the payload.
const traceNfgenmsgLen = 4

// ParseTrace decodes the payload of one NFT_MSG_TRACE netlink message:
// what follows the 16-byte nlmsghdr, that is the 4-byte nfgenmsg and then
// the attributes, whose values are big-endian. Time and Netns are left
// for the caller. Errors name what was malformed; ParseTrace never panics.
func ParseTrace(payload []byte) (Trace, error) {
	if len(payload) < traceNfgenmsgLen {
		return Trace{}, fmt.Errorf("nf_tables trace: %d bytes, shorter than the 4-byte nfgenmsg header", len(payload))
	}
	t := Trace{Family: payload[0]}
	ad, err := netlink.NewAttributeDecoder(payload[traceNfgenmsgLen:])
	if err != nil {
		return Trace{}, fmt.Errorf("nf_tables trace attributes: %w", err)
	}
	ad.ByteOrder = binary.BigEndian
	var seen traceAttrSet
	for ad.Next() {
		seen.add(ad.Type())
		t.decodeAttr(ad)
	}
	if err := ad.Err(); err != nil {
		return Trace{}, fmt.Errorf("nf_tables trace %s attribute: %w", traceAttrName(ad.Type()), err)
	}
	if err := seen.requireBasics(); err != nil {
		return Trace{}, err
	}
	return t, nil
}

// decodeAttr stores the attribute ad points to; a decoding error stays
// in ad (sticky) for ParseTrace to report.
func (t *Trace) decodeAttr(ad *netlink.AttributeDecoder) {
	switch ad.Type() {
	case traceAttrTable:
		t.Table = ad.String()
	case traceAttrChain:
		t.Chain = ad.String()
	case traceAttrRuleHandle:
		t.Handle = ad.Uint64()
	case traceAttrType:
		t.Type = TraceType(ad.Uint32())
	case traceAttrVerdict:
		ad.Nested(t.decodeVerdict)
	case traceAttrID:
		t.ID = ad.Uint32()
	case traceAttrPolicy:
		t.Policy, t.HasPolicy = Verdict(int32(ad.Uint32())), true
	default:
		t.decodePacketAttr(ad)
	}
}

// decodePacketAttr stores the attributes that describe the packet rather
// than the rule: headers, interfaces, mark and conntrack.
func (t *Trace) decodePacketAttr(ad *netlink.AttributeDecoder) {
	switch ad.Type() {
	case traceAttrLLHeader:
		t.LL = ad.Bytes()
	case traceAttrNetworkHeader:
		t.Network = ad.Bytes()
	case traceAttrTransportHeader:
		t.Transport = ad.Bytes()
	case traceAttrIIF:
		t.IIF = ad.Uint32()
	case traceAttrIIFType:
		t.IIFType = ad.Uint16()
	case traceAttrOIF:
		t.OIF = ad.Uint32()
	case traceAttrOIFType:
		t.OIFType = ad.Uint16()
	case traceAttrMark:
		t.Mark = ad.Uint32()
	case traceAttrNFProto:
		t.NFProto = ad.Uint32()
	default:
		t.decodeCTAttr(ad)
	}
}

// decodeCTAttr stores the conntrack attributes and ignores unknown ones
// (padding, and whatever later kernels add).
func (t *Trace) decodeCTAttr(ad *netlink.AttributeDecoder) {
	switch ad.Type() {
	case traceAttrCTID:
		t.CTID, t.HasCT = ad.Uint32(), true
	case traceAttrCTDirection:
		t.CTDirection, t.HasCT = ad.Uint8(), true
	case traceAttrCTStatus:
		t.CTStatus, t.HasCT = ad.Uint32(), true
	case traceAttrCTState:
		t.CTState, t.HasCT = ad.Uint32(), true
	}
}

// decodeVerdict reads the nested NFTA_TRACE_VERDICT attribute.
func (t *Trace) decodeVerdict(nad *netlink.AttributeDecoder) error {
	for nad.Next() {
		switch nad.Type() {
		case traceVerdictCode:
			t.Verdict, t.HasVerdict = Verdict(int32(nad.Uint32())), true
		case traceVerdictChain:
			t.JumpTarget = nad.String()
		}
	}
	if err := nad.Err(); err != nil {
		return fmt.Errorf("%s: %w", traceVerdictAttrName(nad.Type()), err)
	}
	return nil
}
