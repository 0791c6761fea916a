package main

import (
	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/ui/tui"
)

// startPlayback paces a replay in the terminal UI at o.speed (--speed;
// 0 loads as fast as possible and returns no Playback). It wraps the
// reader that lists the rows: the index when there is one (the journeys'
// reader then waits for it), else src, whose pacing reader it returns for
// the journeys. Batches carry one frame each, so that a frame is listed
// as soon as it is due.
func startPlayback(o *options, feedOpt *tui.FeedOptions, src capture.Source) (*tui.Playback, capture.Source) {
	if o.speed == 0 {
		return nil, src
	}
	feedOpt.MaxFrames = 1
	if feedOpt.Index != nil {
		pb := tui.NewPlayback(feedOpt.Index, o.speed, nil)
		feedOpt.Index = pb
		return pb, src
	}
	pb := tui.NewPlayback(src, o.speed, nil)
	return pb, pb
}
