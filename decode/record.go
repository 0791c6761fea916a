package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hooktrace/hooktrace/nflog"
)

// Records of a recorded incident: what hooktrace writes beside the frames
// (in pcapng custom blocks) so that a replay rebuilds the journeys.
//
// Each encoding is compact binary: one version byte (RecordVersion), then
// the fields in a fixed order: unsigned and signed varints, strings and
// byte strings as a varint length and the bytes (a byte string's length is
// stored plus one, so that 0 keeps nil apart from empty), times as a
// signed varint of nanoseconds since 1970, booleans as bits of a flags
// varint. Decoders ignore bytes after the fields they know: a later
// version of the same format may append fields; an incompatible change
// takes a new version byte, which older decoders refuse.

// RecordVersion is the version of the record encodings written here.
const RecordVersion = 1

// errRecordVersion is wrapped by the errors of records of an unknown
// version.
var errRecordVersion = errors.New("record of an unknown encoding version")

// LossNotice says that events were lost during a recording: the kernel
// reported ENOBUFS on a namespace's trace socket, or hooktrace shed
// records because the journey builder lagged (Netns empty). Journeys open
// then are incomplete.
type LossNotice struct {
	Time  time.Time
	Netns string // "" for all namespaces
	Cause string // "enobufs" or "shed"
	Count uint64 // the counter's new value
}

// InterfaceName is an interface index's name in a namespace, as it was
// while recording: NFLOG messages and kernel drops carry only indexes.
type InterfaceName struct {
	Netns string
	Index uint32
	Name  string
}

// RulesetSnapshot is a namespace's ruleset as `nft -a list ruleset`
// printed it when the recording started.
type RulesetSnapshot struct {
	Time  time.Time
	Netns string
	Text  string
}

// Trace event flags.
const (
	recHasVerdict = 1 << iota
	recHasPolicy
	recHasCT
	recHasPriority
	recLegacy
	recProbable
	recHasTime
)

// AppendTraceRecord appends the encoding of ev to dst.
func AppendTraceRecord(dst []byte, ev *TraceEvent) []byte {
	e := recEncoder{b: append(dst, RecordVersion)}
	e.uint(flagBits(ev.HasVerdict, recHasVerdict) | flagBits(ev.HasPolicy, recHasPolicy) | flagBits(ev.HasCT, recHasCT) |
		flagBits(ev.HasPriority, recHasPriority) | flagBits(ev.Legacy, recLegacy) | flagBits(!ev.Time.IsZero(), recHasTime))
	e.time(ev.Time)
	e.str(ev.Netns)
	e.uint(uint64(ev.ID))
	e.uint(uint64(ev.Family))
	e.str(ev.Table)
	e.str(ev.Chain)
	e.uint(ev.Handle)
	e.uint(uint64(ev.Type))
	e.int(int64(ev.Verdict))
	e.str(ev.JumpTarget)
	e.int(int64(ev.Policy))
	e.bytes(ev.LL)
	e.bytes(ev.Network)
	e.bytes(ev.Transport)
	e.uint(uint64(ev.IIF))
	e.uint(uint64(ev.OIF))
	e.uint(uint64(ev.IIFType))
	e.uint(uint64(ev.OIFType))
	e.uint(uint64(ev.Mark))
	e.uint(uint64(ev.NFProto))
	e.uint(uint64(ev.CTID))
	e.uint(uint64(ev.CTDirection))
	e.uint(uint64(ev.CTStatus))
	e.uint(uint64(ev.CTState))
	e.str(ev.Hook)
	e.int(int64(ev.Priority))
	e.str(ev.Rule)
	e.str(ev.IptablesRule)
	e.str(ev.IIFName)
	e.str(ev.OIFName)
	e.int(int64(ev.RuleNumber))
	return e.b
}

// ParseTraceRecord decodes a trace event AppendTraceRecord encoded. Its
// byte strings are copies.
func ParseTraceRecord(b []byte) (TraceEvent, error) {
	return parseTraceRecord(b, nil)
}

