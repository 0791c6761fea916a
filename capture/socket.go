package capture

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Counters of one capture socket. They are updated by its reader and read
// by anyone.
type socketCounters struct {
	received       atomic.Uint64 // frames handed to the consumer
	kernelDrops    atomic.Uint64 // frames the ring had no room for
	hooktraceDrops atomic.Uint64 // frames dropped because the consumer lagged
}

// socket is one AF_PACKET TPACKET_V3 ring on one interface, for one
// direction: gopacket's afpacket does not report a frame's packet type,
// so hooktrace opens a socket per direction and lets a kernel filter
// split them by packet type.
type socket struct {
	iface        *ifaceCapture
	dir          Direction
	blockTimeout time.Duration
	tp           *afpacket.TPacket
	counters     socketCounters
}

// SKF_AD_PKTTYPE: the ancillary load of a packet's type in classic BPF.
const skfAdPkttype = 4

// directionFilter prefixes prog with a test of the packet type: only
// outgoing packets for DirOut, only the others for DirIn.
func directionFilter(dir Direction, prog []bpf.RawInstruction) ([]bpf.RawInstruction, error) {
	head := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		// The jump targets count from the next instruction: 0 goes on to
		// the user's program after the reject, 1 skips to it.
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: PacketOutgoing, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
	}
	if dir == DirIn {
		head[1] = bpf.JumpIf{Cond: bpf.JumpEqual, Val: PacketOutgoing, SkipFalse: 1}
	}
	raw, err := bpf.Assemble(head)
	if err != nil {
		return nil, fmt.Errorf("assemble direction filter: %w", err)
	}
	return append(raw, prog...), nil
}

// rejectAll is attached while a new socket's ring is drained of what
// arrived before its real filter.
var rejectAll = []bpf.RawInstruction{{Op: unix.BPF_RET | unix.BPF_K, K: 0}}

// openSocket creates the ring inside the interface's namespace. The
// calling goroutine's thread enters the namespace only for the socket
// call and comes back before it is unlocked.
func openSocket(ic *ifaceCapture, dir Direction, opts *LiveOptions) (*socket, error) {
	var tp *afpacket.TPacket
	err := inNamespace(ic.ns.handle, func() error {
		var err error
		tp, err = afpacket.NewTPacket(
			afpacket.OptInterface(ic.name),
			afpacket.TPacketVersion3,
			afpacket.OptFrameSize(opts.frameSize()),
			afpacket.OptBlockSize(opts.blockSize()),
			afpacket.OptNumBlocks(opts.numBlocks()),
			afpacket.OptBlockTimeout(opts.BlockTimeout),
			afpacket.OptPollTimeout(pollTimeout),
		)
		return err
	})
	if err != nil {
		return nil, privilegeHint(fmt.Errorf("open capture on %s: %w", ic.label(), err), "CAP_NET_RAW")
	}
	if err := tp.SetBPF(rejectAll); err != nil {
		tp.Close()
		return nil, fmt.Errorf("attach filter on %s: %w", ic.label(), err)
	}
	if opts.Promisc {
		if err := tp.SetPromiscuous(true); err != nil {
			tp.Close()
			return nil, fmt.Errorf("promiscuous mode on %s: %w", ic.label(), err)
		}
	}
	return &socket{iface: ic, dir: dir, tp: tp, blockTimeout: opts.BlockTimeout}, nil
}

// pollTimeout bounds how long a reader waits in poll before it looks
// whether it must stop.
const pollTimeout = 50 * time.Millisecond

// batchMaxAge is how long a reader keeps a partly filled batch while
// packets trickle in, before handing it over.
const batchMaxAge = 20 * time.Millisecond

// inNamespace runs fn on a locked OS thread inside ns, then restores the
// thread's namespace. If that fails the thread stays locked, so Go
// retires it rather than reusing it in the wrong namespace.
func inNamespace(ns netns.NsHandle, fn func() error) error {
	if ns == netns.None() {
		return fn()
	}
	var err error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		orig, gerr := netns.Get()
		if gerr != nil {
			err = fmt.Errorf("read this thread's network namespace: %w", gerr)
			runtime.UnlockOSThread()
			return
		}
		defer orig.Close()
		if serr := netns.Set(ns); serr != nil {
			err = privilegeHint(fmt.Errorf("enter network namespace: %w", serr), "CAP_SYS_ADMIN")
			runtime.UnlockOSThread()
			return
		}
		err = fn()
		if rerr := netns.Set(orig); rerr != nil {
			if err == nil {
				err = fmt.Errorf("return to hooktrace's network namespace: %w", rerr)
			}
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
	}()
	wg.Wait()
	return err
}

