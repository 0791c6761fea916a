package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/hooktrace/hooktrace/capture/filter"
	"golang.org/x/net/bpf"
)

// LiveOptions configures a live capture.
type LiveOptions struct {
	// Interfaces to capture on; empty or "any" means every interface of
	// every namespace, including interfaces that appear later.
	Interfaces []string
	// NoInterfaces captures on no interface at all: Next returns only
	// what Inject adds (NFLOG groups alone, as `tcpdump -i nflog:N`).
	NoInterfaces bool
	// Namespaces to capture in; empty means hooktrace's own. With
	// WatchNamespaces, namespaces that appear later are added and ones that
	// vanish are closed.
	Namespaces      []Namespace
	WatchNamespaces bool
	Snaplen         int           // bytes kept per packet; 0 means 262144
	RingBytes       int           // ring memory per socket; 0 means 4 MiB
	BlockTimeout    time.Duration // how long the kernel may hold a partly filled block; 0 means 10 ms
	Promisc         bool
	Filter          string // a tcpdump expression, run in the kernel
	// Notify receives notices: interfaces and namespaces coming and going.
	Notify func(msg string)
}

const (
	defaultSnaplen   = 262144
	defaultRingBytes = 4 << 20
	blockBytes       = 1 << 20
	// batchCount bounds the copied packet data waiting for the consumer:
	// batchCount * 256 KiB, allocated as needed.
	batchCount = 128
)

func (o *LiveOptions) snaplen() int {
	if o.Snaplen <= 0 || o.Snaplen > defaultSnaplen {
		return defaultSnaplen
	}
	return o.Snaplen
}

func (o *LiveOptions) blockSize() int { return blockBytes }

func (o *LiveOptions) numBlocks() int {
	n := o.RingBytes / blockBytes
	if o.RingBytes <= 0 {
		n = defaultRingBytes / blockBytes
	}
	if n < 1 {
		n = 1
	}
	return n
}

// frameSize is the TPACKET_V3 frame size: frames are packed into blocks,
// so this only has to divide the block size.
func (o *LiveOptions) frameSize() int { return 1 << 11 }

func (o *LiveOptions) anyInterface() bool {
	if o.NoInterfaces {
		return false
	}
	for _, i := range o.Interfaces {
		if i == "any" {
			return true
		}
	}
	return len(o.Interfaces) == 0
}

func (o *LiveOptions) notify(format string, args ...any) {
	if o.Notify != nil {
		o.Notify(fmt.Sprintf(format, args...))
	}
}

// Live captures on AF_PACKET rings in one or more network namespaces. It
// is a Source: Next returns frames from every socket in the order their
// batches arrive.
type Live struct {
	opts   LiveOptions
	pool   *batchPool
	stop   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine Live started

	mu         sync.Mutex
	namespaces map[uint64]*nsCapture
	programs   map[LinkType][]bpf.RawInstruction
	retired    []*socket                 // closed sockets whose counters still count
	names      map[string]map[int]string // netns → index → name of every interface captured
	closed     bool

	pending []*cursor // batches received and not yet fully returned
	now     time.Time // cached wall clock for the reorder window
}

// cursor is a batch being returned frame by frame.
type cursor struct {
	b    *batch
	next int
}

// reorderWindow is how long Next holds a frame back so that frames of
// other sockets captured earlier, still on their way, can go first. It
// covers a socket's idle poll, the ring's block timeout and the batch
// age limit.
const reorderWindow = pollTimeout + batchMaxAge + 50*time.Millisecond

// StartLive opens the capture sockets and returns once every one of them
// has its filter in place, so a packet sent after it returns is captured.
func StartLive(ctx context.Context, opts LiveOptions) (*Live, error) {
	if opts.BlockTimeout <= 0 {
		opts.BlockTimeout = 10 * time.Millisecond
	}
	if len(opts.Namespaces) == 0 {
		own, err := NamespaceSpec("")
		if err != nil {
			return nil, err
		}
		opts.Namespaces = own
	}
	if _, err := filter.CompileLive(opts.Filter, int(LinkTypeEthernet), opts.snaplen()); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &Live{
		opts:       opts,
		pool:       newBatchPool(batchCount),
		stop:       make(chan struct{}),
		cancel:     cancel,
		namespaces: map[uint64]*nsCapture{},
		programs:   map[LinkType][]bpf.RawInstruction{},
		names:      map[string]map[int]string{},
	}
	for _, ns := range opts.Namespaces {
		if err := l.addNamespace(ctx, ns, true); err != nil {
			if opts.WatchNamespaces && ns.Path != "" && !exists(ns.Path) {
				// "all": a namespace deleted between the listing and the
				// opening is as if it had not been listed.
				l.opts.notify("network namespace %s vanished as capture started", ns.Name)
				continue
			}
			l.Close()
			return nil, err
		}
	}
	if opts.WatchNamespaces {
		l.wg.Add(1)
		go l.watchNamespaces(ctx)
	}
	return l, nil
}

