// Package decode turns captured bytes into layers, outer to inner, and
// (in later stages) kernel records into events and journeys. It does no
// I/O: every function here is pure over its input.
package decode

// Proto names a decoded protocol layer.
type Proto uint8

// Protocols hooktrace decodes. Their String forms are the "proto" values of
// the NDJSON schema.
const (
	ProtoUnknown Proto = iota
	ProtoEth
	ProtoSLL
	ProtoSLL2
	ProtoLoopback
	ProtoNFLOG
	ProtoARP
	ProtoVLAN
	ProtoMPLS
	ProtoIPv4
	ProtoIPv6
	ProtoIPv6Hop
	ProtoIPv6Frag
	ProtoIPv6Opts
	ProtoIPv6Ext
	ProtoICMP
	ProtoICMPv6
	ProtoTCP
	ProtoUDP
	ProtoSCTP
	ProtoDNS
	ProtoVXLAN
	ProtoGeneve
	ProtoGRE
	ProtoWireGuard
	ProtoTLS
	ProtoHTTP
	protoCount
)

var protoNames = [protoCount]string{
	ProtoUnknown:   "unknown",
	ProtoEth:       "eth",
	ProtoSLL:       "sll",
	ProtoSLL2:      "sll2",
	ProtoLoopback:  "loopback",
	ProtoNFLOG:     "nflog",
	ProtoARP:       "arp",
	ProtoVLAN:      "vlan",
	ProtoMPLS:      "mpls",
	ProtoIPv4:      "ipv4",
	ProtoIPv6:      "ipv6",
	ProtoIPv6Hop:   "ipv6-hop",
	ProtoIPv6Frag:  "ipv6-frag",
	ProtoIPv6Opts:  "ipv6-opts",
	ProtoIPv6Ext:   "ipv6-ext",
	ProtoICMP:      "icmp",
	ProtoICMPv6:    "icmpv6",
	ProtoTCP:       "tcp",
	ProtoUDP:       "udp",
	ProtoSCTP:      "sctp",
	ProtoDNS:       "dns",
	ProtoVXLAN:     "vxlan",
	ProtoGeneve:    "geneve",
	ProtoGRE:       "gre",
	ProtoWireGuard: "wireguard",
	ProtoTLS:       "tls",
	ProtoHTTP:      "http",
}

// String returns the lower-case protocol name used in NDJSON output.
func (p Proto) String() string {
	if p < protoCount {
		return protoNames[p]
	}
	return protoNames[ProtoUnknown]
}

// Tunnel names the kind of boundary a layer opens: the layers after it
// belong to an inner packet.
type Tunnel uint8

// Boundaries between an outer and an inner packet.
const (
	TunnelNone   Tunnel = iota
	TunnelVXLAN         // VXLAN over UDP (4789 or Linux's 8472)
	TunnelGeneve        // Geneve over UDP 6081
	TunnelGRE           // GRE or GRETAP
	TunnelIPIP          // IPv4 in IPv4
	TunnelSIT           // IPv6 in IPv4
	TunnelIP6IP6        // IPv6 in IPv6
	TunnelIP4IP6        // IPv4 in IPv6
	TunnelICMP          // the packet quoted by an ICMP error
	tunnelCount
)

var tunnelNames = [tunnelCount]string{"", "vxlan", "geneve", "gre", "ipip", "sit", "ip6ip6", "ip4ip6", "icmp-quote"}

// String returns the boundary's name ("vxlan", "ipip", ...), empty for none.
func (t Tunnel) String() string {
	if t < tunnelCount {
		return tunnelNames[t]
	}
	return ""
}
