package capture

import (
	"encoding/binary"
	"fmt"
	"time"
)

const (
	pcapMagicMicro = 0xa1b2c3d4
	pcapMagicNano  = 0xa1b23c4d
)

func isPcapMagic(b []byte) bool {
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		if m := order.Uint32(b); m == pcapMagicMicro || m == pcapMagicNano {
			return true
		}
	}
	return false
}

// pcapReader reads the classic libpcap format.
type pcapReader struct {
	order    binary.ByteOrder
	nanos    bool
	snaplen  uint32
	linkType LinkType
}

func newPcapReader(f *File) (*pcapReader, error) {
	h, err := f.read(24, "pcap file header")
	if err != nil {
		return nil, err
	}
	p := &pcapReader{order: binary.LittleEndian}
	m := p.order.Uint32(h)
	if m != pcapMagicMicro && m != pcapMagicNano {
		p.order = binary.BigEndian
		m = p.order.Uint32(h)
	}
	p.nanos = m == pcapMagicNano
	if major := p.order.Uint16(h[4:]); major != 2 {
		return nil, &FormatError{Path: f.path, Offset: 4, Msg: fmt.Sprintf("unsupported pcap version %d", major)}
	}
	p.snaplen = p.order.Uint32(h[16:])
	// The upper bits of the link-type field carry FCS information.
	p.linkType = LinkType(p.order.Uint32(h[20:]) & 0x03ffffff)
	return p, nil
}

func (p *pcapReader) linkTypes() []LinkType { return []LinkType{p.linkType} }

func (p *pcapReader) next(f *File) (Frame, error) {
	start := f.off
	h, err := f.read(16, recordHeaderName)
	if err != nil {
		return Frame{}, err
	}
	sec := int64(p.order.Uint32(h))
	frac := int64(p.order.Uint32(h[4:]))
	caplen := p.order.Uint32(h[8:])
	wirelen := p.order.Uint32(h[12:])
	if !p.nanos {
		frac *= 1000
	}
	if frac >= 1e9 {
		return Frame{}, &FormatError{Path: f.path, Offset: start, Msg: fmt.Sprintf("packet record has a sub-second time of %d ns", frac)}
	}
	if caplen > maxRecordSize {
		return Frame{}, &FormatError{Path: f.path, Offset: start, Msg: fmt.Sprintf("packet record claims %d captured bytes", caplen)}
	}
	data, err := f.read(int(caplen), "packet record")
	if err != nil {
		return Frame{}, err
	}
	f.dataOff = start + 16
	if wirelen < caplen {
		wirelen = caplen
	}
	fr := Frame{
		Time:     time.Unix(sec, frac),
		LinkType: p.linkType,
		Len:      int(wirelen),
		Data:     data,
	}
	fillCookedMeta(&fr)
	return fr, nil
}
