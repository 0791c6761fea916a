package nflog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// maxAllowedNetns is how many namespaces a probe's filter can hold.
const maxAllowedNetns = 4096

// bpfDrops is the BPF probe: the program on the kfree_skb raw
// tracepoint, its maps and the ring buffer reader.
type bpfDrops struct {
	layout  *kernelLayout
	syms    *kernelSymbols
	ring    *ebpf.Map
	lostMap *ebpf.Map
	allow   *ebpf.Map // nil: every namespace
	prog    *ebpf.Program
	link    link.Link
	reader  *ringbuf.Reader
	rec     ringbuf.Record
	closed  atomic.Bool
	final   atomic.Uint64 // lost, read at close
}

// startBPFDrops loads and attaches the program. Whatever fails, nothing
// stays loaded.
func startBPFDrops(opts DropProbeOptions) (_ *bpfDrops, err error) {
	b := &bpfDrops{}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if b.layout, err = loadKernelLayout(); err != nil {
		return nil, err
	}
	if b.syms, err = loadKernelSymbols(); err != nil {
		return nil, err
	}
	if err = b.makeMaps(opts); err != nil {
		return nil, err
	}
	if err = b.load(opts); err != nil {
		return nil, err
	}
	if b.reader, err = ringbuf.NewReader(b.ring); err != nil {
		return nil, fmt.Errorf("open ring buffer reader: %w", err)
	}
	b.link, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "kfree_skb", Program: b.prog})
	if err != nil {
		return nil, fmt.Errorf("attach BPF program to raw tracepoint kfree_skb: %w", err)
	}
	return b, nil
}

// makeMaps creates the ring buffer, the lost counter and, when the probe
// is limited to some namespaces, the set of their inodes.
func (b *bpfDrops) makeMaps(opts DropProbeOptions) error {
	var err error
	b.ring, err = ebpf.NewMap(&ebpf.MapSpec{Name: "hxdrop_ring", Type: ebpf.RingBuf, MaxEntries: uint32(opts.ringBytes())})
	if err != nil {
		return fmt.Errorf("create BPF ring buffer of %d bytes: %w", opts.ringBytes(), err)
	}
	b.lostMap, err = ebpf.NewMap(&ebpf.MapSpec{Name: "hxdrop_lost", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return fmt.Errorf("create BPF lost counter: %w", err)
	}
	if opts.NetnsInodes == nil {
		return nil
	}
	b.allow, err = ebpf.NewMap(&ebpf.MapSpec{Name: "hxdrop_netns", Type: ebpf.Hash, KeySize: 4, ValueSize: 1, MaxEntries: maxAllowedNetns})
	if err != nil {
		return fmt.Errorf("create BPF namespace filter: %w", err)
	}
	for _, ino := range opts.NetnsInodes {
		if err := b.allowNetns(ino); err != nil {
			return err
		}
	}
	return nil
}

// allowNetns adds a namespace inode to the filter.
func (b *bpfDrops) allowNetns(ino uint64) error {
	if b.allow == nil {
		return nil
	}
	if ino > 1<<32-1 {
		return fmt.Errorf("allow netns inode %d in drop probe: not a namespace inode", ino)
	}
	if err := b.allow.Put(uint32(ino), uint8(1)); err != nil {
		return fmt.Errorf("allow netns inode %d in drop probe: %w", ino, err)
	}
	return nil
}

// load assembles the program with the reasons to skip and loads it.
func (b *bpfDrops) load(opts DropProbeOptions) error {
	cfg := dropProgramConfig{layout: b.layout, ringFD: b.ring.FD(), lostFD: b.lostMap.FD(), allowFD: -1}
	if b.allow != nil {
		cfg.allowFD = b.allow.FD()
	}
	for _, name := range opts.skipReasons() {
		if v, ok := reasonValue(b.layout.reasons, name); ok {
			cfg.skipValue = append(cfg.skipValue, v)
		}
	}
	spec := &ebpf.ProgramSpec{
		Name:         "hxdrop",
		Type:         ebpf.RawTracepoint,
		Instructions: dropProgram(cfg),
		License:      "GPL", // bpf_probe_read_kernel is GPL-only
	}
	var err error
	b.prog, err = ebpf.NewProgram(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("load BPF drop program: verifier: %v", firstLine(fmt.Sprintf("%v", ve)))
		}
		return fmt.Errorf("load BPF drop program: %w", err)
	}
	return nil
}

