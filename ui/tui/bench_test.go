package tui

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/hooktrace/hooktrace/capture"
)

// listModel is a model holding n copies of the packets of a capture.
func listModel(b *testing.B, n int) *Model {
	src, err := capture.Open("../../fixtures/vxlan.pcap")
	if err != nil {
		b.Fatal(err)
	}
	var frames []capture.Frame
	for {
		f, err := src.Next()
		if err != nil {
			break
		}
		f.Data = append([]byte(nil), f.Data...)
		frames = append(frames, f)
	}
	src.Close()
	m := newTestModel(120, 40, nil)
	for i := range n {
		f := frames[i%len(frames)]
		f.Time = f.Time.Add(time.Duration(i) * time.Microsecond)
		m.st.add(f, 42)
	}
	m.refresh()
	return m
}

// BenchmarkRenderListBottom renders a screen at the bottom of a list of a
// million packets, moving by one each time so no row is cached: the cost
// is that of the rows on screen, not of the list.
func BenchmarkRenderListBottom(b *testing.B) {
	for _, n := range []int{10, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			m := listModel(b, n)
			keys(m, "end")
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				m.cols = nil
				if i%2 == 0 {
					m.Update(keyMsg("up"))
				} else {
					m.Update(keyMsg("down"))
				}
				_ = m.View()
			}
		})
	}
}

// BenchmarkFilterMillion applies a tcpdump display filter to a million
// loaded packets.
func BenchmarkFilterMillion(b *testing.B) {
	m := listModel(b, 1_000_000)
	f, err := compileFilter("tcp[13] & 2 != 0 or greater 120")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		m.setFilter(f)
	}
}

// BenchmarkFeed measures loading: each frame copied, decoded once and
// given to the journey builder, in batches.
func BenchmarkFeed(b *testing.B) {
	m := listModel(b, 100_000)
	b.ResetTimer()
	for b.Loop() {
		ch := make(chan Batch, 16)
		go Feed(context.Background(), &rowSource{st: m.st}, ch, FeedOptions{})
		for bt := range ch {
			if bt.Done {
				break
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/packet")
}

// rowSource replays a store's rows.
type rowSource struct {
	st *store
	i  int
}

func (r *rowSource) Next() (capture.Frame, error) {
	if r.i >= len(r.st.rows) {
		return capture.Frame{}, io.EOF
	}
	r.i++
	return r.st.frame(r.i - 1), nil
}

func (r *rowSource) Close() error { return nil }

var _ tea.Model = (*Model)(nil)
