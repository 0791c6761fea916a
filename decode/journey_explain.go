package decode

import (
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// decideOutcome reads how the journey ended from its ordered
// observations, and for a drop writes the explanation and the hint.
func decideOutcome(j *Journey, visits []*visit) {
	// The packet's own observations, in path order (replies excluded).
	type at struct {
		v *visit
		o *obs
	}
	path := make([]at, 0, 16) // on the stack for all but the longest journeys
	var reply *obs
	for _, v := range visits {
		for _, o := range v.obs {
			switch o.step.Kind {
			case StepICMPError, StepReset:
				if reply == nil {
					reply = o
				}
				continue
			case StepRoute:
				continue
			}
			path = append(path, at{v, o})
		}
	}
	if len(path) == 0 {
		j.Outcome, j.LastSeen = OutcomeUnknown, "nowhere"
		return
	}
	// The drop that ended it: the first one after which the packet is
	// not seen in a later namespace.
	for i, p := range path {
		o := p.o
		if !o.step.drops() {
			continue
		}
		later := false
		for _, q := range path[i+1:] {
			if q.v != p.v && q.o.step.Kind != StepDrop {
				later = true
			}
		}
		if later {
			continue
		}
		// A kernel NETFILTER_DROP repeats a rule's drop: the rule says more.
		if o.step.Kind == StepDrop && o.step.Reason == "NETFILTER_DROP" {
			for _, q := range path[i+1:] {
				if q.o.step.Kind == StepRule || q.o.step.Kind == StepPolicy {
					o = q.o
				}
			}
			for _, q := range path[:i] {
				if (q.o.step.Kind == StepRule || q.o.step.Kind == StepPolicy) && q.o.step.Verdict == "drop" && q.v == p.v {
					o = q.o
				}
			}
		}
		j.Drop = explainDrop(o, p.v, reply, lastEndpoints(p.v, o))
		j.Outcome = OutcomeDropped
		// Rejected: a reject rule, or the kernel answering for what it
		// dropped (a reset or port unreachable for no listener, net
		// unreachable for no route).
		if j.Drop.By == "rule" && isReject(o.step.Rule) || j.Drop.By == "kernel" && reply != nil {
			j.Outcome = OutcomeRejected
		}
		return
	}
	last := path[len(path)-1]
	lv := last.v
	switch {
	case lv.hasHook("input"):
		j.Outcome = OutcomeDelivered
	case lv.madeHere() && len(visits) == 1:
		j.Outcome = OutcomeSent
	case lv.leaves() || lv.hasHook("forward") || lv.hasHook("postrouting"):
		j.Outcome = OutcomeForwarded
	default:
		j.Outcome = OutcomeUnknown
	}
	// A hook entered and never left, with no verdict seen: something at
	// that hook dropped it (tracing tells what, when it is on).
	if stuck := lv.stuckHook(); stuck != "" && j.Outcome != OutcomeDelivered {
		j.Outcome = OutcomeDropped
		j.Drop = &Drop{By: "rule", Netns: lv.netns, Hook: stuck, Probable: true,
			Explanation: fmt.Sprintf("It entered %s in %s and never left it: a rule or policy of a chain at that hook dropped it (no trace event says which: is nf_tables tracing available?).", strings.ToUpper(stuck), nsName(lv.netns)),
			Hint:        fmt.Sprintf("list the chains at %s in %s: %snft list ruleset", stuck, nsName(lv.netns), nsExec(lv.netns)),
		}
		return
	}
	if j.Outcome == OutcomeUnknown || j.Incomplete && j.Outcome != OutcomeDelivered {
		j.LastSeen = describeObs(last.o)
	}
	if reply != nil && j.Outcome == OutcomeUnknown {
		j.Outcome = OutcomeRejected
		j.Drop = &Drop{By: "kernel", Netns: reply.netns, Probable: true,
			Explanation: fmt.Sprintf("An answer came back (%s), so something on the way refused it; hooktrace did not see where.", reply.detail()),
		}
	}
}

// hasHook says whether the packet passed a hook in the visit (left it, or
// was accepted there).
func (v *visit) hasHook(hook string) bool {
	for _, o := range v.obs {
		if o.step.Hook != hook {
			continue
		}
		switch o.step.Kind {
		case StepHook:
			if !o.step.First {
				return true
			}
		case StepRule, StepPolicy:
			if o.step.Verdict == "accept" {
				return true
			}
		case StepNFLOG:
			return true
		}
	}
	return false
}

// leaves says whether the packet was seen leaving by a device.
func (v *visit) leaves() bool {
	for _, o := range v.obs {
		if o.step.Kind == StepCapture && o.step.Dir == "out" {
			return true
		}
	}
	return false
}

// stuckHook returns a hook the packet entered (hooktrace's first chain)
// and never left (its last chain), when no verdict of that hook was seen.
func (v *visit) stuckHook() string {
	var entered, left, verdict uint8 // bits of stuckHooks
	for _, o := range v.obs {
		bit := uint8(0)
		if k := slices.Index(stuckHooks[:], o.step.Hook); k >= 0 {
			bit = 1 << k
		}
		switch o.step.Kind {
		case StepHook:
			if o.step.First {
				entered |= bit
			} else {
				left |= bit
			}
		case StepRule, StepPolicy:
			verdict |= bit
		}
	}
	if stuck := entered &^ (left | verdict); stuck != 0 {
		return stuckHooks[bits.TrailingZeros8(stuck)]
	}
	return ""
}

// stuckHooks are the hooks stuckHook looks at, in the order it does.
var stuckHooks = [...]string{"prerouting", "input", "forward", "output", "postrouting"}

// lastEndpoints returns the packet's endpoints as last seen in the visit
// before o (after any NAT), for the hint's match.
func lastEndpoints(v *visit, upTo *obs) Endpoints {
	var ep Endpoints
	for _, o := range v.obs {
		if e, ok := o.epAt(v.outer); ok {
			ep = e
		}
		if o == upTo {
			break
		}
	}
	return ep
}

// isReject says whether a rule's text rejects (nft or iptables syntax).
func isReject(rule string) bool {
	return strings.Contains(rule, "reject") || strings.Contains(rule, "-j REJECT")
}

// explainDrop writes what dropped the packet, in words, and a change that
// would let it through.
func explainDrop(o *obs, v *visit, reply *obs, ep Endpoints) *Drop {
	st := o.fullStep()
	d := &Drop{Netns: st.Netns, Hook: st.Hook, Family: st.Family, Table: st.Table, Chain: st.Chain,
		Handle: st.Handle, RuleNumber: st.RuleNumber, Rule: st.Rule, Reason: st.Reason}
	where := fmt.Sprintf("in %s at %s", nsName(st.Netns), strings.ToUpper(st.Hook))
	answered := ""
	if reply != nil {
		answered = fmt.Sprintf(" The kernel answered with %s.", reply.detail())
	}
	switch st.Kind {
	case StepPolicy:
		d.By = "policy"
		d.Explanation = fmt.Sprintf("Dropped %s by the policy of chain %s %s %s: no rule of the chain accepted it.%s",
			where, st.Family, st.Table, st.Chain, answered)
		d.Hint = acceptHint(st, ep, visitProto(v), false)
	case StepRule:
		d.By = "rule"
		verb := "Dropped"
		if isReject(st.Rule) {
			verb = "Rejected"
		}
		d.Explanation = fmt.Sprintf("%s %s by rule %s: %s.%s", verb, where, ruleName(st), st.Rule, answered)
		d.Hint = acceptHint(st, ep, visitProto(v), true)
	default: // a kernel drop
		d.By = "kernel"
		d.Hook = ""
		d.Probable = st.Detail == "probable"
		d.Explanation, d.Hint = kernelReason(st, v, ep)
		if answered != "" {
			d.Explanation += answered
		}
		if d.Probable {
			d.Explanation += " (Probable: matched to this packet by time only; the drop probe could not read the packet.)"
		}
	}
	return d
}

// ruleName names a rule as nft or iptables would address it.
func ruleName(st Step) string {
	if st.RuleNumber != 0 {
		return fmt.Sprintf("%s -t %s %s number %d (iptables-legacy)", iptablesCmd(st.Family, true), st.Table, st.Chain, st.RuleNumber)
	}
	return fmt.Sprintf("%s %s %s handle %d", st.Family, st.Table, st.Chain, st.Handle)
}

// iptablesCmd is the iptables command for a family.
func iptablesCmd(family string, legacy bool) string {
	cmd := "iptables"
	if family == "ip6" {
		cmd = "ip6tables"
	}
	if legacy {
		cmd += "-legacy"
	}
	return cmd
}

// acceptHint writes the command that accepts this packet before the rule
// that dropped it (before, with the rule) or at the end of the chain (a
// policy drop).
func acceptHint(st Step, ep Endpoints, proto string, before bool) string {
	if strings.HasPrefix(st.Rule, "-A ") || st.RuleNumber != 0 {
		match := iptablesMatch(ep, proto)
		cmd := iptablesCmd(st.Family, st.RuleNumber != 0)
		pos := ""
		if st.RuleNumber != 0 && before {
			pos = " " + strconv.Itoa(st.RuleNumber)
		}
		verb := "-I"
		if !before {
			verb = "-A"
		}
		return fmt.Sprintf("to let it through, accept it %s:\n  %s%s -t %s %s %s%s %s -j ACCEPT",
			map[bool]string{true: "before that rule", false: "in that chain"}[before], nsExec(st.Netns), cmd, st.Table, verb, st.Chain, pos, match)
	}
	match := nftMatch(st.Family, ep)
	if before {
		return fmt.Sprintf("to let it through, put an accept before that rule:\n  %snft insert rule %s %s %s handle %d %s accept",
			nsExec(st.Netns), st.Family, st.Table, st.Chain, st.Handle, match)
	}
	return fmt.Sprintf("to let it through, accept it in that chain:\n  %snft add rule %s %s %s %s accept",
		nsExec(st.Netns), st.Family, st.Table, st.Chain, match)
}

// nftMatch matches the packet's source and its destination port (or
// destination, without ports).
func nftMatch(family string, ep Endpoints) string {
	if !ep.Src.IsValid() {
		return ""
	}
	ipw := "ip"
	if ep.Src.Addr().Is6() && !ep.Src.Addr().Is4In6() {
		ipw = "ip6"
	}
	m := fmt.Sprintf("%s saddr %s", ipw, ep.Src.Addr())
	if ep.Dst.Port() != 0 {
		return m + fmt.Sprintf(" th dport %d", ep.Dst.Port())
	}
	return m + fmt.Sprintf(" %s daddr %s", ipw, ep.Dst.Addr())
}

// iptablesMatch is nftMatch in iptables syntax.
func iptablesMatch(ep Endpoints, proto string) string {
	if !ep.Src.IsValid() {
		return ""
	}
	m := "-s " + ep.Src.Addr().String()
	if ep.Dst.Port() != 0 && (proto == "tcp" || proto == "udp" || proto == "sctp") {
		return m + fmt.Sprintf(" -p %s --dport %d", proto, ep.Dst.Port())
	}
	return m + " -d " + ep.Dst.Addr().String()
}

// nsName names a namespace for a sentence.
func nsName(netns string) string {
	if netns == "" {
		return "hooktrace's own namespace"
	}
	return "namespace " + netns
}

// nsExec prefixes a command so that it runs in the namespace.
func nsExec(netns string) string {
	if netns == "" {
		return ""
	}
	return "ip netns exec " + netns + " "
}

// describeObs says where an observation was, for "last seen".
func describeObs(o *obs) string {
	st := o.fullStep()
	where := nsName(st.Netns)
	switch st.Kind {
	case StepCapture:
		if st.Iface == "" { // only capture files name no interface
			return "the capture file, on a device it does not name"
		}
		return fmt.Sprintf("%s, device %s (%s)", where, st.Iface, st.Dir)
	case StepHook:
		edge := "leaving"
		if st.First {
			edge = "entering"
		}
		return fmt.Sprintf("%s, %s %s", where, edge, strings.ToUpper(st.Hook))
	case StepRule, StepPolicy:
		return fmt.Sprintf("%s, %s chain %s %s %s", where, strings.ToUpper(st.Hook), st.Family, st.Table, st.Chain)
	}
	return where
}

// kernelReason explains a kernel drop reason (its name comes from the
// running kernel) and says what to change. Reasons hooktrace has no
// words for get the kernel's name and the function that dropped.
func kernelReason(st Step, v *visit, ep Endpoints) (string, string) {
	where := nsName(st.Netns)
	dev := st.Iface
	if dev == "" {
		for _, o := range v.obs {
			if o.step.Kind == StepCapture && o.step.Dir == "in" {
				dev = o.iface
			}
		}
	}
	proto := visitProto(v)
	switch st.Reason {
	case "NO_SOCKET":
		if proto == "" { // no view of the packet named its protocol
			return fmt.Sprintf("Dropped by the kernel in %s: nothing listens on %s.", where, ep.Dst),
				fmt.Sprintf("start the service, or check what listens: %sss -lnp", nsExec(st.Netns))
		}
		return fmt.Sprintf("Dropped by the kernel in %s: nothing listens on %s/%s.", where, ep.Dst, proto),
			fmt.Sprintf("start the service, or check what listens: %sss -lnp%c", nsExec(st.Netns), proto[0])
	case "IP_RPFILTER":
		return fmt.Sprintf("Dropped by the reverse-path filter in %s: a reply to %s would not leave by %s, the device it came in on.", where, ep.Src.Addr(), orDevice(dev)),
			fmt.Sprintf("route %s back via %s, or loosen the filter: %ssysctl -w net.ipv4.conf.%s.rp_filter=2 (and net.ipv4.conf.all.rp_filter, the maximum of the two applies)", ep.Src.Addr(), orDevice(dev), nsExec(st.Netns), devOrAll(dev))
	case "IP_INNOROUTES", "IP_OUTNOROUTES":
		return fmt.Sprintf("Dropped by the kernel in %s: there is no route to %s.", where, ep.Dst.Addr()),
			fmt.Sprintf("add a route: %sip route add %s via GATEWAY (see %sip route get %s)", nsExec(st.Netns), ep.Dst.Addr(), nsExec(st.Netns), ep.Dst.Addr())
	case "NEIGH_FAILED", "NEIGH_QUEUEFULL", "NEIGH_DEAD", "NEIGH_CREATEFAIL":
		return fmt.Sprintf("Dropped by the kernel in %s: the next hop did not answer ARP or neighbour discovery (%s).", where, st.Reason),
			fmt.Sprintf("check the next hop is up and on the link: %sip neigh show", nsExec(st.Netns))
	case "TCP_CSUM", "UDP_CSUM", "ICMP_CSUM", "IP_CSUM":
		return fmt.Sprintf("Dropped by the kernel in %s: bad checksum (%s).", where, st.Reason),
			"look for a device or offload that corrupts packets (ethtool -K DEV tx off to test)"
	case "QDISC_DROP", "FULL_RING", "CPU_BACKLOG", "SOCKET_RCVBUFF", "PROTO_MEM", "SOCKET_BACKLOG":
		return fmt.Sprintf("Dropped by the kernel in %s: a queue was full (%s).", where, st.Reason),
			"the receiver is too slow or its buffer too small (for a socket: net.core.rmem_max and SO_RCVBUF)"
	case "NETFILTER_DROP":
		return fmt.Sprintf("Dropped by netfilter in %s (%s); no trace event said which rule.", where, st.Location),
			fmt.Sprintf("trace it: hooktrace --netns %s --trace FILTER", orOwn(st.Netns))
	case "PKT_TOO_SMALL", "IP_INHDR", "IP_NOPROTO":
		return fmt.Sprintf("Dropped by the kernel in %s: malformed packet (%s).", where, st.Reason), "check the sender"
	case "OTHERHOST":
		return fmt.Sprintf("Dropped by the kernel in %s: the frame was for another host's MAC address.", where), "check ARP and the MAC address the sender uses"
	case "TCP_OLD_DATA", "TCP_INVALID_SEQUENCE", "TCP_RESET", "TCP_CLOSE", "TCP_FLAGS", "TCP_ZEROWINDOW", "TCP_OFOMERGE", "TCP_OLD_ACK":
		return fmt.Sprintf("Dropped by the kernel's TCP in %s: %s (the connection's state did not accept this segment).", where, st.Reason),
			fmt.Sprintf("look at the connection's state: %sss -tin", nsExec(st.Netns))
	}
	return fmt.Sprintf("Dropped by the kernel in %s: %s at %s.", where, st.Reason, st.Location),
		"see the kernel's enum skb_drop_reason for this reason"
}

func orDevice(dev string) string {
	if dev == "" {
		return "its input device"
	}
	return dev
}

func devOrAll(dev string) string {
	if dev == "" {
		return "DEV"
	}
	return dev
}

func orOwn(netns string) string {
	if netns == "" {
		return "''"
	}
	return netns
}

// visitProto names the packet's transport protocol in a visit.
func visitProto(v *visit) string {
	for _, o := range v.obs {
		if o.ep != nil && o.proto != 0 {
			return protoName(o.proto)
		}
	}
	return ""
}
