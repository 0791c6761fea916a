package nflog

import (
	"fmt"
	"sync/atomic"
)

// defaultDropRingBytes is the default size of the BPF ring buffer (and of
// each CPU's tracefs buffer): about 25,000 drops of 168 bytes.
const defaultDropRingBytes = 4 << 20

// DropProbeOptions configures StartDropProbe. The zero value reports
// every drop with a reason in every namespace, by BPF where it loads.
type DropProbeOptions struct {
	// KeepNotSpecified also reports drops whose reason is NOT_SPECIFIED:
	// plain kfree_skb calls, mostly noise (a socket buffer freed on a
	// path nobody annotated). Skipped by default, in the kernel.
	KeepNotSpecified bool
	// NetnsInodes, when not nil, limits the BPF probe to packets of these
	// namespaces (the inode of /proc/PID/ns/net, as NetnsInode reports
	// it), filtered in the kernel so that other namespaces' drops are
	// never copied; a drop whose namespace is unknown is not reported
	// then. More can be added with AllowNetns. The tracefs fallback
	// cannot tell namespaces apart and ignores this.
	NetnsInodes []uint64
	// DisableBPF uses the tracefs fallback without trying BPF.
	DisableBPF bool
	// RingBytes is the size of the BPF ring buffer (a power of two, at
	// least a page), or of each CPU's tracefs buffer; 0 means 4 MiB.
	RingBytes int
}

// ringBytes is RingBytes or its default.
func (o DropProbeOptions) ringBytes() int {
	if o.RingBytes == 0 {
		return defaultDropRingBytes
	}
	return o.RingBytes
}

// skipReasons are the reasons the probe does not report: the normal
// frees if the tracepoint ever shows them, and NOT_SPECIFIED unless kept.
func (o DropProbeOptions) skipReasons() []string {
	r := []string{"NOT_DROPPED_YET", "CONSUMED"}
	if !o.KeepNotSpecified {
		r = append(r, "NOT_SPECIFIED")
	}
	return r
}

// validate refuses options no probe could use.
func (o DropProbeOptions) validate() error {
	n := o.ringBytes()
	if n < 4096 || n&(n-1) != 0 {
		return fmt.Errorf("start kernel drop probe: ring size %d is not a power of two of at least 4096 bytes", n)
	}
	if len(o.NetnsInodes) > maxAllowedNetns {
		return fmt.Errorf("start kernel drop probe: %d namespaces, at most %d", len(o.NetnsInodes), maxAllowedNetns)
	}
	return nil
}

// DropProbeMode says how a DropProbe learns of drops.
type DropProbeMode int

const (
	// DropProbeBPF is the eBPF program on skb:kfree_skb: each drop comes
	// with the packet's headers, its device and its namespace.
	DropProbeBPF DropProbeMode = iota
	// DropProbeTracefs is the fallback: the tracepoint's text records
	// from tracefs, without packet or namespace, matched to packets by
	// time only (KernelDrop.Probable).
	DropProbeTracefs
)

// String names the mode: "bpf" or "tracefs".
func (m DropProbeMode) String() string {
	if m == DropProbeBPF {
		return "bpf"
	}
	return "tracefs"
}

// dropSource is one way of receiving drops.
type dropSource interface {
	next() (KernelDrop, error)
	lost() uint64
	close() error
}

// DropProbe reports the packets the kernel drops (skb:kfree_skb with a
// reason), in every namespace or those chosen. Next is for one
// goroutine; Close, Stats and AllowNetns may be called from any.
type DropProbe struct {
	src      dropSource
	mode     DropProbeMode
	fallback string
	bpf      *bpfDrops // when mode is DropProbeBPF
	received atomic.Uint64
	closed   atomic.Bool
}

// DropProbeStats counts a probe's events.
type DropProbeStats struct {
	Received uint64 // drops returned by Next
	// Lost counts drops the kernel could not hand over: records the full
	// BPF ring buffer refused, or tracefs events overwritten or dropped
	// before they were read.
	Lost uint64
}

// StartDropProbe starts reporting kernel drops: by the BPF program when
// it loads, else by tracefs, whose reason FallbackReason gives. Only if
// both fail is there an error, naming both causes.
func StartDropProbe(opts DropProbeOptions) (*DropProbe, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	why := "BPF disabled by option"
	if !opts.DisableBPF {
		b, err := startBPFDrops(opts)
		if err == nil {
			return &DropProbe{src: b, bpf: b, mode: DropProbeBPF}, nil
		}
		why = firstLine(err.Error())
	}
	t, err := startTracefsDrops(opts)
	if err != nil {
		return nil, fmt.Errorf("start kernel drop probe: BPF: %s; tracefs: %w", why, err)
	}
	return &DropProbe{src: t, mode: DropProbeTracefs, fallback: why}, nil
}

// Next blocks for the next drop. After Close it returns an error
// wrapping net.ErrClosed.
func (p *DropProbe) Next() (KernelDrop, error) {
	d, err := p.src.next()
	if err == nil {
		p.received.Add(1)
	}
	return d, err
}

// Mode says whether drops come from BPF or from the tracefs fallback.
func (p *DropProbe) Mode() DropProbeMode { return p.mode }

// FallbackReason is why BPF was not used, in one line ("" with BPF).
func (p *DropProbe) FallbackReason() string { return p.fallback }

// Note is a line to show the user about the probe's limits, or "" with
// BPF.
func (p *DropProbe) Note() string {
	if p.mode == DropProbeBPF {
		return ""
	}
	return "kernel drops come from tracefs (" + p.fallback + "): they are matched to packets by time only and shown as probable"
}

// AllowNetns adds a namespace (by inode) to those the BPF probe reports,
// when it was started with NetnsInodes; otherwise every namespace is
// reported already and it does nothing.
func (p *DropProbe) AllowNetns(inode uint64) error {
	if p.bpf == nil {
		return nil
	}
	return p.bpf.allowNetns(inode)
}

// Stats returns the probe's counters so far.
func (p *DropProbe) Stats() DropProbeStats {
	return DropProbeStats{Received: p.received.Load(), Lost: p.src.lost()}
}

// Close stops the probe and removes what it set up (the BPF program and
// maps, or the tracefs instance and a mount it made), and unblocks Next.
func (p *DropProbe) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	if err := p.src.close(); err != nil {
		return fmt.Errorf("close kernel drop probe: %w", err)
	}
	return nil
}
