package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
)

// pcapng option codes for writing.
const (
	optShbHardware = 2
	optShbOS       = 3
	optShbUserAppl = 4
	optIfDesc      = 3
	optIsbEndTime  = 3
	optIsbIfRecv   = 4
	optIsbIfDrop   = 5
	optIsbOsDrop   = 7
	blockIfStats   = 0x00000005
)

// PcapngWriter writes frames from many interfaces in many network
// namespaces as pcapng: one interface description block per (namespace,
// interface, link type), named "NETNS/IFACE" so Wireshark shows where each
// packet was seen, nanosecond timestamps, the direction in each packet's
// flags, and interface statistics at the end.
//
// Its methods may be called from several goroutines: each block is
// written whole.
type PcapngWriter struct {
	mu     sync.Mutex
	w      io.Writer
	ifaces map[ifaceKey]uint32
	buf    []byte
	hdr    [8]byte
}

type ifaceKey struct {
	netns, iface string
	ifindex      int // names the interface only when iface is empty
	linkType     LinkType
}

// NewPcapngWriter writes the section header; app names the writer (it is
// how hooktrace recognises its own files when reading them back).
func NewPcapngWriter(w io.Writer, app string) (*PcapngWriter, error) {
	return NewPcapngWriterHost(w, app, Host{})
}

// NewPcapngWriterHost is NewPcapngWriter for a file that also says which
// host it was recorded on (File.Host reads it back), so that a merge of
// recordings keeps apart namespaces of two hosts that have one name.
func NewPcapngWriterHost(w io.Writer, app string, h Host) (*PcapngWriter, error) {
	p := &PcapngWriter{w: w, ifaces: map[ifaceKey]uint32{}, buf: make([]byte, 0, 64<<10)}
	b := binary.LittleEndian.AppendUint32(p.buf[:0], byteOrderMagic)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint64(b, ^uint64(0)) // section length unknown
	b = appendOption(b, optShbUserAppl, []byte(app))
	b = appendOption(b, optShbOS, []byte("Linux"))
	b = appendHost(b, h)
	b = appendEndOfOptions(b)
	if err := p.writeBlock(blockSectionHeader, b); err != nil {
		return nil, fmt.Errorf("write pcapng section header: %w", err)
	}
	return p, nil
}

// WritePacket writes an enhanced packet block, first declaring the
// frame's interface if it is new.
func (p *PcapngWriter) WritePacket(f Frame) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, err := p.iface(f.Netns, f.Iface, f.Ifindex, f.LinkType)
	if err != nil {
		return err
	}
	if len(f.Comment) > math.MaxUint16 {
		return fmt.Errorf("write pcapng packet: comment of %d bytes exceeds the %d an option holds", len(f.Comment), math.MaxUint16)
	}
	ts, err := pcapngTime(f.Time)
	if err != nil {
		return fmt.Errorf("write pcapng packet: %w", err)
	}
	b := binary.LittleEndian.AppendUint32(p.buf[:0], id)
	b = binary.LittleEndian.AppendUint32(b, uint32(ts>>32))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f.Data)))
	b = binary.LittleEndian.AppendUint32(b, uint32(max(f.Len, len(f.Data))))
	b = append(b, f.Data...)
	b = appendPad(b)
	if flags := directionFlags(f.Dir); flags != 0 {
		var v [4]byte
		binary.LittleEndian.PutUint32(v[:], flags)
		b = appendOption(b, optEpbFlags, v[:])
	}
	if f.Comment != "" {
		b = appendOption(b, optComment, []byte(f.Comment))
	}
	b = appendEndOfOptions(b)
	p.buf = b
	if err := p.writeBlock(blockEnhancedPacket, b); err != nil {
		return fmt.Errorf("write pcapng packet: %w", err)
	}
	return nil
}

// ifaceName is the name an interface gets in the file: "" for frames
// that named none (read from a plain pcap), which come back without one.
func ifaceName(iface string, ifindex int) string {
	switch {
	case iface != "":
		return iface
	case ifindex != 0:
		return "if" + strconv.Itoa(ifindex)
	}
	return ""
}

// pcapngTime is t in nanoseconds since 1970, which pcapng stores unsigned.
func pcapngTime(t time.Time) (uint64, error) {
	if t.Before(time.Unix(0, 0)) || t.After(time.Unix(0, math.MaxInt64)) {
		return 0, fmt.Errorf("time %v is outside the years 1970 to 2262", t)
	}
	return uint64(t.UnixNano()), nil
}

