package decode

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/hooktrace/hooktrace/nflog"
)

// LegacyRuleBook answers what iptables-legacy-save says about a chain's
// rules. nflog.LegacyRules is one.
type LegacyRuleBook interface {
	// Rule returns the n-th (1-based) rule of a chain, by family ("ip",
	// "ip6"), table and chain, as iptables-legacy-save prints it.
	Rule(family, table, chain string, n int) (string, bool)
	// Policy returns a built-in chain's policy, "" when unknown.
	Policy(family, table, chain string) string
}

// LegacyTracePrefix starts the log prefix of every iptables-legacy TRACE
// line: "TRACE: table:chain:rule|return|policy:N ".
const LegacyTracePrefix = "TRACE: "

// LegacyTraceLine is what the prefix of an iptables-legacy TRACE line
// says: the table and chain, why the line was logged, and the position N
// the kernel gives (the rule's, 1-based; for return and policy lines the
// chain's rule count plus one).
type LegacyTraceLine struct {
	Table string
	Chain string
	Type  nflog.TraceType
	Num   int
}

// errNotLegacyTrace: an NFLOG record that is not a TRACE line.
var errNotLegacyTrace = errors.New("not an iptables TRACE line")

// ParseLegacyTracePrefix parses "TRACE: table:chain:type:N" with or
// without the trailing space the kernel adds. Chain names may hold ':'
// (iptables accepts them), tables may not. A prefix that does not start
// with "TRACE: " is an error that IsNotLegacyTrace recognises.
func ParseLegacyTracePrefix(prefix string) (LegacyTraceLine, error) {
	rest, ok := strings.CutPrefix(prefix, LegacyTracePrefix)
	if !ok {
		return LegacyTraceLine{}, errNotLegacyTrace
	}
	rest = strings.TrimRight(rest, " ")
	bad := func(why string) (LegacyTraceLine, error) {
		return LegacyTraceLine{}, fmt.Errorf("iptables TRACE line %q: %s", prefix, why)
	}
	table, rest, ok := strings.Cut(rest, ":")
	if !ok || table == "" {
		return bad("no table")
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return bad("no rule number")
	}
	num, err := strconv.Atoi(rest[i+1:])
	if err != nil || num < 1 || rest[i+1] == '+' {
		return bad("rule number is not a positive number")
	}
	rest = rest[:i]
	j := strings.LastIndexByte(rest, ':')
	if j <= 0 {
		return bad("no chain or type")
	}
	var typ nflog.TraceType
	switch rest[j+1:] {
	case "rule":
		typ = nflog.TraceRule
	case "return":
		typ = nflog.TraceReturn
	case "policy":
		typ = nflog.TracePolicy
	default:
		return bad(fmt.Sprintf("type %q is not rule, return or policy", rest[j+1:]))
	}
	return LegacyTraceLine{Table: table, Chain: rest[:j], Type: typ, Num: num}, nil
}

// String formats the line as the kernel does, without the trailing space.
func (l LegacyTraceLine) String() string {
	return fmt.Sprintf("%s%s:%s:%s:%d", LegacyTracePrefix, l.Table, l.Chain, l.Type, l.Num)
}

// IsNotLegacyTrace says whether an error from ParseLegacyTracePrefix or
// LegacyTrace only means that the record is not a TRACE line: a user's
// NFLOG rule on group 0, or conntrack's log of an invalid packet.
func IsNotLegacyTrace(err error) bool { return errors.Is(err, errNotLegacyTrace) }

// legacySnapshotBytes bounds the packet bytes an event keeps: enough for
// an IPv6 header with TCP options, or the inner headers of a VXLAN packet.
const legacySnapshotBytes = 128

