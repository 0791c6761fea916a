package nflog

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// NFNLGRP_NFTRACE: the multicast group of nf_tables trace events.
const traceGroup = 9

// traceMessageBuffer is the receive buffer for one datagram. A trace
// message is at most about 1 KiB (names, three header snapshots); the
// kernel sends each in its own datagram.
const traceMessageBuffer = 64 << 10

// TraceListener receives the nf_tables trace events of one network
// namespace. Next is for one goroutine; Close and Lost may be called from
// any.
type TraceListener struct {
	name    string
	conn    *netlink.Conn
	pending []netlink.Message // received, not yet returned by Next
	recvAt  time.Time         // when pending was received
	lost    atomic.Uint64
	events  atomic.Uint64 // events returned by Next
	closed  atomic.Bool
	drain   drain
	unread  atomic.Uint64 // events still queued when a stop's drain ran out
}

// ListenTraces opens a NETLINK_NETFILTER socket in the namespace at nsPath
// ("" for hooktrace's own), joins NFNLGRP_NFTRACE and sizes its receive
// buffer to bufBytes (0 keeps the default). name is what Trace.Netns is
// set to.
//
// The buffer is set with SO_RCVBUFFORCE. If the kernel refuses that (no
// CAP_NET_ADMIN over the initial namespace), ListenTraces falls back to
// SO_RCVBUF, which net.core.rmem_max caps, and returns the working
// listener together with a *TraceBufferError worth showing as a notice.
// Any other error comes with a nil listener.
func ListenTraces(name, nsPath string, bufBytes int) (*TraceListener, error) {
	conn, err := dialTraceConn(nsPath)
	if err != nil {
		return nil, traceErr("open netlink socket", name, err)
	}
	l := &TraceListener{name: name, conn: conn}
	bufErr := setReceiveBuffer(conn, name, bufBytes)
	if bufErr != nil && !errors.As(bufErr, new(*TraceBufferError)) {
		conn.Close()
		return nil, bufErr
	}
	if err := conn.JoinGroup(traceGroup); err != nil {
		conn.Close()
		return nil, traceErr("join nf_tables trace group", name, err)
	}
	return l, bufErr
}

// dialTraceConn opens the socket inside the namespace at nsPath; the
// namespace file is only needed until the socket exists.
func dialTraceConn(nsPath string) (*netlink.Conn, error) {
	cfg := &netlink.Config{MessageBufferSize: traceMessageBuffer}
	if nsPath == "" {
		return netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	}
	f, err := os.Open(nsPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg.NetNS = int(f.Fd())
	return netlink.Dial(unix.NETLINK_NETFILTER, cfg)
}

// TraceBufferError reports that the receive buffer could not be forced to
// the size asked for: the listener works, with a smaller buffer, so a
// flood is more likely to lose events.
type TraceBufferError struct {
	Netns string
	Want  int   // bytes asked for
	Got   int   // bytes the kernel reports (it doubles what it grants)
	Err   error // why SO_RCVBUFFORCE was refused
}

// Error says what was refused and what buffer the listener has instead.
func (e *TraceBufferError) Error() string {
	return fmt.Sprintf("force nf_tables trace receive buffer to %d bytes in netns %s: %v; using SO_RCVBUF, now %d bytes (capped by net.core.rmem_max): events are more likely to be lost",
		e.Want, e.Netns, e.Err, e.Got)
}

// Unwrap returns why SO_RCVBUFFORCE was refused.
func (e *TraceBufferError) Unwrap() error { return e.Err }

// setReceiveBuffer sets a netlink socket's receive buffer with
// SO_RCVBUFFORCE, or SO_RCVBUF when that is refused (no CAP_NET_ADMIN
// over the initial namespace): then it returns a *TraceBufferError with
// the working socket, worth a notice. bufBytes <= 0 keeps the default.
// name is the namespace, for errors.
func setReceiveBuffer(conn *netlink.Conn, name string, bufBytes int) error {
	if bufBytes <= 0 {
		return nil
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return traceErr("reach netlink socket", name, err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bufBytes)
	}); err != nil {
		return traceErr("reach netlink socket", name, err)
	}
	if serr == nil {
		return nil
	}
	if !errors.Is(serr, unix.EPERM) {
		return traceErr(fmt.Sprintf("set receive buffer to %d bytes", bufBytes), name, serr)
	}
	if err := conn.SetReadBuffer(bufBytes); err != nil {
		return traceErr(fmt.Sprintf("set receive buffer to %d bytes", bufBytes), name, err)
	}
	got, _ := conn.ReadBuffer()
	return &TraceBufferError{Netns: name, Want: bufBytes, Got: got, Err: os.NewSyscallError("setsockopt SO_RCVBUFFORCE", serr)}
}