// program returns the compiled filter for a link type, compiling it once.
func (l *Live) program(lt LinkType) ([]bpf.RawInstruction, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p, ok := l.programs[lt]; ok {
		return p, nil
	}
	p, err := filter.CompileLive(l.opts.Filter, int(lt), l.opts.snaplen())
	if err != nil {
		return nil, err
	}
	l.programs[lt] = p.Instructions()
	return l.programs[lt], nil
}

func (l *Live) addNamespace(ctx context.Context, ns Namespace, initial bool) error {
	nc, err := openNamespace(l, ns)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		nc.close()
		return nil
	}
	l.namespaces[ns.Inode] = nc
	l.mu.Unlock()
	if err := nc.start(ctx, initial); err != nil {
		l.mu.Lock()
		delete(l.namespaces, ns.Inode)
		l.mu.Unlock()
		l.retire(nc.close())
		return err
	}
	if !initial {
		l.opts.notify("capturing in network namespace %s", ns.Name)
	}
	return nil
}

// watchNamespaces looks for namespaces that appeared or vanished, once a
// second.
func (l *Live) watchNamespaces(ctx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		all, err := AllNamespaces()
		if err != nil {
			l.opts.notify("list network namespaces: %v", err)
			continue
		}
		present := map[uint64]bool{}
		for _, ns := range all {
			present[ns.Inode] = true
			l.mu.Lock()
			_, known := l.namespaces[ns.Inode]
			l.mu.Unlock()
			if !known {
				if err := l.addNamespace(ctx, ns, false); err != nil {
					l.opts.notify("network namespace %s: %v", ns.Name, err)
				}
			}
		}
		l.mu.Lock()
		var gone []*nsCapture
		for ino, nc := range l.namespaces {
			if !present[ino] {
				gone = append(gone, nc)
				delete(l.namespaces, ino)
			}
		}
		l.mu.Unlock()
		for _, nc := range gone {
			l.opts.notify("network namespace %s vanished; capture elsewhere goes on", nc.ns.Name)
			l.retire(nc.close())
		}
	}
}

func (l *Live) retire(socks []*socket) {
	l.mu.Lock()
	l.retired = append(l.retired, socks...)
	l.mu.Unlock()
}

// Next returns the next captured frame, in time order across all sockets
// (frames are held back up to reorderWindow for that). Its Data is valid
// until the next call. After Stop (or the context's end) it returns the
// frames already captured, then io.EOF.
func (l *Live) Next() (Frame, error) {
	l.release()
	for {
		l.collect()
		stopped := l.isStopped()
		if c := l.earliest(); c != nil {
			f := c.b.frames[c.next]
			if stopped || l.old(f.Time) {
				c.next++
				return f, nil
			}
			// Wait for the frame to age, or for more to arrive.
			wait := time.Until(f.Time.Add(reorderWindow))
			l.wait(wait)
			continue
		}
		if stopped {
			return Frame{}, io.EOF
		}
		l.wait(-1)
	}
}

// collect takes every batch that is ready, without waiting.
func (l *Live) collect() {
	for {
		select {
		case b := <-l.pool.full:
			l.pending = append(l.pending, &cursor{b: b})
		default:
			return
		}
	}
}

// wait blocks until a batch arrives, the capture stops or d passes
// (d < 0: no limit).
func (l *Live) wait(d time.Duration) {
	var timeout <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case b := <-l.pool.full:
		l.pending = append(l.pending, &cursor{b: b})
	case <-l.stop:
	case <-timeout:
	}
	l.now = time.Time{}
}

func (l *Live) isStopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// earliest returns the pending batch whose next frame is the oldest.
func (l *Live) earliest() *cursor {
	var best *cursor
	for _, c := range l.pending {
		if best == nil || c.b.frames[c.next].Time.Before(best.b.frames[best.next].Time) {
			best = c
		}
	}
	return best
}