// next reads one record and turns it into a KernelDrop.
func (b *bpfDrops) next() (KernelDrop, error) {
	for {
		if err := b.reader.ReadInto(&b.rec); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return KernelDrop{}, fmt.Errorf("read kernel drops: %w", net.ErrClosed)
			}
			return KernelDrop{}, fmt.Errorf("read kernel drops from ring buffer: %w", err)
		}
		if d, ok := b.decode(b.rec.RawSample); ok {
			return d, nil
		}
	}
}

// decode turns a record into a KernelDrop; a short record (which the
// program never writes) is skipped.
func (b *bpfDrops) decode(r []byte) (KernelDrop, bool) {
	if len(r) < recSize {
		return KernelDrop{}, false
	}
	le := binary.NativeEndian
	reason := le.Uint32(r[recReason:])
	d := KernelDrop{
		Time:       monoToWall(int64(le.Uint64(r[recTime:]))),
		NetnsInode: uint64(le.Uint32(r[recInum:])),
		Ifindex:    le.Uint32(r[recIfindex:]),
		Reason:     b.layout.reasons[reason],
		Protocol:   binary.BigEndian.Uint16(r[recProtocol:]),
	}
	if d.Reason == "" {
		d.Reason = "0x" + strconv.FormatUint(uint64(reason), 16) // as __print_symbolic prints an unknown value
	}
	d.Location, _ = b.syms.Resolve(le.Uint64(r[recLocation:]))
	if n := int(le.Uint16(r[recLen:])); n > 0 && n <= DropHeaderBytes {
		d.Network = append([]byte(nil), r[recData:recData+n]...)
	}
	return d, true
}

// lost reads the program's count of records the full ring refused.
func (b *bpfDrops) lost() uint64 {
	if b.closed.Load() {
		return b.final.Load()
	}
	var n uint64
	if err := b.lostMap.Lookup(uint32(0), &n); err != nil {
		return 0
	}
	return n
}

// close detaches the program first, so nothing writes into maps being
// closed, then closes the reader (unblocking next) and the maps.
func (b *bpfDrops) close() error {
	var errs []error
	if b.link != nil {
		if err := b.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach BPF drop program: %w", err))
		}
	}
	if b.lostMap != nil {
		b.final.Store(b.lost())
	}
	b.closed.Store(true)
	if b.reader != nil {
		if err := b.reader.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close ring buffer reader: %w", err))
		}
	}
	for _, c := range []interface{ Close() error }{b.prog, b.ring, b.lostMap, b.allow} {
		if c == nil || isNilPointer(c) {
			continue
		}
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close BPF object: %w", err))
		}
	}
	return errors.Join(errs...)
}

// isNilPointer tells a typed nil map or program from a real one.
func isNilPointer(c interface{ Close() error }) bool {
	switch v := c.(type) {
	case *ebpf.Map:
		return v == nil
	case *ebpf.Program:
		return v == nil
	}
	return false
}

// monoToWall converts a CLOCK_MONOTONIC time (bpf_ktime_get_ns, tracefs'
// "mono" clock) to wall-clock time, with the clocks' offset now.
func monoToWall(mono int64) time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Now()
	}
	now := time.Now()
	return now.Add(-time.Duration(ts.Nano() - mono)).Round(0)
}

// firstLine keeps the first line of a long message (the verifier's log).
func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
