package tui

import (
	"context"
	"io"
	"testing"
	"testing/synctest"

	"github.com/hooktrace/hooktrace/capture"
)

// gatedSource gives one frame, then waits for release before it ends.
type gatedSource struct {
	frame   capture.Frame
	n       int
	release chan struct{}
}

func (g *gatedSource) Next() (capture.Frame, error) {
	if g.n++; g.n == 1 {
		return g.frame, nil
	}
	<-g.release
	return capture.Frame{}, io.EOF
}

func (g *gatedSource) Close() error { return nil }

// TestFeedRecordsWaitsForIndexer: FeedRecords stopped by its context
// returns only once its indexer stopped reading, so that whoever opened
// the index may close it then.
func TestFeedRecordsWaitsForIndexer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := ether(ipv4("10.77.0.1", "10.77.0.2", 100, 6, tcpSYN(51234, 2222, 1000)))
		f := capture.Frame{Time: at(1), Netns: "a", Iface: "e0", LinkType: capture.LinkTypeEthernet, Len: len(data), Data: data}
		index := &gatedSource{frame: f, release: make(chan struct{})}
		src := &recordList{recs: []Record{{Frame: &f}}}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := make(chan Batch, 1) // nobody reads: the UI was quit
		returned := make(chan struct{})
		go func() {
			defer close(returned)
			FeedRecords(ctx, src, out, FeedOptions{Index: index, Offset: func() int64 { return 0 }, MaxFrames: 1})
		}()
		synctest.Wait() // the indexer waits in Next, FeedRecords to send
		cancel()
		synctest.Wait()
		select {
		case <-returned:
			t.Error("FeedRecords returned while its indexer was still reading the index")
		default:
		}
		close(index.release)
		<-returned
	})
}