// Next blocks for the next event and returns it with Netns and Time set.
// After Close it returns an error wrapping net.ErrClosed. ENOBUFS (the
// kernel had to drop events) is not returned: it is counted in Lost and
// Next goes on. A message that does not parse is returned as an error;
// the listener stays usable.
func (l *TraceListener) Next() (Trace, error) {
	for {
		for len(l.pending) > 0 {
			m := l.pending[0]
			l.pending = l.pending[1:]
			if !IsTraceMessage(uint16(m.Header.Type)) {
				continue
			}
			t, err := ParseTrace(m.Data)
			if err != nil {
				return Trace{}, fmt.Errorf("netns %s: %w", l.name, err)
			}
			t.Netns, t.Time = l.name, l.recvAt
			l.events.Add(1)
			return t, nil
		}
		if err := l.receive(); err != nil {
			return Trace{}, err
		}
	}
}

// receive waits for the next datagram and queues its messages. After
// Stop, it returns net.ErrClosed once the socket has drained.
func (l *TraceListener) receive() error {
	l.drain.arm(l.conn, time.Time{})
	msgs, err := l.conn.Receive()
	switch {
	case l.closed.Load():
		return fmt.Errorf("receive nf_tables traces in netns %s: %w", l.name, net.ErrClosed)
	case isTimeout(err):
		if l.drain.over() {
			l.unread.Add(discardQueued(l.conn, traceMsgType))
			l.Close()
			return fmt.Errorf("receive nf_tables traces in netns %s: %w", l.name, net.ErrClosed)
		}
		return nil
	case errors.Is(err, unix.ENOBUFS):
		l.lost.Add(1)
		return nil
	case err != nil:
		return traceErr("receive nf_tables traces", l.name, err)
	}
	l.pending, l.recvAt = msgs, time.Now()
	return nil
}

// Stop ends the listener after what the kernel already queued is read:
// Next returns those events, then an error wrapping net.ErrClosed. The
// socket is closed then; Close may still be called.
func (l *TraceListener) Stop() { l.drain.stop(l.conn) }

// Lost returns how many times the socket reported ENOBUFS; each means
// that the kernel dropped at least one event.
func (l *TraceListener) Lost() uint64 { return l.lost.Load() }

// Unread returns how many events were still queued on the socket when a
// Stop had drained for its longest: received by the kernel's count, never
// shown.
func (l *TraceListener) Unread() uint64 { return l.unread.Load() }

// Received returns how many events Next has returned.
func (l *TraceListener) Received() uint64 { return l.events.Load() }

// Netns returns the namespace name the listener was opened with.
func (l *TraceListener) Netns() string { return l.name }

// Close closes the socket and unblocks Next.
func (l *TraceListener) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	if err := l.conn.Close(); err != nil {
		return traceErr("close nf_tables trace socket", l.name, err)
	}
	return nil
}

// traceErr says what was being done, and in which namespace; a refusal
// names the capability hooktrace lacks.
func traceErr(doing, netns string, err error) error {
	if netns == "" {
		netns = "(hooktrace's own)"
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%s in netns %s: %w (hooktrace needs CAP_NET_ADMIN, and CAP_SYS_ADMIN to enter another namespace: run it as root or grant them with setcap)", doing, netns, err)
	}
	return fmt.Errorf("%s in netns %s: %w", doing, netns, err)
}