func directionFlags(d Direction) uint32 {
	switch d {
	case DirIn:
		return 1
	case DirOut:
		return 2
	}
	return 0
}

// WriteInterfaceStats writes an interface statistics block: packets
// received, dropped by the kernel (isb_ifdrop) and dropped by hooktrace
// (isb_osdrop), as of at.
func (p *PcapngWriter) WriteInterfaceStats(netns, iface string, lt LinkType, received, kernelDrops, hooktraceDrops uint64, at time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, err := p.iface(netns, iface, 0, lt)
	if err != nil {
		return err
	}
	ts, err := pcapngTime(at)
	if err != nil {
		return fmt.Errorf("write pcapng statistics for %s: %w", fullName(netns, ifaceName(iface, 0)), err)
	}
	var v [8]byte
	b := binary.LittleEndian.AppendUint32(p.buf[:0], id)
	b = binary.LittleEndian.AppendUint32(b, uint32(ts>>32))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts))
	binary.LittleEndian.PutUint32(v[:], uint32(ts>>32))
	binary.LittleEndian.PutUint32(v[4:], uint32(ts))
	b = appendOption(b, optIsbEndTime, v[:])
	for _, o := range []struct {
		code uint16
		val  uint64
	}{{optIsbIfRecv, received}, {optIsbIfDrop, kernelDrops}, {optIsbOsDrop, hooktraceDrops}} {
		binary.LittleEndian.PutUint64(v[:], o.val)
		b = appendOption(b, o.code, v[:])
	}
	b = appendEndOfOptions(b)
	p.buf = b
	if err := p.writeBlock(blockIfStats, b); err != nil {
		return fmt.Errorf("write pcapng statistics for %s: %w", fullName(netns, ifaceName(iface, 0)), err)
	}
	return nil
}

// iface returns the interface id, writing its description block first.
func (p *PcapngWriter) iface(netns, iface string, ifindex int, lt LinkType) (uint32, error) {
	k := ifaceKey{netns: netns, iface: iface, linkType: lt}
	if iface == "" {
		k.ifindex = ifindex
	}
	if id, ok := p.ifaces[k]; ok {
		return id, nil
	}
	name := ifaceName(iface, ifindex)
	full, desc := fullName(netns, name), ifaceDescription(netns, name)
	b := binary.LittleEndian.AppendUint16(p.buf[:0], uint16(lt))
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 262144)
	if full != "" {
		b = appendOption(b, optIfName, []byte(full))
	}
	b = appendOption(b, optIfDesc, []byte(desc))
	b = appendOption(b, optIfTsresol, []byte{9})
	b = appendEndOfOptions(b)
	p.buf = b
	if err := p.writeBlock(blockInterface, b); err != nil {
		return 0, fmt.Errorf("write pcapng interface block for %s: %w", desc, err)
	}
	id := uint32(len(p.ifaces))
	p.ifaces[k] = id
	return id, nil
}

// ifaceDescription is the if_description option of interface name
// ("" for none) in namespace netns ("" for none): it says in words what
// the if_name option says, so that the reader can tell a hooktrace name
// after a tool such as mergecap rewrote the section header.
func ifaceDescription(netns, name string) string {
	desc := "interface " + name
	if name == "" {
		desc = "an unnamed interface"
	}
	if netns != "" {
		desc += " in network namespace " + netns
	}
	return desc
}

// fullName is the if_name option: "NETNS/IFACE", or IFACE alone.
func fullName(netns, name string) string {
	if netns == "" {
		return name
	}
	return netns + "/" + name
}

// writeBlock frames a block body with its type and lengths.
func (p *PcapngWriter) writeBlock(typ uint32, body []byte) error {
	n := uint32(12 + len(body))
	binary.LittleEndian.PutUint32(p.hdr[:], typ)
	binary.LittleEndian.PutUint32(p.hdr[4:], n)
	if _, err := p.w.Write(p.hdr[:]); err != nil {
		return err
	}
	if _, err := p.w.Write(body); err != nil {
		return err
	}
	_, err := p.w.Write(p.hdr[4:])
	return err
}

func appendOption(b []byte, code uint16, val []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(val)))
	b = append(b, val...)
	return appendPad(b)
}

func appendEndOfOptions(b []byte) []byte { return append(b, 0, 0, 0, 0) }

func appendPad(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
