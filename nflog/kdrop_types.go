package nflog

import "time"

// KernelDrop is a packet the kernel freed as dropped (tracepoint
// skb:kfree_skb with a drop reason), outside netfilter or in it.
type KernelDrop struct {
	Time       time.Time
	NetnsInode uint64 // inode of the namespace of the packet's device or socket; 0 when unknown
	Netns      string // the namespace's name, set by whoever maps the inode
	Ifindex    uint32 // the device the packet was on, 0 when none
	Reason     string // the drop reason as the running kernel names it (NO_SOCKET, IP_RPFILTER, ...)
	Location   string // the function that freed it, symbol+offset
	Protocol   uint16 // EtherType of the network header (0x0800, 0x86dd)
	// Network is the packet from its network header on (at most 128
	// bytes); nil when the probe could not read it (the tracefs
	// fallback), in which case Probable is set: such a drop is matched to
	// a packet by time only.
	Network  []byte
	Probable bool
}
