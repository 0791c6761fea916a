package tui

import (
	"context"

	"github.com/hooktrace/hooktrace/capture"
)

// Feed is FeedRecords over the frames of src, for tests of frames alone.
func Feed(ctx context.Context, src capture.Source, out chan<- Batch, opt FeedOptions) {
	FeedRecords(ctx, &frameRecords{src: src}, out, opt)
}

// frameRecords delivers the frames of a capture.Source as records.
type frameRecords struct {
	src capture.Source
	f   capture.Frame
}

func (s *frameRecords) NextRecord() (Record, error) {
	f, err := s.src.Next()
	if err != nil {
		return Record{}, err
	}
	s.f = f
	return Record{Frame: &s.f}, nil
}
