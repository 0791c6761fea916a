package nflog

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Flags of a fib rule header (include/uapi/linux/fib_rules.h).
const (
	fibRuleInvert      = 0x2
	fibRuleUnresolved  = 0x4
	fibRuleIIFDetached = 0x8
	fibRuleOIFDetached = 0x10
)

// portRange is a rule's sport or dport: set when the rule has one.
type portRange struct {
	Start, End uint16
	Set        bool
}

func (p portRange) contains(port uint16) bool {
	return !p.Set || (port >= p.Start && port <= p.End)
}

// policyRule is one `ip rule`, as the kernel dumps it (RTM_NEWRULE).
type policyRule struct {
	Family   uint8
	Priority uint32
	Invert   bool
	Src, Dst netip.Prefix // invalid: any
	SrcLen   uint8        // header prefix lengths, for a length without an address
	DstLen   uint8
	TOS      uint8
	Mark     uint32
	Mask     uint32 // 0: the rule does not match on the mark
	IIF, OIF string
	// IIFDetached and OIFDetached: the named device does not exist, so
	// the rule matches nothing.
	IIFDetached, OIFDetached bool
	L3mdev                   bool
	UID                      struct{ Start, End uint32 }
	HasUID                   bool
	IPProto                  uint8
	SPort, DPort             portRange
	TunID                    uint64
	Table                    uint32
	SuppressPrefixlen        int64 // -1: unset
	SuppressIfgroup          int64 // -1: unset
	Flow                     uint32
	Action                   uint8 // FR_ACT_*
	Goto                     uint32
	HasGoto                  bool
	Unresolved               bool
	Protocol                 uint8
}

// ruleFlow is what the kernel's rule matching sees of a packet.
type ruleFlow struct {
	Src, Dst netip.Addr // Src invalid: the lookup has no source address
	IIF      string     // "lo" for a packet the namespace sends
	OIF      string
	Mark     uint32
	UID      uint32
	Proto    uint8
	SPort    uint16
	DPort    uint16
	TOS      uint8
}

// parseRule decodes an RTM_NEWRULE message body: a fib_rule_hdr, then
// FRA_* attributes.
func parseRule(b []byte) (policyRule, error) {
	if len(b) < unix.SizeofRtMsg {
		return policyRule{}, fmt.Errorf("rule message of %d bytes is shorter than its header", len(b))
	}
	flags := binary.NativeEndian.Uint32(b[8:12])
	r := policyRule{
		Family: b[0], DstLen: b[1], SrcLen: b[2], TOS: b[3], Table: uint32(b[4]), Action: b[7],
		Invert:            flags&fibRuleInvert != 0,
		Unresolved:        flags&fibRuleUnresolved != 0,
		IIFDetached:       flags&fibRuleIIFDetached != 0,
		OIFDetached:       flags&fibRuleOIFDetached != 0,
		SuppressPrefixlen: -1, SuppressIfgroup: -1,
	}
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofRtMsg:])
	if err != nil {
		return policyRule{}, fmt.Errorf("decode rule attributes: %w", err)
	}
	hasMask := false
	for ad.Next() {
		switch ad.Type() {
		case unix.FRA_SRC:
			r.Src = prefixFrom(ad.Bytes(), r.SrcLen)
		case unix.FRA_DST:
			r.Dst = prefixFrom(ad.Bytes(), r.DstLen)
		case unix.FRA_IIFNAME:
			r.IIF = ad.String()
		case unix.FRA_OIFNAME:
			r.OIF = ad.String()
		case unix.FRA_GOTO:
			r.Goto, r.HasGoto = ad.Uint32(), true
		case unix.FRA_PRIORITY:
			r.Priority = ad.Uint32()
		case unix.FRA_FWMARK:
			r.Mark = ad.Uint32()
		case unix.FRA_FWMASK:
			r.Mask, hasMask = ad.Uint32(), true
		case unix.FRA_FLOW:
			r.Flow = ad.Uint32()
		case unix.FRA_TUN_ID:
			r.TunID = binary.BigEndian.Uint64(pad(ad.Bytes(), 8))
		case unix.FRA_SUPPRESS_IFGROUP:
			r.SuppressIfgroup = signedU32(ad.Uint32())
		case unix.FRA_SUPPRESS_PREFIXLEN:
			r.SuppressPrefixlen = signedU32(ad.Uint32())
		case unix.FRA_TABLE:
			r.Table = ad.Uint32()
		case unix.FRA_L3MDEV:
			r.L3mdev = ad.Uint8() != 0
		case unix.FRA_UID_RANGE:
			v := pad(ad.Bytes(), 8)
			r.UID.Start, r.UID.End = binary.NativeEndian.Uint32(v), binary.NativeEndian.Uint32(v[4:])
			r.HasUID = true
		case unix.FRA_PROTOCOL:
			r.Protocol = ad.Uint8()
		case unix.FRA_IP_PROTO:
			r.IPProto = ad.Uint8()
		case unix.FRA_SPORT_RANGE:
			r.SPort = parsePortRange(ad.Bytes())
		case unix.FRA_DPORT_RANGE:
			r.DPort = parsePortRange(ad.Bytes())
		}
	}
	if err := ad.Err(); err != nil {
		return policyRule{}, fmt.Errorf("decode rule attributes: %w", err)
	}
	if r.Mark != 0 && !hasMask {
		r.Mask = 0xffffffff
	}
	return r, nil
}

