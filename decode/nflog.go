package decode

import (
	"encoding/binary"
	"fmt"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// NFLOG TLV types (<linux/netfilter/nfnetlink_log.h>), as LINKTYPE_NFLOG
// records carry them.
const (
	nfulaPacketHdr  = 1
	nfulaMark       = 2
	nfulaTimestamp  = 3
	nfulaIfindexIn  = 4
	nfulaIfindexOut = 5
	nfulaPhysIn     = 6
	nfulaPhysOut    = 7
	nfulaHwaddr     = 8
	nfulaPayload    = 9
	nfulaPrefix     = 10
	nfulaUID        = 11
	nfulaSeq        = 12
	nfulaSeqGlobal  = 13
	nfulaGID        = 14
)

// NFLOG is one netfilter log message as LINKTYPE_NFLOG (239) stores it:
// what `tcpdump -i nflog:N` writes. Values are as the kernel sent them.
type NFLOG struct {
	Family     uint8  // NFPROTO_* of the hook: 2 IPv4, 10 IPv6, 7 bridge
	Group      uint16 // the nflog group (resource id)
	HwProtocol uint16 // EtherType of the payload
	Hook       uint8  // netfilter hook number, relative to the family
	HasHook    bool
	Prefix     []byte // the rule's log prefix, without the trailing NUL
	Indev      uint32 // input interface index, 0 when absent
	Outdev     uint32 // output interface index, 0 when absent
	PhysIndev  uint32 // bridge port the packet came in on
	PhysOutdev uint32 // bridge port the packet leaves by
	Mark       uint32
	HasMark    bool
	UID, GID   uint32
	HasUID     bool
	contents   []byte
	payload    []byte
}

// tlvOrder detects the byte order of the TLV headers, which libpcap writes
// in the capturing host's order. A TLV length is at least 4 and usually
// small, so the order that gives a plausible length wins.
func tlvOrder(b []byte) binary.ByteOrder {
	le := binary.LittleEndian.Uint16(b)
	be := binary.BigEndian.Uint16(b)
	if le >= 4 && int(le) <= len(b) {
		return binary.LittleEndian
	}
	if be >= 4 && int(be) <= len(b) {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// DecodeFromBytes decodes the 4-byte header and every TLV; the payload TLV
// becomes the next layer.
func (n *NFLOG) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	*n = NFLOG{}
	if len(data) < 4 {
		df.SetTruncated()
		return fmt.Errorf("NFLOG header needs 4 bytes, %d present", len(data))
	}
	n.Family = data[0]
	if data[1] != 0 {
		return fmt.Errorf("NFLOG version %d unknown", data[1])
	}
	n.Group = binary.BigEndian.Uint16(data[2:])
	n.contents = data
	rest := data[4:]
	if len(rest) < 4 {
		return nil
	}
	order := tlvOrder(rest)
	for len(rest) >= 4 {
		l := int(order.Uint16(rest))
		typ := order.Uint16(rest[2:])
		if l < 4 {
			return fmt.Errorf("NFLOG TLV type %d has length %d", typ, l)
		}
		if l > len(rest) {
			df.SetTruncated()
			return fmt.Errorf("NFLOG TLV type %d needs %d bytes, %d present", typ, l, len(rest))
		}
		n.tlv(typ, rest[4:l])
		adv := (l + 3) &^ 3
		if adv > len(rest) {
			adv = len(rest)
		}
		rest = rest[adv:]
	}
	return nil
}

func (n *NFLOG) tlv(typ uint16, v []byte) {
	be32 := func() uint32 {
		if len(v) < 4 {
			return 0
		}
		return binary.BigEndian.Uint32(v)
	}
	switch typ {
	case nfulaPacketHdr:
		if len(v) >= 3 {
			n.HwProtocol = binary.BigEndian.Uint16(v)
			n.Hook = v[2]
			n.HasHook = true
		}
	case nfulaMark:
		n.Mark, n.HasMark = be32(), true
	case nfulaIfindexIn:
		n.Indev = be32()
	case nfulaIfindexOut:
		n.Outdev = be32()
	case nfulaPhysIn:
		n.PhysIndev = be32()
	case nfulaPhysOut:
		n.PhysOutdev = be32()
	case nfulaPayload:
		n.payload = v
	case nfulaPrefix:
		n.Prefix = trimNUL(v)
	case nfulaUID:
		n.UID, n.HasUID = be32(), true
	case nfulaGID:
		n.GID = be32()
	}
}

func trimNUL(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// CanDecode reports the layer type NFLOG decodes.
func (n *NFLOG) CanDecode() gopacket.LayerClass { return layerTypeNFLOG }

// LayerType returns the NFLOG layer type.
func (n *NFLOG) LayerType() gopacket.LayerType { return layerTypeNFLOG }

// LayerPayload returns the logged packet.
func (n *NFLOG) LayerPayload() []byte { return n.payload }

// NextLayerType picks the payload's decoder from the family.
func (n *NFLOG) NextLayerType() gopacket.LayerType {
	switch n.Family {
	case 2:
		return layers.LayerTypeIPv4
	case 10:
		return layers.LayerTypeIPv6
	case 7: // bridge: the payload is the network header, typed by hw protocol
		return layers.EthernetType(n.HwProtocol).LayerType()
	}
	return ipByVersion(n.payload)
}

// HookName names the hook. The bridge family numbers its hooks as IPv4
// does (NF_BR_PRE_ROUTING is 0, and so on), so the names are the same;
// Family tells which.
func (n *NFLOG) HookName() string {
	if !n.HasHook {
		return ""
	}
	return hookName(n.Hook)
}

var ipHookNames = [...]string{"prerouting", "input", "forward", "output", "postrouting"}

func hookName(h uint8) string {
	if int(h) < len(ipHookNames) {
		return ipHookNames[h]
	}
	return fmt.Sprintf("hook%d", h)
}

// LayerContents returns the NFLOG header and TLVs.
func (n *NFLOG) LayerContents() []byte { return n.contents }