// parseTraceRecord is ParseTraceRecord with strings from strs and byte
// strings into b (nil: new ones).
func parseTraceRecord(b []byte, strs *stringTable) (TraceEvent, error) {
	d, err := newRecDecoder(b, "trace event", strs)
	if err != nil {
		return TraceEvent{}, err
	}
	var ev TraceEvent
	flags := d.uint()
	ev.HasVerdict, ev.HasPolicy, ev.HasCT = flags&recHasVerdict != 0, flags&recHasPolicy != 0, flags&recHasCT != 0
	ev.HasPriority, ev.Legacy = flags&recHasPriority != 0, flags&recLegacy != 0
	ev.Time = d.time(flags&recHasTime != 0)
	ev.Netns = d.str()
	ev.ID = d.u32()
	ev.Family = uint8(d.bounded(math.MaxUint8))
	ev.Table = d.str()
	ev.Chain = d.str()
	ev.Handle = d.uint()
	ev.Type = nflog.TraceType(d.u32())
	ev.Verdict = nflog.Verdict(d.i32())
	ev.JumpTarget = d.str()
	ev.Policy = nflog.Verdict(d.i32())
	ev.LL = d.bytes()
	ev.Network = d.bytes()
	ev.Transport = d.bytes()
	ev.IIF = d.u32()
	ev.OIF = d.u32()
	ev.IIFType = uint16(d.bounded(math.MaxUint16))
	ev.OIFType = uint16(d.bounded(math.MaxUint16))
	ev.Mark = d.u32()
	ev.NFProto = d.u32()
	ev.CTID = d.u32()
	ev.CTDirection = uint8(d.bounded(math.MaxUint8))
	ev.CTStatus = d.u32()
	ev.CTState = d.u32()
	ev.Hook = d.str()
	ev.Priority = int(d.i32())
	ev.Rule = d.str()
	ev.IptablesRule = d.str()
	ev.IIFName = d.str()
	ev.OIFName = d.str()
	ev.RuleNumber = int(d.i32())
	if d.err != nil {
		return TraceEvent{}, d.err
	}
	return ev, nil
}

// AppendDropRecord appends the encoding of a kernel drop to dst.
func AppendDropRecord(dst []byte, kd *KernelDrop) []byte {
	e := recEncoder{b: append(dst, RecordVersion)}
	var flags uint64
	if kd.Probable {
		flags |= recProbable
	}
	if !kd.Time.IsZero() {
		flags |= recHasTime
	}
	e.uint(flags)
	e.time(kd.Time)
	e.uint(kd.NetnsInode)
	e.str(kd.Netns)
	e.uint(uint64(kd.Ifindex))
	e.str(kd.Reason)
	e.str(kd.Location)
	e.uint(uint64(kd.Protocol))
	e.bytes(kd.Network)
	return e.b
}

// ParseDropRecord decodes a kernel drop AppendDropRecord encoded.
func ParseDropRecord(b []byte) (KernelDrop, error) {
	return parseDropRecord(b, nil)
}

// parseDropRecord is ParseDropRecord with strings from strs and byte
// strings into b (nil: new ones).
func parseDropRecord(b []byte, strs *stringTable) (KernelDrop, error) {
	d, err := newRecDecoder(b, "kernel drop", strs)
	if err != nil {
		return KernelDrop{}, err
	}
	var kd KernelDrop
	flags := d.uint()
	kd.Probable = flags&recProbable != 0
	kd.Time = d.time(flags&recHasTime != 0)
	kd.NetnsInode = d.uint()
	kd.Netns = d.str()
	kd.Ifindex = d.u32()
	kd.Reason = d.str()
	kd.Location = d.str()
	kd.Protocol = uint16(d.bounded(math.MaxUint16))
	kd.Network = d.bytes()
	if d.err != nil {
		return KernelDrop{}, d.err
	}
	return kd, nil
}

// AppendLossRecord appends the encoding of a loss notice to dst.
func AppendLossRecord(dst []byte, l *LossNotice) []byte {
	e := recEncoder{b: append(dst, RecordVersion)}
	var flags uint64
	if !l.Time.IsZero() {
		flags |= recHasTime
	}
	e.uint(flags)
	e.time(l.Time)
	e.str(l.Netns)
	e.str(l.Cause)
	e.uint(l.Count)
	return e.b
}

// ParseLossRecord decodes a loss notice AppendLossRecord encoded.
func ParseLossRecord(b []byte) (LossNotice, error) {
	return parseLossRecord(b, nil)
}

// parseLossRecord is ParseLossRecord with strings from strs (nil: new
// ones).
func parseLossRecord(b []byte, strs *stringTable) (LossNotice, error) {
	d, err := newRecDecoder(b, "loss notice", strs)
	if err != nil {
		return LossNotice{}, err
	}
	var l LossNotice
	l.Time = d.time(d.uint()&recHasTime != 0)
	l.Netns = d.str()
	l.Cause = d.str()
	l.Count = d.uint()
	if d.err != nil {
		return LossNotice{}, d.err
	}
	return l, nil
}

// AppendInterfaceRecord appends the encoding of an interface name to dst.
func AppendInterfaceRecord(dst []byte, n *InterfaceName) []byte {
	e := recEncoder{b: append(dst, RecordVersion)}
	e.str(n.Netns)
	e.uint(uint64(n.Index))
	e.str(n.Name)
	return e.b
}

// ParseInterfaceRecord decodes an interface name AppendInterfaceRecord
// encoded.
func ParseInterfaceRecord(b []byte) (InterfaceName, error) {
	d, err := newRecDecoder(b, "interface name", nil)
	if err != nil {
		return InterfaceName{}, err
	}
	n := InterfaceName{Netns: d.str(), Index: d.u32(), Name: d.str()}
	if d.err != nil {
		return InterfaceName{}, d.err
	}
	return n, nil
}

