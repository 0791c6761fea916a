package capture

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"time"
)

// hooktrace's records beside the frames travel in pcapng Custom Blocks.
//
// Block type 0x00000BAD is the custom block that rewriting tools may copy
// into the files they write (editcap and mergecap do); 0x40000BAD is the
// one they must not copy. hooktrace writes the first and reads both.
//
// Layout of a hooktrace custom block (lengths in bytes; the block framing
// and the enterprise number follow the section's byte order, hooktrace's
// own header is always little-endian):
//
//	 0  4  block type 0x00000BAD
//	 4  4  block total length
//	 8  4  private enterprise number: 32473 (IANA's example PEN, RFC 5612)
//	12  4  magic "HKTR"
//	16  1  format version (CustomVersion)
//	17  1  kind (CustomKind)
//	18  2  length of the namespace name
//	20  8  time, nanoseconds since 1970 (0: unknown)
//	28  4  payload length
//	32  4  CRC-32C of bytes 12..31 (with this field zero), the name and the payload
//	36  n  namespace name, then the payload, then zeros to a multiple of 4
//	 .  4  block total length
//
// No options follow the custom data.
const (
	blockCustomCopy   = 0x00000BAD
	blockCustomNoCopy = 0x40000BAD

	// HooktracePEN is the private enterprise number hooktrace's custom
	// blocks carry: 32473, the number IANA reserves for examples and
	// documentation (RFC 5612). A block with another number belongs to
	// another tool.
	HooktracePEN = 32473

	// CustomVersion is the format version of the custom records this
	// hooktrace writes; records of a higher version are skipped on reading.
	CustomVersion = 1

	customMagic     = "HKTR"
	customHeaderLen = 24 // magic to CRC, after the enterprise number
)

// CustomKind says what a hooktrace custom record carries.
type CustomKind uint8

// Kinds of custom records. The payload encodings are decode's.
const (
	CustomTrace     CustomKind = 1 // an nf_tables or iptables-legacy trace event
	CustomDrop      CustomKind = 2 // a packet the kernel dropped
	CustomRuleset   CustomKind = 3 // a namespace's ruleset when the recording started
	CustomLoss      CustomKind = 4 // events were lost (the kernel's ENOBUFS, or hooktrace shed them)
	CustomInterface CustomKind = 5 // an interface index's name in a namespace
)

