package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"
	"time"
)

// pcapng block types (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng).
const (
	blockSectionHeader  = 0x0a0d0d0a
	blockInterface      = 0x00000001
	blockObsoletePacket = 0x00000002
	blockSimplePacket   = 0x00000003
	blockEnhancedPacket = 0x00000006
	byteOrderMagic      = 0x1a2b3c4d
)

// pcapng option codes used here.
const (
	optEndOfOpt   = 0
	optComment    = 1
	optIfName     = 2
	optIfTsresol  = 9
	optIfTsoffset = 14
	optEpbFlags   = 2
)

func isPcapngMagic(b []byte) bool {
	return binary.BigEndian.Uint32(b) == blockSectionHeader
}

// ngInterface is what an interface description block declares.
type ngInterface struct {
	linkType LinkType
	snaplen  uint32
	name     string
	netns    string
	// Timestamps count units of 10^-exp seconds, or 2^-exp when pow2.
	exp      uint8
	pow2     bool
	tsoffset int64 // seconds added to every timestamp
}

// pcapngReader reads the pcapng format, section by section.
type pcapngReader struct {
	order  binary.ByteOrder
	ifaces []ngInterface
	types  []LinkType
	// byHooktrace is set for sections hooktrace wrote: their interface
	// names are "NETNS/IFACE" (Linux names never contain '/').
	byHooktrace bool
	custom      CustomRecord // the last custom record returned
	host        Host         // of the first section
	sections    int
}

func newPcapngReader(f *File) (*pcapngReader, error) {
	return &pcapngReader{order: binary.LittleEndian}, nil
}

func (p *pcapngReader) linkTypes() []LinkType { return p.types }

func (p *pcapngReader) next(f *File) (Frame, error) {
	fr, _, err := p.nextRecord(f, false)
	return fr, err
}

// nextRecord returns the next frame, or with withCustom the next
// hooktrace custom record (then the frame is empty). Custom blocks that
// cannot be read are skipped, each with a warning through f.
func (p *pcapngReader) nextRecord(f *File, withCustom bool) (Frame, *CustomRecord, error) {
	for {
		start := f.off
		h, err := f.read(8, recordHeaderName)
		if err != nil {
			return Frame{}, nil, err
		}
		btype := p.order.Uint32(h)
		if btype == blockSectionHeader {
			if err := p.readSection(f, start, h); err != nil {
				return Frame{}, nil, err
			}
			continue
		}
		blen := p.order.Uint32(h[4:])
		if blen < 12 || blen%4 != 0 {
			return Frame{}, nil, &FormatError{Path: f.path, Offset: start, Msg: fmt.Sprintf("pcapng block of type 0x%x has invalid length %d", btype, blen)}
		}
		if blen > maxRecordSize {
			return Frame{}, nil, &FormatError{Path: f.path, Offset: start, Msg: fmt.Sprintf("pcapng block of type 0x%x claims %d bytes", btype, blen)}
		}
		rest, err := f.read(int(blen)-8, "pcapng block")
		if err != nil {
			return Frame{}, nil, err
		}
		body := rest[:len(rest)-4]
		if trailer := p.order.Uint32(rest[len(rest)-4:]); trailer != blen {
			return Frame{}, nil, &FormatError{Path: f.path, Offset: start, Msg: fmt.Sprintf("pcapng block length %d does not match its trailer %d", blen, trailer)}
		}
		var fr Frame
		var ok bool
		switch btype {
		case blockInterface:
			err = p.readInterface(body)
		case blockEnhancedPacket:
			fr, ok, err = p.enhancedPacket(body)
			f.dataOff = start + 8 + 20
		case blockSimplePacket:
			fr, ok, err = p.simplePacket(body)
			f.dataOff = start + 8 + 4
		case blockObsoletePacket:
			fr, ok, err = p.obsoletePacket(body)
			f.dataOff = start + 8 + 20
		case blockCustomCopy, blockCustomNoCopy:
			if !withCustom {
				continue
			}
			if cerr := parseCustom(p.order, body, &p.custom); cerr != nil {
				f.warnf(start, "%v; skipped", cerr)
				continue
			}
			return Frame{}, &p.custom, nil
		}
		// Other blocks (statistics, name resolution) are skipped here.
		if err != nil {
			return Frame{}, nil, &FormatError{Path: f.path, Offset: start, Msg: err.Error()}
		}
		if ok {
			return fr, nil, nil
		}
	}
}

