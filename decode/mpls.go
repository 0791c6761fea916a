package decode

import (
	"encoding/binary"
	"fmt"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// mplsLayer is one MPLS label stack entry. gopacket's MPLS has no
// DecodeFromBytes; below the bottom of the stack the payload is guessed
// from its first nibble, as Wireshark and tcpdump do.
type mplsEntry struct {
	layers.MPLS
}

// mplsLayer decodes each entry of a label stack, keeping a copy of each.
type mplsLayer struct {
	mplsEntry
	stack tagStack[mplsEntry]
}

func (m *mplsLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if err := m.mplsEntry.DecodeFromBytes(data, df); err != nil {
		return err
	}
	m.stack.push(&m.mplsEntry)
	return nil
}

func (m *mplsEntry) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 4 {
		df.SetTruncated()
		return fmt.Errorf("MPLS label entry needs 4 bytes, %d present", len(data))
	}
	v := binary.BigEndian.Uint32(data)
	m.Label = v >> 12
	m.TrafficClass = uint8(v>>9) & 7
	m.StackBottom = v&0x100 != 0
	m.TTL = uint8(v)
	m.Contents, m.Payload = data[:4], data[4:]
	return nil
}

func (m *mplsEntry) CanDecode() gopacket.LayerClass { return layers.LayerTypeMPLS }

func (m *mplsEntry) NextLayerType() gopacket.LayerType {
	if !m.StackBottom {
		return layers.LayerTypeMPLS
	}
	return ipByVersion(m.Payload)
}

// ipByVersion picks IPv4 or IPv6 from the version nibble of raw IP bytes.
func ipByVersion(b []byte) gopacket.LayerType {
	if len(b) == 0 {
		return gopacket.LayerTypeZero
	}
	switch b[0] >> 4 {
	case 4:
		return layers.LayerTypeIPv4
	case 6:
		return layers.LayerTypeIPv6
	}
	return gopacket.LayerTypeZero
}