// signedU32 reads the kernel's "unset" value (-1 as a u32) as -1.
func signedU32(v uint32) int64 {
	if v == 0xffffffff {
		return -1
	}
	return int64(v)
}

func pad(b []byte, n int) []byte {
	if len(b) >= n {
		return b
	}
	return append(append([]byte(nil), b...), make([]byte, n-len(b))...)
}

func parsePortRange(b []byte) portRange {
	b = pad(b, 4)
	return portRange{Start: binary.NativeEndian.Uint16(b), End: binary.NativeEndian.Uint16(b[2:]), Set: true}
}

// prefixFrom makes a prefix of an address attribute and a header length.
func prefixFrom(b []byte, bits uint8) netip.Prefix {
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return netip.Prefix{}
	}
	p, err := a.Prefix(int(bits))
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// String renders the rule as `ip rule` (iproute2) prints it, with a
// space after the priority where ip prints a tab.
func (r policyRule) String() string {
	w := []string{fmt.Sprintf("%d:", r.Priority)}
	if r.Invert {
		w = append(w, "not")
	}
	w = append(w, "from", prefixText(r.Src, r.SrcLen, "all"))
	if r.Dst.IsValid() || r.DstLen != 0 {
		w = append(w, "to", prefixText(r.Dst, r.DstLen, "all"))
	}
	if r.TOS != 0 {
		w = append(w, "tos", fmt.Sprintf("0x%x", r.TOS))
	}
	if r.Mark != 0 || r.Mask != 0 {
		if r.Mask == 0xffffffff {
			w = append(w, "fwmark", fmt.Sprintf("0x%x", r.Mark))
		} else {
			w = append(w, "fwmark", fmt.Sprintf("0x%x/0x%x", r.Mark, r.Mask))
		}
	}
	w = appendDev(w, "iif", r.IIF, r.IIFDetached)
	w = appendDev(w, "oif", r.OIF, r.OIFDetached)
	if r.L3mdev {
		w = append(w, "lookup", "[l3mdev-table]")
	}
	if r.HasUID {
		w = append(w, "uidrange", fmt.Sprintf("%d-%d", r.UID.Start, r.UID.End))
	}
	if r.IPProto != 0 {
		w = append(w, "ipproto", ipProtoName(r.IPProto))
	}
	w = appendPorts(w, "sport", r.SPort)
	w = appendPorts(w, "dport", r.DPort)
	if r.TunID != 0 {
		w = append(w, "tun_id", fmt.Sprint(r.TunID))
	}
	if r.Table != 0 {
		w = append(w, "lookup", tableName(r.Table))
		if r.SuppressPrefixlen >= 0 {
			w = append(w, "suppress_prefixlength", fmt.Sprint(r.SuppressPrefixlen))
		}
		if r.SuppressIfgroup >= 0 {
			w = append(w, "suppress_ifgroup", fmt.Sprint(r.SuppressIfgroup))
		}
	}
	if r.Flow != 0 {
		w = append(w, "realms", realmsText(r.Flow))
	}
	w = append(w, r.actionWords()...)
	if r.Protocol != 0 && r.Protocol != unix.RTPROT_KERNEL {
		w = append(w, "proto", routeProtoName(r.Protocol))
	}
	return strings.Join(w, " ")
}

func (r policyRule) actionWords() []string {
	switch r.Action {
	case unix.FR_ACT_GOTO:
		w := []string{"goto", "none"}
		if r.HasGoto {
			w[1] = fmt.Sprint(r.Goto)
		}
		if r.Unresolved {
			w = append(w, "[unresolved]")
		}
		return w
	case unix.FR_ACT_NOP:
		return []string{"nop"}
	case unix.FR_ACT_BLACKHOLE:
		return []string{"blackhole"}
	case unix.FR_ACT_UNREACHABLE:
		return []string{"unreachable"}
	case unix.FR_ACT_PROHIBIT:
		return []string{"prohibit"}
	}
	return nil
}

func realmsText(flow uint32) string {
	if flow>>16 != 0 {
		return fmt.Sprintf("%d/%d", flow>>16, flow&0xffff)
	}
	return fmt.Sprint(flow & 0xffff)
}