// LegacyTrace turns an NFLOG record (a LINKTYPE_NFLOG record: nfgenmsg
// and NFULA attributes) that carries an iptables-legacy TRACE line into
// the event nf_tables traces give, in the namespace netns, received at.
//
// The record says where (family, table, chain, the hook from the NFLOG
// header), the interfaces, the mark and the packet. book (nil when
// unknown) gives the rule's text and its chain's policy; the verdict is
// what the rule's target says (-j DROP is drop, -j ACCEPT accept, a user
// chain jump, -g goto, LOG and the like continue), the policy for a
// policy line, return for the end of a user chain. The priority is the
// one iptables-legacy gives the table at that hook.
//
// iptables-legacy rules have no handle: the event is marked Legacy and
// RuleNumber holds the rule's 1-based position in its chain (0 for
// policy and return lines), which is how `iptables -L --line-numbers`
// numbers it. Rule and IptablesRule both hold
// the iptables-legacy-save line. ID is not the kernel's (TRACE lines carry
// none) but a hash of header fields that no table changes (for IPv4 the
// protocol, IP id, length and fragment field, and for TCP the sequence
// and acknowledgement numbers; for IPv6 also the addresses and flow
// label), so that the lines of one packet share it. The packet's first
// bytes are kept as the header snapshot, on every event.
//
// A record that is not a TRACE line is an error that IsNotLegacyTrace
// recognises. LegacyTrace keeps no reference to record.
func LegacyTrace(netns string, at time.Time, record []byte, book LegacyRuleBook, ifname func(index uint32) string) (TraceEvent, error) {
	var n NFLOG
	if err := n.DecodeFromBytes(record, gopacket.NilDecodeFeedback); err != nil {
		return TraceEvent{}, fmt.Errorf("decode NFLOG record: %w", err)
	}
	line, err := ParseLegacyTracePrefix(string(n.Prefix))
	if err != nil {
		return TraceEvent{}, err
	}
	ev := TraceEvent{Trace: nflog.Trace{
		Netns:   netns,
		Time:    at,
		Family:  n.Family,
		Table:   line.Table,
		Chain:   line.Chain,
		Type:    line.Type,
		IIF:     n.Indev,
		OIF:     n.Outdev,
		Mark:    n.Mark,
		NFProto: uint32(n.Family),
	}}
	ev.Legacy = true
	ev.Hook = n.HookName()
	ev.Priority, ev.HasPriority = legacyPriority(line.Table, ev.Hook)
	ev.resolveLegacy(line, book)
	ev.Network, ev.Transport = legacySnapshot(n.payload)
	ev.ID = legacyPacketID(n.payload)
	if ifname != nil {
		if ev.IIF != 0 {
			ev.IIFName = ifname(ev.IIF)
		}
		if ev.OIF != 0 {
			ev.OIFName = ifname(ev.OIF)
		}
	}
	return ev, nil
}

// resolveLegacy fills the position, the rule's text and the verdict.
func (ev *TraceEvent) resolveLegacy(line LegacyTraceLine, book LegacyRuleBook) {
	fam := nflog.FamilyName(ev.Family)
	switch line.Type {
	case nflog.TraceRule:
		ev.RuleNumber = line.Num
		if book == nil {
			return
		}
		rule, ok := book.Rule(fam, line.Table, line.Chain, line.Num)
		if !ok {
			return
		}
		ev.Rule, ev.IptablesRule = rule, rule
		ev.Verdict, ev.JumpTarget, ev.HasVerdict = IptablesVerdict(rule)
	case nflog.TraceReturn:
		ev.Verdict, ev.HasVerdict = nflog.VerdictReturn, true
	case nflog.TracePolicy:
		if book == nil {
			return
		}
		switch book.Policy(fam, line.Table, line.Chain) {
		case "ACCEPT":
			ev.Policy, ev.HasPolicy = nflog.VerdictAccept, true
		case "DROP":
			ev.Policy, ev.HasPolicy = nflog.VerdictDrop, true
		}
	}
}

// legacyPriority is the priority ip_tables and ip6_tables register a
// table at (NF_IP_PRI_* and NF_IP6_PRI_*, the same numbers).
func legacyPriority(table, hook string) (int, bool) {
	switch table {
	case "raw":
		return -300, true
	case "mangle":
		return -150, true
	case "nat":
		switch hook {
		case "prerouting", "output":
			return -100, true
		case "input", "postrouting":
			return 100, true
		}
	case "filter":
		return 0, true
	case "security":
		return 50, true
	}
	return 0, false
}

// Targets by what they do to the packet: the ones that end the chain with
// a netfilter verdict, and the ones that let it go on (XT_CONTINUE).
var (
	iptablesVerdictTargets = map[string]nflog.Verdict{
		"ACCEPT":     nflog.VerdictAccept,
		"DROP":       nflog.VerdictDrop,
		"RETURN":     nflog.VerdictReturn,
		"REJECT":     nflog.VerdictDrop, // it sends its error, then drops
		"QUEUE":      nflog.VerdictQueue,
		"NFQUEUE":    nflog.VerdictQueue,
		"DNAT":       nflog.VerdictAccept, // NAT targets end the nat chain
		"SNAT":       nflog.VerdictAccept,
		"MASQUERADE": nflog.VerdictAccept,
		"REDIRECT":   nflog.VerdictAccept,
		"NETMAP":     nflog.VerdictAccept,
	}
	iptablesContinueTargets = map[string]bool{
		"LOG": true, "NFLOG": true, "ULOG": true, "TRACE": true, "MARK": true,
		"CONNMARK": true, "CT": true, "NOTRACK": true, "CLASSIFY": true,
		"DSCP": true, "TOS": true, "TTL": true, "HL": true, "ECN": true,
		"TCPMSS": true, "TCPOPTSTRIP": true, "CHECKSUM": true, "SECMARK": true,
		"CONNSECMARK": true, "AUDIT": true, "SET": true, "IDLETIMER": true,
		"LED": true, "RATEEST": true, "HMARK": true, "TEE": true,
		"CLUSTERIP": true,
	}
	// iptablesOpenTargets may end the chain or not, depending on the
	// packet: their verdict is not known from the rule.
	iptablesOpenTargets = map[string]bool{"SYNPROXY": true, "TPROXY": true}
)