// AppendRulesetRecord appends the encoding of a ruleset snapshot to dst.
func AppendRulesetRecord(dst []byte, s *RulesetSnapshot) []byte {
	e := recEncoder{b: append(dst, RecordVersion)}
	var flags uint64
	if !s.Time.IsZero() {
		flags |= recHasTime
	}
	e.uint(flags)
	e.time(s.Time)
	e.str(s.Netns)
	e.str(s.Text)
	return e.b
}

// ParseRulesetRecord decodes a ruleset snapshot AppendRulesetRecord
// encoded.
func ParseRulesetRecord(b []byte) (RulesetSnapshot, error) {
	d, err := newRecDecoder(b, "ruleset snapshot", nil)
	if err != nil {
		return RulesetSnapshot{}, err
	}
	var s RulesetSnapshot
	s.Time = d.time(d.uint()&recHasTime != 0)
	s.Netns = d.str()
	s.Text = d.str()
	if d.err != nil {
		return RulesetSnapshot{}, d.err
	}
	return s, nil
}

func flagBits(on bool, bit uint64) uint64 {
	if on {
		return bit
	}
	return 0
}

type recEncoder struct{ b []byte }

func (e *recEncoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *recEncoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }

func (e *recEncoder) str(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *recEncoder) bytes(b []byte) {
	if b == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(b)) + 1)
	e.b = append(e.b, b...)
}

// time writes nothing for the zero time: the flags say it is absent.
func (e *recEncoder) time(t time.Time) {
	if !t.IsZero() {
		e.int(t.UnixNano())
	}
}

// recDecoder reads fields with a sticky error: after the first problem
// every read returns zero values.
type recDecoder struct {
	b    []byte
	what string
	err  error
	// strs, when set, makes the strings (once each), and byte strings
	// point into b rather than being copies.
	strs *stringTable
}

// newRecDecoder reads a record of what kind, with strings from strs (nil:
// new ones, and byte strings copies).
func newRecDecoder(b []byte, what string, strs *stringTable) (recDecoder, error) {
	if len(b) == 0 {
		return recDecoder{}, fmt.Errorf("decode %s record: empty", what)
	}
	if b[0] != RecordVersion {
		return recDecoder{}, fmt.Errorf("decode %s record: version %d: %w", what, b[0], errRecordVersion)
	}
	strs.start()
	return recDecoder{b: b[1:], what: what, strs: strs}, nil
}

func (d *recDecoder) fail(msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("decode %s record: %s", d.what, msg)
	}
}

func (d *recDecoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated or overlong number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recDecoder) int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("truncated or overlong number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bounded reads an unsigned number that must not exceed max.
func (d *recDecoder) bounded(max uint64) uint64 {
	v := d.uint()
	if v > max {
		d.fail(fmt.Sprintf("number %d exceeds %d", v, max))
		return 0
	}
	return v
}

func (d *recDecoder) u32() uint32 { return uint32(d.bounded(math.MaxUint32)) }

func (d *recDecoder) i32() int32 {
	v := d.int()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail(fmt.Sprintf("number %d out of range", v))
		return 0
	}
	return int32(v)
}

// take returns the next n bytes.
func (d *recDecoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(fmt.Sprintf("field of %d bytes, %d left", n, len(d.b)))
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *recDecoder) str() string {
	b := d.take(d.uint())
	if d.strs != nil {
		return d.strs.get(b)
	}
	return string(b)
}

func (d *recDecoder) bytes() []byte {
	n := d.uint()
	if n == 0 || d.err != nil {
		return nil
	}
	b := d.take(n - 1)
	if d.err != nil {
		return nil
	}
	if d.strs != nil {
		return b[:len(b):len(b)]
	}
	return append(make([]byte, 0, len(b)), b...)
}

func (d *recDecoder) time(present bool) time.Time {
	if !present {
		return time.Time{}
	}
	ns := d.int()
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// stringTable makes each string records repeat once: namespace, table,
// chain and device names, rule texts. It is for one goroutine.
type stringTable struct {
	m map[string]string
	// last holds the strings get gave for the last record's fields, in
	// order, looked at before the map: records repeat the last one's
	// namespace, table, chain...; field counts the current record's.
	last  [16]string
	field int
}

// Bounds of a stringTable: longer strings are not kept, and a full table
// starts again empty (the strings it made stay valid).
const (
	maxTableString  = 1024
	maxTableStrings = 4096
)

// start tells t a new record begins (nil: no table).
func (t *stringTable) start() {
	if t != nil {
		t.field = 0
	}
}

// get returns b as a string, the same string as last time when it was
// seen before.
func (t *stringTable) get(b []byte) string {
	f := t.field % len(t.last)
	t.field++
	if len(b) == 0 {
		return ""
	}
	if t.last[f] == string(b) {
		return t.last[f]
	}
	s, ok := t.m[string(b)]
	if !ok {
		s = string(b)
		if len(b) > maxTableString {
			return s
		}
		if t.m == nil || len(t.m) >= maxTableStrings {
			t.m = make(map[string]string, 64)
		}
		t.m[s] = s
	}
	t.last[f] = s
	return s
}
