package decode

import (
	"slices"
	"time"
)

// The builder finds idle journeys through a timer wheel: each open
// journey is filed under the slot (a 32nd of the window) its latest
// record's time falls in, and filed again when that time moves to a
// later slot; the old filing is then stale and skipped. A scan looks only
// at the slots the window has passed, not at every open journey.

// idleSlots is how many slots a window has; idle journeys are also
// looked for this often.
const idleSlots = 32

// idleSlot is one slot of the wheel: the journeys whose latest record
// fell in [idx, idx+1) slot widths.
type idleSlot struct {
	idx int64
	js  []jref
}

// slotOf is the slot a time falls in.
func (b *JourneyBuilder) slotOf(t time.Time) int64 {
	w := int64(b.opt.Window / idleSlots)
	if w <= 0 {
		w = 1
	}
	n := t.UnixNano()
	if n < 0 {
		return (n - w + 1) / w // floor
	}
	return n / w
}

// touch files a journey under the slot of its latest record, unless it
// is filed there already.
func (b *JourneyBuilder) touch(js *jstate) {
	idx := b.slotOf(js.last)
	if js.filed && js.slot == idx {
		return
	}
	js.filed, js.slot = true, idx
	// Almost always the newest slot; a record older than the rest goes
	// further back.
	i := len(b.wheel)
	for i > 0 && b.wheel[i-1].idx > idx {
		i--
	}
	if i > 0 && b.wheel[i-1].idx == idx {
		b.wheel[i-1].js = append(b.wheel[i-1].js, jref{js, js.id})
		return
	}
	var list []jref
	if n := len(b.spareSlots); n > 0 {
		list, b.spareSlots = b.spareSlots[n-1], b.spareSlots[:n-1]
	}
	b.wheel = slices.Insert(b.wheel, i, idleSlot{idx: idx, js: append(list, jref{js, js.id})})
}

// closeIdle closes the journeys idle for longer than the window, in the
// order they started (by id), and forgets early drops as old.
func (b *JourneyBuilder) closeIdle() {
	b.scanned = b.now
	for fp, early := range b.early {
		if b.now.Sub(early[len(early)-1].at) > b.opt.Window {
			delete(b.early, fp)
			b.stats.Unmatched += uint64(len(early))
		}
	}
	// A journey is idle when its latest record is older than cutoff. The
	// slots wholly before it hold only idle journeys (and stale
	// filings); the slot it falls in, some of each.
	cutoff := b.now.Add(-b.opt.Window)
	last := b.slotOf(cutoff)
	idle := b.idle[:0]
	done := 0
	for done < len(b.wheel) && b.wheel[done].idx <= last {
		s := &b.wheel[done]
		keep := s.js[:0]
		for _, r := range s.js {
			js := r.js
			if !r.open() || js.slot != s.idx {
				continue // closed, or filed under a later slot since
			}
			if b.now.Sub(js.last) > b.opt.Window {
				idle = append(idle, js)
				js.filed = false
			} else {
				keep = append(keep, r)
			}
		}
		clear(s.js[len(keep):])
		s.js = keep
		if len(keep) > 0 {
			break // the slot the cutoff falls in: the rest wait
		}
		done++
		if len(b.spareSlots) < idleSlots {
			b.spareSlots = append(b.spareSlots, s.js[:0]) // emptied: a later slot's list
		}
	}
	clear(b.wheel[:done])
	b.wheel = b.wheel[done:]
	slices.SortFunc(idle, func(x, y *jstate) int {
		if x.id < y.id {
			return -1
		}
		return 1
	})
	for _, js := range idle {
		b.close(js)
	}
	clear(idle)
	b.idle = idle[:0]
}
