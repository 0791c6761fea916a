package capture

import "sync/atomic"

// batch carries frames from one socket reader to the consumer: the frames'
// bytes are copied into one arena, so the ring slot is released at once
// and no allocation happens per packet.
type batch struct {
	frames []Frame
	arena  []byte
}

const (
	batchArena  = 256 << 10 // bytes of packet data per batch
	batchFrames = 2048      // frames per batch at most
)

func newBatch() *batch {
	return &batch{frames: make([]Frame, 0, batchFrames), arena: make([]byte, 0, batchArena)}
}

// fits says whether a frame of n bytes can be added.
func (b *batch) fits(n int) bool {
	return len(b.frames) < cap(b.frames) && len(b.arena)+n <= cap(b.arena)
}

// add copies f into the batch.
func (b *batch) add(f Frame) {
	start := len(b.arena)
	b.arena = append(b.arena, f.Data...)
	f.Data = b.arena[start:len(b.arena):len(b.arena)]
	b.frames = append(b.frames, f)
}

func (b *batch) reset() {
	b.frames = b.frames[:0]
	b.arena = b.arena[:0]
}

// batchPool bounds the memory between the sockets and the consumer. A
// reader that finds no free batch drops the packet and counts it: the
// capture never waits for a slow consumer.
type batchPool struct {
	free    chan *batch
	full    chan *batch
	created atomic.Int32 // batches allocated so far, at most cap(free)
}

func newBatchPool(n int) *batchPool {
	return &batchPool{free: make(chan *batch, n), full: make(chan *batch, n)}
}

// get returns a free batch, allocating up to the pool's bound, or nil
// when all are in use.
func (p *batchPool) get() *batch {
	select {
	case b := <-p.free:
		return b
	default:
	}
	if p.created.Add(1) <= int32(cap(p.free)) {
		return newBatch()
	}
	p.created.Add(-1)
	return nil
}

// put returns a consumed batch.
func (p *batchPool) put(b *batch) {
	b.reset()
	p.free <- b
}
