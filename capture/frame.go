// Package capture holds hooktrace's packet sources: capture files now, live
// AF_PACKET rings later. Every source yields Frames: the captured bytes plus
// where and when they were seen.
package capture

import (
	"encoding/binary"
	"time"
)

// Direction says which way a frame crossed its interface.
type Direction uint8

// Directions a frame may have.
const (
	DirUnknown Direction = iota // not recorded by the source
	DirIn                       // received (to this host, broadcast or multicast)
	DirOut                      // sent by this host
)

// String returns "in", "out" or "" for an unknown direction.
func (d Direction) String() string {
	switch d {
	case DirIn:
		return "in"
	case DirOut:
		return "out"
	}
	return ""
}

// LinkType is a pcap LINKTYPE_ value: how a frame's first bytes are framed.
type LinkType uint32

// Link types hooktrace decodes.
const (
	LinkTypeNull      LinkType = 0   // BSD loopback, 4-byte family in host order
	LinkTypeEthernet  LinkType = 1   // Ethernet II / 802.3
	LinkTypeRawDLT12  LinkType = 12  // raw IP on some BSDs (DLT_RAW)
	LinkTypeRawDLT14  LinkType = 14  // raw IP on OpenBSD (DLT_RAW)
	LinkTypeRaw       LinkType = 101 // raw IPv4 or IPv6
	LinkTypeLoop      LinkType = 108 // OpenBSD loopback, 4-byte family in network order
	LinkTypeLinuxSLL  LinkType = 113 // Linux cooked capture v1 (tcpdump -i any, older)
	LinkTypeIPv4      LinkType = 228 // raw IPv4
	LinkTypeIPv6      LinkType = 229 // raw IPv6
	LinkTypeNFLOG     LinkType = 239 // Linux netfilter NFLOG messages (tcpdump -i nflog:N)
	LinkTypeLinuxSLL2 LinkType = 276 // Linux cooked capture v2 (tcpdump -i any)
)

// Frame is one captured packet and what the source knows about it.
type Frame struct {
	Time     time.Time // when the packet was captured
	Netns    string    // network namespace it was seen in; empty when unknown
	Iface    string    // interface name; empty when unknown
	Ifindex  int       // interface index; 0 when unknown
	Dir      Direction // which way it crossed the interface
	LinkType LinkType  // how Data is framed
	Len      int       // length on the wire; may exceed len(Data)
	// Data holds the captured bytes. It belongs to the source and is valid
	// only until the next call of Next: copy it to keep it.
	Data    []byte
	Comment string // a comment stored with the packet (pcapng), if any
}

// Source yields frames until it returns io.EOF. Close releases it and
// unblocks a Next that waits.
type Source interface {
	Next() (Frame, error)
	Close() error
}

// Linux packet types from <linux/if_packet.h>, as AF_PACKET sockets and
// Linux cooked headers carry them.
const (
	PacketHost      = 0 // to this host
	PacketBroadcast = 1 // to all
	PacketMulticast = 2 // to a group
	PacketOtherHost = 3 // to another host, seen in promiscuous mode
	PacketOutgoing  = 4 // sent by this host
)

// directionOf maps a Linux packet type to a direction.
func directionOf(pkttype uint16) Direction {
	switch pkttype {
	case PacketHost, PacketBroadcast, PacketMulticast, PacketOtherHost:
		return DirIn
	case PacketOutgoing:
		return DirOut
	}
	return DirUnknown
}

// fillCookedMeta reads direction and interface index from a Linux cooked
// header, where the capture stored them inside the frame.
func fillCookedMeta(f *Frame) {
	switch f.LinkType {
	case LinkTypeLinuxSLL:
		if len(f.Data) >= 2 {
			f.Dir = directionOf(binary.BigEndian.Uint16(f.Data))
		}
	case LinkTypeLinuxSLL2:
		if len(f.Data) >= 11 {
			f.Ifindex = int(binary.BigEndian.Uint32(f.Data[4:8]))
			f.Dir = directionOf(uint16(f.Data[10]))
		}
	}
}
