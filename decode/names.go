package decode

import (
	"strconv"

	"github.com/gopacket/gopacket/layers"
	"github.com/hooktrace/hooktrace/capture"
)

func sllPacketType(t uint8) string {
	switch t {
	case capture.PacketHost:
		return "host"
	case capture.PacketBroadcast:
		return "broadcast"
	case capture.PacketMulticast:
		return "multicast"
	case capture.PacketOtherHost:
		return "otherhost"
	case capture.PacketOutgoing:
		return "outgoing"
	}
	return "type" + strconv.Itoa(int(t))
}

var icmpv4Unreach = [...]string{
	"net unreachable", "host unreachable", "protocol unreachable", "port unreachable",
	"fragmentation needed", "source route failed", "net unknown", "host unknown",
	"source host isolated", "net prohibited", "host prohibited", "net unreachable for TOS",
	"host unreachable for TOS", "administratively prohibited", "host precedence violation",
	"precedence cutoff",
}

func icmpv4Name(t, c uint8) string {
	switch t {
	case layers.ICMPv4TypeEchoReply:
		return "echo reply"
	case layers.ICMPv4TypeEchoRequest:
		return "echo request"
	case layers.ICMPv4TypeDestinationUnreachable:
		if int(c) < len(icmpv4Unreach) {
			return icmpv4Unreach[c]
		}
		return "destination unreachable"
	case layers.ICMPv4TypeSourceQuench:
		return "source quench"
	case layers.ICMPv4TypeRedirect:
		return "redirect"
	case layers.ICMPv4TypeTimeExceeded:
		if c == 1 {
			return "fragment reassembly time exceeded"
		}
		return "time exceeded in transit"
	case layers.ICMPv4TypeParameterProblem:
		return "parameter problem"
	case layers.ICMPv4TypeTimestampRequest:
		return "timestamp request"
	case layers.ICMPv4TypeTimestampReply:
		return "timestamp reply"
	}
	return "type " + strconv.Itoa(int(t))
}

var icmpv6Unreach = [...]string{
	"no route", "administratively prohibited", "beyond scope of source address",
	"address unreachable", "port unreachable", "source address failed policy", "reject route",
}

func icmpv6Name(t, c uint8) string {
	switch t {
	case layers.ICMPv6TypeDestinationUnreachable:
		if int(c) < len(icmpv6Unreach) {
			return icmpv6Unreach[c]
		}
		return "destination unreachable"
	case layers.ICMPv6TypePacketTooBig:
		return "packet too big"
	case layers.ICMPv6TypeTimeExceeded:
		return "time exceeded"
	case layers.ICMPv6TypeParameterProblem:
		return "parameter problem"
	case layers.ICMPv6TypeEchoRequest:
		return "echo request"
	case layers.ICMPv6TypeEchoReply:
		return "echo reply"
	case layers.ICMPv6TypeRouterSolicitation:
		return "router solicitation"
	case layers.ICMPv6TypeRouterAdvertisement:
		return "router advertisement"
	case layers.ICMPv6TypeNeighborSolicitation:
		return "neighbor solicitation"
	case layers.ICMPv6TypeNeighborAdvertisement:
		return "neighbor advertisement"
	case layers.ICMPv6TypeRedirect:
		return "redirect"
	case layers.ICMPv6TypeMLDv2MulticastListenerReportMessageV2:
		return "multicast listener report v2"
	}
	return "type " + strconv.Itoa(int(t))
}

func tcpOptionName(k layers.TCPOptionKind) string {
	switch k {
	case layers.TCPOptionKindMSS:
		return "mss"
	case layers.TCPOptionKindWindowScale:
		return "wscale"
	case layers.TCPOptionKindSACKPermitted:
		return "sackOK"
	case layers.TCPOptionKindSACK:
		return "sack"
	case layers.TCPOptionKindTimestamps:
		return "ts"
	case 34:
		return "tfo"
	case 30:
		return "mptcp"
	}
	return "opt" + strconv.Itoa(int(k))
}

func ipv4OptionName(t uint8) string {
	switch t {
	case 0:
		return "eol"
	case 1:
		return "nop"
	case 7:
		return "rr"
	case 68:
		return "ts"
	case 130:
		return "security"
	case 131:
		return "lsrr"
	case 137:
		return "ssrr"
	case 148:
		return "router-alert"
	}
	return "opt" + strconv.Itoa(int(t))
}

func dnsTypeName(t layers.DNSType) string {
	switch t {
	case layers.DNSTypeA:
		return "A"
	case layers.DNSTypeAAAA:
		return "AAAA"
	case layers.DNSTypeCNAME:
		return "CNAME"
	case layers.DNSTypeNS:
		return "NS"
	case layers.DNSTypePTR:
		return "PTR"
	case layers.DNSTypeMX:
		return "MX"
	case layers.DNSTypeTXT:
		return "TXT"
	case layers.DNSTypeSOA:
		return "SOA"
	case layers.DNSTypeSRV:
		return "SRV"
	case layers.DNSTypeOPT:
		return "OPT"
	case layers.DNSTypeHTTPS:
		return "HTTPS"
	case layers.DNSTypeSVCB:
		return "SVCB"
	}
	return "TYPE" + strconv.Itoa(int(t))
}

func dnsRcodeName(c layers.DNSResponseCode) string {
	switch c {
	case layers.DNSResponseCodeNoErr:
		return "NOERROR"
	case layers.DNSResponseCodeFormErr:
		return "FORMERR"
	case layers.DNSResponseCodeServFail:
		return "SERVFAIL"
	case layers.DNSResponseCodeNXDomain:
		return "NXDOMAIN"
	case layers.DNSResponseCodeNotImp:
		return "NOTIMP"
	case layers.DNSResponseCodeRefused:
		return "REFUSED"
	}
	return "RCODE" + strconv.Itoa(int(c))
}
