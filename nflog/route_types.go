package nflog

import "net/netip"

// RouteQuery asks the kernel how it routes one packet in a namespace:
// the fields a routing decision can depend on (policy rules match on
// source, mark, input device, protocol and ports).
type RouteQuery struct {
	Src, Dst     netip.Addr
	IIF          string // input device; "" for a packet the namespace itself sends
	Mark         uint32
	Proto        uint8 // IP protocol number
	SPort, DPort uint16
}

// RouteDecision is the kernel's answer to a RouteQuery, with the policy
// rule that chose the table.
type RouteDecision struct {
	// Kind: "local" (delivered in this namespace), "forward" (routed on
	// to another host), "output" (a packet this namespace sends),
	// "unreachable", "blackhole", "prohibit", "broadcast", "multicast",
	// or "error" when the kernel refused (Error says how).
	Kind    string
	Table   string // "local", "main", "default" or a number
	Rule    string // the ip rule that chose the table, as `ip rule` prints it: "32766: from all lookup main"
	Route   string // the route that matched, as `ip route` prints it
	Gateway netip.Addr
	Dev     string // output device
	PrefSrc netip.Addr
	// Error is the kernel's refusal ("network is unreachable"), when it
	// refused: Kind "error", or the blackhole, unreachable or prohibit
	// route or rule that explains it; for an input lookup, what the
	// forwarding or reverse-path settings add ("...; forwarding is
	// disabled on eth0 (net.ipv4.conf.eth0.forwarding=0)").
	Error string
	// Note says what else bears on the decision: IPv6 forwarding
	// disabled for a forward, a protocol the kernel cannot be asked about.
	Note string
}