func appendDev(w []string, key, dev string, detached bool) []string {
	if dev == "" {
		return w
	}
	w = append(w, key, dev)
	if detached {
		w = append(w, "[detached]")
	}
	return w
}

func appendPorts(w []string, key string, p portRange) []string {
	if !p.Set {
		return w
	}
	if p.Start == p.End {
		return append(w, key, fmt.Sprint(p.Start))
	}
	return append(w, key, fmt.Sprintf("%d-%d", p.Start, p.End))
}

// prefixText prints a prefix as iproute2 does: a host prefix without
// its length, none as all.
func prefixText(p netip.Prefix, bits uint8, none string) string {
	if !p.IsValid() {
		if bits != 0 {
			return fmt.Sprintf("0/%d", bits)
		}
		return none
	}
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}

// matches reports whether the rule's selector matches the flow, as the
// kernel's fib_rule_match and fib4/fib6_rule_match decide it.
func (r policyRule) matches(f ruleFlow) bool {
	return r.selects(f) != r.Invert
}

func (r policyRule) selects(f ruleFlow) bool {
	switch {
	case r.IIF != "" && (r.IIFDetached || r.IIF != f.IIF),
		r.OIF != "" && (r.OIFDetached || r.OIF != f.OIF),
		(r.Mark^f.Mark)&r.Mask != 0,
		r.TunID != 0, // the lookup carries no tunnel metadata
		r.L3mdev,     // VRF devices are not modelled: see lookupRoute
		r.HasUID && (f.UID < r.UID.Start || f.UID > r.UID.End),
		!prefixMatches(r.Src, r.Family, f.Src),
		!prefixMatches(r.Dst, r.Family, f.Dst),
		r.TOS != 0 && r.TOS != f.TOS,
		r.IPProto != 0 && r.IPProto != f.Proto,
		!r.SPort.contains(f.SPort),
		!r.DPort.contains(f.DPort):
		return false
	}
	return true
}

// prefixMatches: an IPv4 lookup without a source has source 0.0.0.0;
// an IPv6 rule with a source prefix never matches a lookup without one.
func prefixMatches(p netip.Prefix, family uint8, a netip.Addr) bool {
	if !p.IsValid() || p.Bits() == 0 {
		return true
	}
	if !a.IsValid() {
		if family != unix.AF_INET {
			return false
		}
		a = netip.IPv4Unspecified()
	}
	return p.Contains(a.Unmap())
}

// tableLookup answers what a table holds for the flow: the route, or
// found false when the table has none (the rule then falls through).
type tableLookup func(table uint32) (rt routeEntry, found bool)

// walkRules follows the rules in order as the kernel's fib_rules_lookup
// does, asking lookup for each table a matching rule names, and returns
// the rule that ended the walk with the route it found (none for an
// unreachable, blackhole or prohibit rule). ok is false when no rule
// ended it: the kernel then has no route ("network is unreachable").
func walkRules(rules []policyRule, f ruleFlow, lookup tableLookup) (rule policyRule, rt routeEntry, hasRoute, ok bool) {
	for i := 0; i < len(rules); i++ {
		r := rules[i]
		if !r.matches(f) {
			continue
		}
		switch r.Action {
		case unix.FR_ACT_GOTO:
			if j := gotoTarget(rules, i); j > i {
				i = j - 1
			}
		case unix.FR_ACT_BLACKHOLE, unix.FR_ACT_UNREACHABLE, unix.FR_ACT_PROHIBIT:
			return r, routeEntry{}, false, true
		case unix.FR_ACT_TO_TBL:
			if r.L3mdev {
				continue
			}
			e, found := lookup(r.Table)
			if !found || e.Type == unix.RTN_THROW || r.suppresses(e) {
				continue
			}
			return r, e, true, true
		}
	}
	return policyRule{}, routeEntry{}, false, false
}

// gotoTarget is the index of the first rule with the goto's priority,
// or -1 (an unresolved goto is skipped).
func gotoTarget(rules []policyRule, i int) int {
	if !rules[i].HasGoto {
		return -1
	}
	for j := i + 1; j < len(rules); j++ {
		if rules[j].Priority == rules[i].Goto {
			return j
		}
	}
	return -1
}

// suppresses: suppress_prefixlength N rejects a route whose prefix is N
// bits or shorter (wg-quick's "lookup main suppress_prefixlength 0"
// ignores main's default route). Only routes that succeeded are
// suppressed; a blackhole or unreachable route ends the lookup.
func (r policyRule) suppresses(e routeEntry) bool {
	if isErrorRoute(e.Type) {
		return false
	}
	return r.SuppressPrefixlen >= 0 && int64(e.DstLen) <= r.SuppressPrefixlen
}

func isErrorRoute(t uint8) bool {
	switch t {
	case unix.RTN_BLACKHOLE, unix.RTN_UNREACHABLE, unix.RTN_PROHIBIT:
		return true
	}
	return false
}
