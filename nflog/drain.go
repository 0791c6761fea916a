package nflog

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A listener that is stopped first reads what the kernel has already
// queued on its socket: it ends once the socket has been idle for
// drainIdle, or drainMax after Stop at the latest, so events of packets
// in flight when hooktrace stops are not lost.
const (
	drainIdle = 100 * time.Millisecond
	drainMax  = 10 * time.Second
)

// discardMax bounds how long a listener that drained for drainMax spends
// counting the messages it then leaves unread.
const discardMax = time.Second

// readDeadliner is the part of a netlink socket a drain needs.
type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

// drain tracks a listener's stop. The zero value is a listener running.
type drain struct {
	mu       sync.Mutex
	stopping bool
	stopAt   time.Time
	idleTill time.Time // end of the current idle allowance
}

// stop starts draining and wakes a reader blocked on conn.
func (d *drain) stop(conn readDeadliner) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping {
		return
	}
	now := time.Now()
	d.stopping, d.stopAt = true, now
	d.idleTill = now.Add(drainIdle)
	conn.SetReadDeadline(d.idleTill)
}

// arm sets conn's read deadline before a read: want (zero: none), or,
// when stopping, drainIdle from now (within drainMax of the stop),
// whichever is earlier. Idle time is counted while waiting only, so a
// slow reader still gets everything queued, up to drainMax.
func (d *drain) arm(conn readDeadliner, want time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping {
		d.idleTill = time.Now().Add(drainIdle)
		if last := d.stopAt.Add(drainMax); d.idleTill.After(last) {
			d.idleTill = last
		}
		if want.IsZero() || d.idleTill.Before(want) {
			want = d.idleTill
		}
	}
	conn.SetReadDeadline(want)
}

// over says whether a read that timed out ends the listener: it is
// stopping and its drain deadline has passed.
func (d *drain) over() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopping && !time.Now().Before(d.idleTill)
}

// discardQueued reads, without decoding, what is still queued on conn
// and returns how many messages of type typ it held (typ 0: any). It
// stops when the queue is empty or after discardMax.
func discardQueued(conn syscall.Conn, typ uint16) uint64 {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0
	}
	buf := make([]byte, 256<<10)
	var n uint64
	end := time.Now().Add(discardMax)
	for time.Now().Before(end) {
		var got int
		var rerr error
		if err := rc.Control(func(fd uintptr) {
			got, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		}); err != nil || rerr == unix.EAGAIN || rerr == unix.EWOULDBLOCK {
			break
		}
		if rerr != nil {
			continue // ENOBUFS: the overrun is counted by the listener's reader
		}
		for _, m := range splitMessages(buf[:got]) {
			if typ == 0 || uint16(m.Header.Type) == typ {
				n++
			}
		}
	}
	return n
}

// isTimeout says whether a read failed on its deadline.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
