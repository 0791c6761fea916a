package decode

import (
	"net/netip"
	"slices"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// StepKind names what happened to a packet at one step of its journey.
type StepKind string

// The kinds of journey steps.
const (
	StepCapture   StepKind = "capture"    // seen on a device (AF_PACKET or a capture file)
	StepHook      StepKind = "hook"       // entered or left a netfilter hook (NFLOG)
	StepRule      StepKind = "rule"       // a rule matched (nf_tables trace or iptables TRACE)
	StepPolicy    StepKind = "policy"     // a base chain's policy applied
	StepRoute     StepKind = "route"      // the kernel's routing decision
	StepNAT       StepKind = "nat"        // addresses or ports rewritten
	StepEncap     StepKind = "encap"      // put inside a tunnel packet
	StepDecap     StepKind = "decap"      // taken out of a tunnel packet
	StepNFLOG     StepKind = "nflog"      // logged by a user's NFLOG rule
	StepDrop      StepKind = "drop"       // freed by the kernel outside netfilter
	StepICMPError StepKind = "icmp_error" // an ICMP error sent back for it
	StepReset     StepKind = "reset"      // a TCP reset sent back for it
)

// Outcome is how a journey ended.
type Outcome string

// The outcomes of a journey.
const (
	OutcomeDelivered Outcome = "delivered" // to a local socket
	OutcomeForwarded Outcome = "forwarded" // out a device, towards another host or namespace not traced
	OutcomeSent      Outcome = "sent"      // a locally made packet left, its destination not traced
	OutcomeDropped   Outcome = "dropped"   // by a rule, a chain policy or the kernel
	OutcomeRejected  Outcome = "rejected"  // dropped with an ICMP error or TCP reset sent back
	OutcomeUnknown   Outcome = "unknown"   // left hooktrace's sight
)

// Endpoints are a packet's addresses and ports at one point of its
// journey (ports zero for protocols without them).
type Endpoints struct {
	Src, Dst netip.AddrPort
}

// RouteStep is the routing decision the kernel made for the packet in a
// namespace, as the kernel itself answered it (RTM_GETROUTE).
type RouteStep = nflog.RouteDecision

// Step is one thing that happened to a packet. Which fields are set
// depends on Kind.
type Step struct {
	Time  time.Time
	Netns string
	Kind  StepKind

	Iface string // capture: the device; hook: input or output device
	Dir   string // capture: "in" or "out"

	Hook        string // hook, rule, policy, nflog: prerouting, input, forward, output, postrouting
	First       bool   // hook: entering (hooktrace first) rather than leaving (hooktrace last)
	Family      string // nftables family of the table, or of the hook
	Table       string
	Chain       string
	Priority    int
	HasPriority bool
	Handle      uint64 // rule: nf_tables rule handle
	RuleNumber  int    // rule: iptables-legacy rule position
	Rule        string // rule: its text (iptables syntax when iptables made it)
	Verdict     string // rule, policy: accept, drop, jump, goto, return, continue, ...
	JumpTarget  string

	Before, After *Endpoints // nat: the rewrite; encap/decap: inner and outer
	Tunnel        string     // encap/decap: vxlan, geneve, gre, ipip, ...
	VNI           uint32     // encap/decap: VXLAN or Geneve network identifier

	Reason   string     // drop: the kernel's drop reason (NO_SOCKET, ...)
	Location string     // drop: the kernel function that freed the packet
	Route    *RouteStep // route
	Prefix   string     // nflog: the log prefix
	Detail   string     // a few words more, for the reader (ICMP type, ...)
}

// Drop says what ended a dropped or rejected journey, why, and what to
// change.
type Drop struct {
	By          string // "rule", "policy" or "kernel"
	Netns       string
	Hook        string
	Family      string
	Table       string
	Chain       string
	Handle      uint64
	RuleNumber  int
	Rule        string
	Reason      string // kernel drop reason
	Explanation string // one or two plain sentences
	Hint        string // a concrete change that would let the packet through
	Probable    bool   // matched by time only (tracefs fallback)
}

// Journey is one packet's way through the traced namespaces, from its
// first sighting to how it ended.
type Journey struct {
	ID    uint64
	First time.Time
	Last  time.Time
	// Frame is the first sighting of the packet (its Data is the
	// journey's own copy, or, assembled by AssembleInto, the builder's
	// until the next): a captured frame, or, for a packet only trace
	// events showed, their header snapshot as a raw IP frame.
	Frame capture.Frame
	Flow  Endpoints // as first seen
	Proto string    // innermost transport: tcp, udp, icmp, ...
	Steps []Step
	// Packets numbers the packets whose sightings joined the journey, in
	// ascending order: packet n is the one the builder's AddPacket took
	// n-th, counting from 0 (frames that joined no journey count too).
	Packets []uint64
	// Traces and Drops number the same way the trace events (AddTrace
	// calls) and kernel drops (AddDrop calls) that joined it: with its
	// packets, the records a replay needs to build it again.
	Traces, Drops []uint64
	// Outcome and Drop are set when the journey closes.
	Outcome Outcome
	Drop    *Drop
	// LastSeen says where an unknown journey was seen last.
	LastSeen string
	// Incomplete: events may be missing (the kernel reported lost events
	// while the journey was open).
	Incomplete bool
	// Selected: a frame a filter selected joined the journey
	// (AddSelectedPacket, Sighting.Select).
	Selected bool

	nums  []uint64  // the array Packets, Traces and Drops are in (AssembleInto reuses it)
	frame []byte    // AssembleInto: the builder's buffer Frame.Data is in, given back by the next
	order *obsOrder // what putting the observations in order needed (AssembleInto reuses it)
}

// Namespaces lists the namespaces the journey crossed, each once, in the
// order of its steps.
func (j *Journey) Namespaces() []string {
	var out []string
	for i := range j.Steps {
		if ns := j.Steps[i].Netns; !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	return out
}

// KernelDrop is a packet the kernel freed as dropped (skb:kfree_skb),
// as nflog's drop probe reports it.
type KernelDrop = nflog.KernelDrop