// IptablesVerdict tells the verdict of a rule in iptables-save syntax
// from its target: -j ACCEPT accept, -j DROP and -j REJECT drop, -j
// RETURN return, a NAT target accept, -j QUEUE/NFQUEUE queue, -j CHAIN a
// jump to CHAIN, -g CHAIN a goto, a target that lets the packet go on
// (LOG, MARK, TRACE, ...) or no target at all continue. ok is false when
// the target's verdict depends on the packet (TPROXY, SYNPROXY).
func IptablesVerdict(rule string) (v nflog.Verdict, target string, ok bool) {
	flag, name := iptablesTarget(rule)
	switch {
	case name == "":
		return nflog.VerdictContinue, "", true
	case flag == "-g":
		return nflog.VerdictGoto, name, true
	case iptablesOpenTargets[name]:
		return 0, "", false
	case iptablesContinueTargets[name]:
		return nflog.VerdictContinue, "", true
	}
	if v, ok := iptablesVerdictTargets[name]; ok {
		return v, "", true
	}
	return nflog.VerdictJump, name, true
}

// iptablesTarget finds the "-j NAME" or "-g NAME" of a rule, outside
// quoted strings (a comment or log prefix may hold "-j").
func iptablesTarget(rule string) (flag, name string) {
	words := iptablesWords(rule)
	for i := 0; i+1 < len(words); i++ {
		if w := words[i]; w == "-j" || w == "-g" || w == "--jump" || w == "--goto" {
			flag = w[:2]
			if w == "--goto" {
				flag = "-g"
			}
			return flag, words[i+1]
		}
	}
	return "", ""
}

// iptablesWords splits a rule as iptables-save quotes it: words apart by
// spaces, double-quoted strings (with backslash escapes) kept whole. A
// quoted word is returned with a leading '"' so it never equals a flag.
func iptablesWords(rule string) []string {
	var words []string
	for i := 0; i < len(rule); {
		switch {
		case rule[i] == ' ':
			i++
		case rule[i] == '"':
			j := i + 1
			for j < len(rule) && rule[j] != '"' {
				if rule[j] == '\\' {
					j++
				}
				j++
			}
			words = append(words, rule[i:min(j, len(rule))])
			i = j + 1
		default:
			j := strings.IndexByte(rule[i:], ' ')
			if j < 0 {
				j = len(rule) - i
			}
			words = append(words, rule[i:i+j])
			i += j
		}
	}
	return words
}

// legacySnapshot copies the IP header as Network and what follows, up to
// legacySnapshotBytes in all, as Transport.
func legacySnapshot(p []byte) (network, transport []byte) {
	if len(p) == 0 {
		return nil, nil
	}
	p = p[:min(len(p), legacySnapshotBytes)]
	hl := len(p)
	switch p[0] >> 4 {
	case 4:
		hl = int(p[0]&0x0f) * 4
	case 6:
		hl = 40
	}
	hl = min(max(hl, 0), len(p))
	network = append([]byte(nil), p[:hl]...)
	if hl < len(p) {
		transport = append([]byte(nil), p[hl:]...)
	}
	return network, transport
}

// legacyPacketID hashes the header fields no table rewrites (NAT changes
// IPv4 addresses, ports and checksums; forwarding the TTL), so that the
// TRACE lines of one packet in one namespace share an id.
func legacyPacketID(p []byte) uint32 {
	h := fnv.New32a()
	switch {
	case len(p) >= 20 && p[0]>>4 == 4:
		h.Write(p[2:8])  // total length, id, flags and fragment offset
		h.Write(p[9:10]) // protocol
		hl := int(p[0]&0x0f) * 4
		if p[9] == 6 && len(p) >= hl+12 && hl >= 20 {
			h.Write(p[hl+4 : hl+12]) // TCP sequence and acknowledgement
		}
	case len(p) >= 40 && p[0]>>4 == 6:
		h.Write(p[1:4])  // flow label
		h.Write(p[4:7])  // payload length, next header
		h.Write(p[8:40]) // addresses
		h.Write(p[40:min(len(p), 48)])
	default:
		h.Write(p[:min(len(p), 64)])
	}
	return h.Sum32()
}