// old says whether a frame is past the reorder window.
func (l *Live) old(t time.Time) bool {
	if !l.now.IsZero() && t.Add(reorderWindow).Before(l.now) {
		return true
	}
	l.now = time.Now()
	return t.Add(reorderWindow).Before(l.now)
}

// release gives fully returned batches back to the pool. It runs at the
// start of Next, when the Data of the frame returned before is no longer
// in use.
func (l *Live) release() {
	kept := l.pending[:0]
	for _, c := range l.pending {
		if c.next >= len(c.b.frames) {
			l.pool.put(c.b)
			continue
		}
		kept = append(kept, c)
	}
	l.pending = kept
}

// Stop ends the capture: every socket is closed and what they captured
// stays readable through Next until io.EOF.
func (l *Live) Stop() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	nss := make([]*nsCapture, 0, len(l.namespaces))
	for _, nc := range l.namespaces {
		nss = append(nss, nc)
	}
	l.mu.Unlock()
	l.cancel()
	for _, nc := range nss {
		l.retire(nc.close())
	}
	l.wg.Wait()
	close(l.stop)
}

// Inject adds frames from another live source (NFLOG groups, say) to what
// Next returns, merged in time order with the captured frames; frames
// must be in time order themselves. Their Data is copied. Like a capture
// socket, Inject never waits: it returns how many frames it took, fewer
// than len(frames) when the consumer is behind (no free batch), which the
// caller counts as shed. After Stop it takes nothing and says so.
func (l *Live) Inject(frames []Frame) (taken int, stopped bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, true
	}
	for taken < len(frames) {
		b := l.pool.get()
		if b == nil {
			return taken, false
		}
		for taken < len(frames) && (len(b.frames) == 0 || b.fits(len(frames[taken].Data))) {
			f := frames[taken]
			if len(f.Data) > cap(b.arena) {
				f.Data = f.Data[:cap(b.arena)] // larger than any snap length
			}
			b.add(f)
			taken++
		}
		l.pool.full <- b
	}
	return taken, false
}

// Close stops the capture and releases everything.
func (l *Live) Close() error {
	l.Stop()
	return nil
}

// InterfaceStats are the counters of one interface.
type InterfaceStats struct {
	Netns, Iface   string
	LinkType       LinkType
	Received       uint64 // frames captured
	KernelDrops    uint64 // frames the kernel ring had no room for
	HooktraceDrops uint64 // frames hooktrace shed because its consumer lagged
	Open           bool   // being captured now
}

// Stats returns the counters of every interface captured so far, sorted by
// namespace and interface.
func (l *Live) Stats() []InterfaceStats {
	l.mu.Lock()
	socks := append([]*socket(nil), l.retired...)
	nretired := len(socks)
	for _, nc := range l.namespaces {
		socks = append(socks, nc.sockets()...)
	}
	l.mu.Unlock()
	byIface := map[[2]string]*InterfaceStats{}
	for i, s := range socks {
		k := [2]string{s.iface.ns.ns.Name, s.iface.name}
		st := byIface[k]
		if st == nil {
			st = &InterfaceStats{Netns: k[0], Iface: k[1], LinkType: s.iface.linkType}
			byIface[k] = st
		}
		st.Received += s.counters.received.Load()
		st.KernelDrops += s.counters.kernelDrops.Load()
		st.HooktraceDrops += s.counters.hooktraceDrops.Load()
		st.Open = st.Open || (i >= nretired && s.iface.ready.Load())
	}
	res := make([]InterfaceStats, 0, len(byIface))
	for _, st := range byIface {
		res = append(res, *st)
	}
	sort.Slice(res, func(i, j int) bool {
		if res[i].Netns != res[j].Netns {
			return res[i].Netns < res[j].Netns
		}
		return res[i].Iface < res[j].Iface
	})
	return res
}

// ErrNoInterface reports an interface that was asked for and is absent.
var ErrNoInterface = errors.New("no such interface")

// InterfaceName returns the name of the interface with this index in a
// captured namespace, or "" when no interface of that index was captured.
// An interface that was deleted, and every interface after Stop, keeps
// the name it was captured under (the last one, if its index was reused).
func (l *Live) InterfaceName(netns string, index int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.names[netns][index]
}

// named keeps the name of an interface being captured.
func (l *Live) named(netns string, index int, name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.names[netns]
	if m == nil {
		m = map[int]string{}
		l.names[netns] = m
	}
	m[index] = name
}

// exists says whether path names a file (a namespace's bind mount).
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