// readSection handles a section header block: it sets the byte order and
// forgets the previous section's interfaces.
func (p *pcapngReader) readSection(f *File, start int64, h []byte) error {
	bom, err := f.read(4, "section header")
	if err != nil {
		return err
	}
	switch {
	case binary.LittleEndian.Uint32(bom) == byteOrderMagic:
		p.order = binary.LittleEndian
	case binary.BigEndian.Uint32(bom) == byteOrderMagic:
		p.order = binary.BigEndian
	default:
		return &FormatError{Path: f.path, Offset: start, Msg: "pcapng section header has no byte-order magic"}
	}
	blen := p.order.Uint32(h[4:])
	if blen < 28 || blen%4 != 0 || blen > maxRecordSize {
		return &FormatError{Path: f.path, Offset: start, Msg: fmt.Sprintf("pcapng section header has invalid length %d", blen)}
	}
	rest, err := f.read(int(blen)-12, "section header")
	if err != nil {
		return err
	}
	p.ifaces = p.ifaces[:0]
	p.byHooktrace = false
	p.sections++
	if len(rest) >= 16 {
		// Options follow the version and section length; the block ends
		// with its length again.
		p.options(rest[12:len(rest)-4], func(code uint16, val []byte) error {
			if code == optShbUserAppl && bytes.HasPrefix(val, []byte("hooktrace")) {
				p.byHooktrace = true
			}
			if code == optCustomString && p.sections == 1 {
				readHostOption(p.order, val, &p.host)
			}
			return nil
		})
	}
	return nil
}