// String names the kind.
func (k CustomKind) String() string {
	switch k {
	case CustomTrace:
		return "trace event"
	case CustomDrop:
		return "kernel drop"
	case CustomRuleset:
		return "ruleset snapshot"
	case CustomLoss:
		return "loss notice"
	case CustomInterface:
		return "interface name"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// CustomRecord is one hooktrace custom block as read back.
type CustomRecord struct {
	Kind    CustomKind
	Version uint8
	Time    time.Time // zero when unknown
	Netns   string
	// Payload belongs to the file and is valid until the next read.
	Payload []byte
	// Shift is how far a Merge moved the record's time (Time includes
	// it): the times the payload holds move by as much. When a Merge
	// renamed the namespace (Netns), the payload's namespace is renamed
	// too; Renamed says so.
	Shift   time.Duration
	Renamed bool
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteCustom writes a hooktrace custom block: a record of the given kind
// that happened at t in namespace netns, with payload encoded by the
// caller. Tools that do not know it skip it. It may be called from any
// goroutine, as WritePacket may.
func (p *PcapngWriter) WriteCustom(kind CustomKind, t time.Time, netns string, payload []byte) error {
	if len(netns) > math.MaxUint16 {
		return fmt.Errorf("write pcapng %s record: namespace name of %d bytes", kind, len(netns))
	}
	if len(payload) > maxRecordSize-64-len(netns) {
		return fmt.Errorf("write pcapng %s record: payload of %d bytes exceeds %d", kind, len(payload), maxRecordSize-64)
	}
	var ts uint64
	if !t.IsZero() {
		var err error
		if ts, err = pcapngTime(t); err != nil {
			return fmt.Errorf("write pcapng %s record: %w", kind, err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b := binary.LittleEndian.AppendUint32(p.buf[:0], HooktracePEN)
	b = appendCustomData(b, kind, ts, netns, payload)
	b = appendPad(b)
	p.buf = b
	if err := p.writeBlock(blockCustomCopy, b); err != nil {
		return fmt.Errorf("write pcapng %s record: %w", kind, err)
	}
	return nil
}

// appendCustomData appends hooktrace's header, the name and the payload.
func appendCustomData(b []byte, kind CustomKind, ts uint64, netns string, payload []byte) []byte {
	start := len(b)
	b = append(b, customMagic...)
	b = append(b, CustomVersion, byte(kind))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(netns)))
	b = binary.LittleEndian.AppendUint64(b, ts)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = append(b, netns...)
	b = append(b, payload...)
	sum := crc32.Checksum(b[start:], castagnoli)
	binary.LittleEndian.PutUint32(b[start+20:], sum)
	return b
}

// customBlockError says why a custom block was skipped.
type customBlockError struct {
	msg string
}

func (e *customBlockError) Error() string { return e.msg }

// zeroCRC stands for the checksum field while the checksum is computed.
var zeroCRC [4]byte

// parseCustom reads the body of a custom block (after type and length,
// before the trailing length). A block of another enterprise, a damaged
// one or one of a newer version gives a *customBlockError.
func parseCustom(order binary.ByteOrder, body []byte, rec *CustomRecord) error {
	if len(body) < 4 {
		return &customBlockError{fmt.Sprintf("custom block too short (%d bytes)", len(body))}
	}
	if pen := order.Uint32(body); pen != HooktracePEN {
		return &customBlockError{fmt.Sprintf("custom block of enterprise number %d is not hooktrace's", pen)}
	}
	d := body[4:]
	if len(d) < customHeaderLen || string(d[:4]) != customMagic {
		return &customBlockError{"hooktrace custom block has no hooktrace header"}
	}
	version, kind := d[4], CustomKind(d[5])
	if version > CustomVersion || version == 0 {
		return &customBlockError{fmt.Sprintf("hooktrace custom block of format version %d (this hooktrace reads version %d; a newer hooktrace wrote it)", version, CustomVersion)}
	}
	nlen := int(binary.LittleEndian.Uint16(d[6:]))
	ts := binary.LittleEndian.Uint64(d[8:])
	plen := uint64(binary.LittleEndian.Uint32(d[16:]))
	want := binary.LittleEndian.Uint32(d[20:])
	end := uint64(customHeaderLen) + uint64(nlen) + plen
	if end > uint64(len(d)) {
		return &customBlockError{fmt.Sprintf("hooktrace %s record claims %d bytes in a %d-byte block", kind, end, len(d))}
	}
	crc := crc32.Update(0, castagnoli, d[:20])
	crc = crc32.Update(crc, castagnoli, zeroCRC[:])
	crc = crc32.Update(crc, castagnoli, d[customHeaderLen:end])
	if crc != want {
		return &customBlockError{fmt.Sprintf("hooktrace %s record is damaged (checksum %08x, expected %08x)", kind, crc, want)}
	}
	if ts > math.MaxInt64 {
		return &customBlockError{fmt.Sprintf("hooktrace %s record has time %d out of range", kind, ts)}
	}
	rec.Kind, rec.Version, rec.Shift, rec.Renamed = kind, version, 0, false
	rec.Time = time.Time{}
	if ts != 0 {
		rec.Time = time.Unix(0, int64(ts))
	}
	if netns := d[customHeaderLen : customHeaderLen+nlen]; string(netns) != rec.Netns {
		rec.Netns = string(netns) // else the last record's name: records of one namespace come in runs
	}
	rec.Payload = d[customHeaderLen+uint64(nlen) : end]
	return nil
}

// Flush flushes the writer underneath, when it buffers (has a Flush
// method), between whole blocks: a file flushed on a tick stays readable
// up to its last flushed block if the process is killed.
func (p *PcapngWriter) Flush() error {
	f, ok := p.w.(interface{ Flush() error })
	if !ok {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return f.Flush()
}