// PrivilegeError reports a missing capability.
type PrivilegeError struct {
	Capability string
	Err        error
}

func (e *PrivilegeError) Error() string {
	return fmt.Sprintf("%v: hooktrace needs %s: run it as root, or grant it with: setcap cap_net_raw,cap_net_admin,cap_sys_admin+ep $(command -v hooktrace)", e.Err, e.Capability)
}

func (e *PrivilegeError) Unwrap() error { return e.Err }

func privilegeHint(err error, capability string) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return &PrivilegeError{Capability: capability, Err: err}
	}
	return err
}

// start drains what the ring caught before the filter was in place,
// attaches the real filter and reads until stop is closed or the
// interface goes away. ready is called once the filter is attached.
func (s *socket) start(prog []bpf.RawInstruction, pool *batchPool, stop <-chan struct{}, ready func(error), done func()) {
	go func() {
		defer done()
		defer s.tp.Close()
		s.drain()
		filter, err := directionFilter(s.dir, prog)
		if err == nil {
			err = s.tp.SetBPF(filter)
		}
		if err == nil {
			err = s.tp.InitSocketStats()
		}
		if err != nil {
			ready(fmt.Errorf("attach filter on %s: %w", s.iface.label(), err))
			return
		}
		ready(nil)
		s.read(pool, stop)
	}()
}

// drain discards every frame in the ring, up to the first poll timeout.
func (s *socket) drain() {
	for {
		if _, _, err := s.tp.ZeroCopyReadPacketData(); err != nil {
			return
		}
	}
}

func (s *socket) read(pool *batchPool, stop <-chan struct{}) {
	var cur *batch
	flush := func() {
		if cur != nil && len(cur.frames) > 0 {
			pool.full <- cur
			cur = nil
		}
	}
	defer func() {
		flush()
		if cur != nil {
			pool.put(cur)
		}
		s.updateKernelStats()
	}()
	lastStats := time.Now()
	var first time.Time    // capture time of the current batch's first frame
	var deadline time.Time // once stopped: read what the kernel still holds until then
	for {
		if deadline.IsZero() {
			select {
			case <-stop:
				// A partly filled ring block reaches user space only when
				// the kernel retires it, within the block timeout: read on
				// until then so every packet captured before the stop is kept.
				deadline = time.Now().Add(s.blockTimeout + 10*time.Millisecond)
			default:
			}
		} else if time.Now().After(deadline) {
			return
		}
		data, ci, err := s.tp.ZeroCopyReadPacketData()
		if errors.Is(err, afpacket.ErrTimeout) {
			if !deadline.IsZero() && time.Now().After(deadline) {
				return // the ring is empty and every block was retired
			}
			flush()
			if time.Since(lastStats) > time.Second {
				s.updateKernelStats()
				lastStats = time.Now()
			}
			continue
		}
		if err != nil {
			select {
			case <-stop: // closed because the interface went down or away
			default:
				s.iface.gone(fmt.Errorf("read %s: %w", s.iface.label(), err))
			}
			return
		}
		if cur != nil && !cur.fits(len(data)) {
			flush()
		}
		if cur == nil {
			if cur = pool.get(); cur == nil {
				s.counters.hooktraceDrops.Add(1)
				continue
			}
		}
		if len(cur.frames) == 0 {
			first = ci.Timestamp
		}
		cur.add(Frame{
			Time:     ci.Timestamp,
			Netns:    s.iface.ns.ns.Name,
			Iface:    s.iface.name,
			Ifindex:  s.iface.index,
			Dir:      s.dir,
			LinkType: s.iface.linkType,
			Len:      ci.Length,
			Data:     data,
		})
		s.counters.received.Add(1)
		if ci.Timestamp.Sub(first) > batchMaxAge {
			flush()
		}
	}
}

// updateKernelStats adds what the kernel dropped since the last call.
func (s *socket) updateKernelStats() {
	_, v3, err := s.tp.SocketStats()
	if err == nil {
		s.counters.kernelDrops.Store(uint64(v3.Drops()))
	}
}