func (p *pcapngReader) readInterface(body []byte) error {
	if len(body) < 8 {
		return fmt.Errorf("interface description block too short (%d bytes)", len(body))
	}
	var desc string
	ifc := ngInterface{
		linkType: LinkType(p.order.Uint16(body)),
		snaplen:  p.order.Uint32(body[4:]),
		exp:      6,
	}
	err := p.options(body[8:], func(code uint16, val []byte) error {
		switch code {
		case optIfName:
			ifc.name = string(trimNUL(val))
		case optIfDesc:
			desc = string(trimNUL(val))
		case optIfTsresol:
			if len(val) < 1 {
				return fmt.Errorf("if_tsresol option is empty")
			}
			ifc.pow2 = val[0]&0x80 != 0
			ifc.exp = val[0] & 0x7f
			if (!ifc.pow2 && ifc.exp > 18) || (ifc.pow2 && ifc.exp > 63) {
				return fmt.Errorf("if_tsresol %#x is out of range", val[0])
			}
		case optIfTsoffset:
			if len(val) >= 8 {
				ifc.tsoffset = int64(p.order.Uint64(val))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// hooktrace names interfaces "NETNS/IFACE" (Linux names never hold
	// '/'). The description says the same in words, and survives tools
	// such as mergecap that rewrite the section header.
	if ns, name, ok := strings.Cut(ifc.name, "/"); ok &&
		(p.byHooktrace || desc == ifaceDescription(ns, name)) {
		ifc.netns, ifc.name = ns, name
	}
	p.ifaces = append(p.ifaces, ifc)
	p.types = append(p.types, ifc.linkType)
	return nil
}

func (p *pcapngReader) iface(id uint32) (*ngInterface, error) {
	if int64(id) >= int64(len(p.ifaces)) {
		return nil, fmt.Errorf("packet names interface %d, but only %d are declared", id, len(p.ifaces))
	}
	return &p.ifaces[id], nil
}

func (p *pcapngReader) enhancedPacket(body []byte) (Frame, bool, error) {
	if len(body) < 20 {
		return Frame{}, false, fmt.Errorf("enhanced packet block too short (%d bytes)", len(body))
	}
	ifc, err := p.iface(p.order.Uint32(body))
	if err != nil {
		return Frame{}, false, err
	}
	ts := uint64(p.order.Uint32(body[4:]))<<32 | uint64(p.order.Uint32(body[8:]))
	caplen := p.order.Uint32(body[12:])
	wirelen := p.order.Uint32(body[16:])
	if uint64(caplen) > uint64(len(body)-20) {
		return Frame{}, false, fmt.Errorf("enhanced packet claims %d captured bytes in a %d-byte block", caplen, len(body))
	}
	fr := p.frame(ifc, ts, body[20:20+caplen], wirelen)
	err = p.options(body[20+pad4(caplen):], func(code uint16, val []byte) error {
		switch code {
		case optComment:
			// Several comments are kept, one per line.
			if fr.Comment != "" {
				fr.Comment += "\n"
			}
			fr.Comment += string(trimNUL(val))
		case optEpbFlags:
			if len(val) >= 4 {
				switch p.order.Uint32(val) & 3 {
				case 1:
					fr.Dir = DirIn
				case 2:
					fr.Dir = DirOut
				}
			}
		}
		return nil
	})
	return fr, true, err
}

func (p *pcapngReader) simplePacket(body []byte) (Frame, bool, error) {
	if len(body) < 4 {
		return Frame{}, false, fmt.Errorf("simple packet block too short (%d bytes)", len(body))
	}
	ifc, err := p.iface(0)
	if err != nil {
		return Frame{}, false, err
	}
	wirelen := p.order.Uint32(body)
	data := body[4:]
	if uint32(len(data)) > wirelen {
		data = data[:wirelen]
	}
	if ifc.snaplen > 0 && uint32(len(data)) > ifc.snaplen {
		data = data[:ifc.snaplen]
	}
	fr := p.frame(ifc, 0, data, wirelen)
	fr.Time = time.Time{}
	return fr, true, nil
}

func (p *pcapngReader) obsoletePacket(body []byte) (Frame, bool, error) {
	if len(body) < 20 {
		return Frame{}, false, fmt.Errorf("packet block too short (%d bytes)", len(body))
	}
	ifc, err := p.iface(uint32(p.order.Uint16(body)))
	if err != nil {
		return Frame{}, false, err
	}
	ts := uint64(p.order.Uint32(body[4:]))<<32 | uint64(p.order.Uint32(body[8:]))
	caplen := p.order.Uint32(body[12:])
	if uint64(caplen) > uint64(len(body)-20) {
		return Frame{}, false, fmt.Errorf("packet block claims %d captured bytes in a %d-byte block", caplen, len(body))
	}
	return p.frame(ifc, ts, body[20:20+caplen], p.order.Uint32(body[16:])), true, nil
}

func (p *pcapngReader) frame(ifc *ngInterface, ts uint64, data []byte, wirelen uint32) Frame {
	if wirelen < uint32(len(data)) {
		wirelen = uint32(len(data))
	}
	fr := Frame{
		Time:     ifc.time(ts),
		Iface:    ifc.name,
		Netns:    ifc.netns,
		LinkType: ifc.linkType,
		Len:      int(wirelen),
		Data:     data,
	}
	fillCookedMeta(&fr)
	return fr
}

// time converts a timestamp in the interface's units to a time.
func (ifc *ngInterface) time(ts uint64) time.Time {
	var sec, nsec uint64
	if ifc.pow2 {
		sec = ts >> ifc.exp
		frac := ts & (1<<ifc.exp - 1)
		if ifc.exp > 0 {
			// frac*1e9 needs up to 94 bits; the shifted result is below 1e9.
			hi, lo := bits.Mul64(frac, 1e9)
			nsec = hi<<(64-ifc.exp) | lo>>ifc.exp
		}
	} else {
		unit := pow10[ifc.exp]
		sec = ts / unit
		frac := ts % unit
		if ifc.exp <= 9 {
			nsec = frac * pow10[9-ifc.exp]
		} else {
			nsec = frac / pow10[ifc.exp-9]
		}
	}
	return time.Unix(int64(sec)+ifc.tsoffset, int64(nsec))
}

var pow10 = [...]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

// options walks a pcapng option list, calling fn for each option.
func (p *pcapngReader) options(b []byte, fn func(code uint16, val []byte) error) error {
	for len(b) >= 4 {
		code := p.order.Uint16(b)
		n := uint32(p.order.Uint16(b[2:]))
		if code == optEndOfOpt {
			return nil
		}
		if uint64(n) > uint64(len(b)-4) {
			return fmt.Errorf("option %d claims %d bytes, %d left in the block", code, n, len(b)-4)
		}
		if err := fn(code, b[4:4+n]); err != nil {
			return err
		}
		adv := 4 + pad4(n)
		if uint64(adv) > uint64(len(b)) {
			return nil
		}
		b = b[adv:]
	}
	return nil
}

func pad4(n uint32) uint32 { return (n + 3) &^ 3 }

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
