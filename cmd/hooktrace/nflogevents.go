package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// logBufferBytes is the receive buffer of each NFLOG socket: a message
// carries a whole packet, so bursts need room.
const logBufferBytes = 64 << 20

// Messages are handed to the capture in batches of up to maxLogBatch,
// at most maxLogBatchAge after the first of them arrived: one batch per
// kernel datagram would exhaust the capture's batches under a flood.
const (
	maxLogBatch    = 2048
	maxLogBatchAge = 20 * time.Millisecond
)

// logSources feeds NFLOG groups into a live capture: each message becomes
// a LINKTYPE_NFLOG frame on the pseudo-interface "nflog:N" of its
// namespace, as `tcpdump -i nflog:N` would record it.
type logSources struct {
	sources []*logSource
	wg      sync.WaitGroup
}

// logSource is one group in one namespace.
type logSource struct {
	l        *nflog.LogListener
	iface    string
	received atomic.Uint64 // messages handed to the capture
	shed     atomic.Uint64 // messages the capture had no room for
	closed   atomic.Bool
}

// listenLogGroups binds every group in every namespace. A failure closes
// what was bound and is returned; a smaller receive buffer than asked is
// a warning.
func listenLogGroups(refs []nflog.NetnsRef, groups []uint16, warn func(error)) (*logSources, error) {
	s := &logSources{}
	for _, ref := range refs {
		for _, g := range groups {
			l, err := nflog.ListenLog(ref.Name, ref.Path, g, logBufferBytes)
			var small *nflog.TraceBufferError
			switch {
			case errors.As(err, &small) && l != nil:
				warn(err)
			case err != nil:
				s.close()
				return nil, err
			}
			s.sources = append(s.sources, &logSource{l: l, iface: "nflog:" + strconv.Itoa(int(g))})
		}
	}
	return s, nil
}

// bindTraceGroup binds, in every namespace, the first NFLOG group from
// nflog.DefaultLogGroup on that no other process holds in any of them:
// the group hooktrace's own log rules then use.
func bindTraceGroup(refs []nflog.NetnsRef, warn func(error)) (*logSources, uint16, error) {
	const tries = 32
	for g := uint16(nflog.DefaultLogGroup); g < nflog.DefaultLogGroup+tries; g++ {
		s, err := listenLogGroups(refs, []uint16{g}, warn)
		var busy *nflog.LogGroupBusyError
		if errors.As(err, &busy) {
			continue
		}
		return s, g, err
	}
	return nil, 0, fmt.Errorf("find a free NFLOG group for hooktrace's log rules: groups %d to %d are all bound by other processes", nflog.DefaultLogGroup, nflog.DefaultLogGroup+tries-1)
}

// merge adds other's groups to s.
func (s *logSources) merge(other *logSources) {
	if other != nil {
		s.sources = append(s.sources, other.sources...)
	}
}

// feed starts one reader per group that hands its messages to live; warn
// tells of a group that stops working.
func (s *logSources) feed(live *capture.Live, warn func(error)) {
	for _, src := range s.sources {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			src.read(live, warn)
		}()
	}
}

// read hands messages to live in batches: all that one receive brought,
// in time order.
func (src *logSource) read(live *capture.Live, warn func(error)) {
	var batch []capture.Frame
	var due time.Time // when the batch must be handed on
	for {
		m, err := src.l.NextBefore(due)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			src.inject(live, batch)
			clear(batch)
			batch, due = batch[:0], time.Time{}
			continue
		}
		if err != nil {
			src.closed.Store(true)
			src.inject(live, batch)
			if !errors.Is(err, net.ErrClosed) {
				warn(fmt.Errorf("%w; no more messages from this group", err))
			}
			return
		}
		if len(batch) == 0 {
			due = time.Now().Add(maxLogBatchAge)
		}
		batch = append(batch, capture.Frame{
			Time: m.Time, Netns: m.Netns, Iface: src.iface,
			LinkType: capture.LinkTypeNFLOG, Len: len(m.Data), Data: m.Data,
		})
		if len(batch) < maxLogBatch {
			continue
		}
		src.inject(live, batch)
		clear(batch)
		batch, due = batch[:0], time.Time{}
	}
}

// inject hands a batch to live in time order. Messages that come after the
// capture stopped are not counted: the run was over before they arrived.
func (src *logSource) inject(live *capture.Live, batch []capture.Frame) {
	if len(batch) == 0 {
		return
	}
	sort.SliceStable(batch, func(i, j int) bool { return batch[i].Time.Before(batch[j].Time) })
	if taken, stopped := live.Inject(batch); !stopped {
		src.received.Add(uint64(len(batch)))
		src.shed.Add(uint64(len(batch) - taken))
	}
}

// close stops every reader once it has read what the kernel queued (the
// capture must still take it: call before the capture stops).
func (s *logSources) close() {
	if s == nil {
		return
	}
	for _, src := range s.sources {
		src.l.Stop()
	}
	s.wg.Wait()
	for _, src := range s.sources {
		src.l.Close()
	}
}

// stats returns one entry per group and namespace, in the capture's
// shape. The kernel's drops are the messages the group's numbering shows
// missing (at least one per ENOBUFS report); hooktrace's are those the
// capture had no room for and those still queued when a stop's drain
// ran out.
func (s *logSources) stats() []capture.InterfaceStats {
	if s == nil {
		return nil
	}
	var out []capture.InterfaceStats
	for _, src := range s.sources {
		out = append(out, capture.InterfaceStats{
			Netns: src.l.Netns(), Iface: src.iface, LinkType: capture.LinkTypeNFLOG,
			Received:       src.received.Load() + src.l.Unread(),
			KernelDrops:    max(src.l.Missed(), src.l.Lost()),
			HooktraceDrops: src.shed.Load() + src.l.Unread(),
			Open:           !src.closed.Load(),
		})
	}
	return out
}

// parseGroups reads a comma-separated list of NFLOG groups.
func parseGroups(spec string) ([]uint16, error) {
	var groups []uint16
	for _, p := range splitComma(spec) {
		g, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("NFLOG group %q: want a number from 0 to 65535", p)
		}
		groups = append(groups, uint16(g))
	}
	return groups, nil
}
