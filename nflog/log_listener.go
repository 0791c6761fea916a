package nflog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Message types and attributes of nfnetlink_log
// (<linux/netfilter/nfnetlink_log.h>). hooktrace speaks this protocol
// itself rather than through go-nflog v2.3.0, which drops the messages of
// the netdev and arp families and hides each message's family, and whose
// parsed form would lose the record a LINKTYPE_NFLOG capture keeps.
const (
	nfnlSubsysULOG  = 4
	nfulnlMsgPacket = nfnlSubsysULOG<<8 | 0
	nfulnlMsgConfig = nfnlSubsysULOG<<8 | 1

	nfulaCfgCmd      = 1
	nfulaCfgNLBufSiz = 3
	nfulaCfgTimeout  = 4
	nfulaCfgQThresh  = 5
	nfulaCfgFlags    = 6

	nfulnlCfgCmdBind = 1
	nfulnlCfgFSeq    = 1 // number each message of the group

	nfulaTimestamp = 3
	nfulaSeq       = 12
)

// Batching asked of the kernel: it sends a datagram when logQueueThreshold
// messages are queued or after logFlushTimeout, whichever comes first, in
// datagrams of at most logKernelBuffer bytes.
const (
	logQueueThreshold = 64
	logFlushTimeout   = 1 // in 1/100 s
	logKernelBuffer   = 64 << 10
)

// LogMessage is one NFLOG message: a packet that a `log group N` (nft) or
// `-j NFLOG --nflog-group N` (iptables) rule sent to hooktrace.
type LogMessage struct {
	Netns string    // the namespace it came from, set by the listener
	Group uint16    // the NFLOG group
	Time  time.Time // the packet's kernel timestamp, else when it was received
	// Data is the message after the netlink header: the nfgenmsg and the
	// NFULA attributes, which is exactly a LINKTYPE_NFLOG record (as
	// `tcpdump -i nflog:N` writes it). It is not shared with the listener.
	Data []byte
}

// LogListener receives the messages of one NFLOG group in one network
// namespace. Next is for one goroutine; Close and the loss counters may
// be called from any.
type LogListener struct {
	name    string
	group   uint16
	conn    *netlink.Conn
	pending []LogMessage // received, not yet returned by Next
	buf     []byte       // one datagram
	lastSeq uint32
	haveSeq bool
	lost    atomic.Uint64 // ENOBUFS reports
	missed  atomic.Uint64 // messages skipped in the group's numbering
	closed  atomic.Bool
	drain   drain
	unread  atomic.Uint64 // messages still queued when a stop's drain ran out
}

// ListenLog binds NFLOG group in the namespace at nsPath ("" for
// hooktrace's own), with full packet copies, and sizes the socket's
// receive buffer to bufBytes (0 keeps the default; a refused
// SO_RCVBUFFORCE falls back as ListenTraces does, returning the working
// listener with a *TraceBufferError). name is what LogMessage.Netns is set
// to. A group another process holds (ulogd, say) is a *LogGroupBusyError.
func ListenLog(name, nsPath string, group uint16, bufBytes int) (*LogListener, error) {
	conn, err := dialTraceConn(nsPath)
	if err != nil {
		return nil, traceErr("open netlink socket", name, err)
	}
	l := &LogListener{name: name, group: group, conn: conn}
	bufErr := setReceiveBuffer(conn, name, bufBytes)
	if bufErr != nil && !errors.As(bufErr, new(*TraceBufferError)) {
		conn.Close()
		return nil, bufErr
	}
	if err := l.bind(); err != nil {
		conn.Close()
		return nil, err
	}
	return l, bufErr
}

// bind sends one config message (bind, batching, numbering) and waits for
// its acknowledgement. Messages of the group that arrive first are kept.
func (l *LogListener) bind() error {
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	ae.Uint8(nfulaCfgCmd, nfulnlCfgCmdBind)
	ae.Uint32(nfulaCfgNLBufSiz, logKernelBuffer)
	ae.Uint32(nfulaCfgTimeout, logFlushTimeout)
	ae.Uint32(nfulaCfgQThresh, logQueueThreshold)
	ae.Uint16(nfulaCfgFlags, nfulnlCfgFSeq)
	attrs, err := ae.Encode()
	if err != nil {
		return fmt.Errorf("encode NFLOG group %d configuration: %w", l.group, err)
	}
	hdr := []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, byte(l.group >> 8), byte(l.group)}
	req, err := l.conn.Send(netlink.Message{
		Header: netlink.Header{Type: nfulnlMsgConfig, Flags: netlink.Request | netlink.Acknowledge},
		Data:   append(hdr, attrs...),
	})
	if err != nil {
		return traceErr(fmt.Sprintf("bind NFLOG group %d", l.group), l.name, err)
	}
	var early []netlink.Message
	defer func() { l.queue(early, time.Now()) }()
	for {
		msgs, err := l.conn.Receive()
		if err != nil {
			return l.bindErr(err)
		}
		for _, m := range msgs {
			if m.Header.Type == netlink.Error && m.Header.Sequence == req.Header.Sequence {
				return nil
			}
			early = append(early, m)
		}
	}
}

// LogGroupBusyError says that another process holds an NFLOG group.
type LogGroupBusyError struct {
	Netns string
	Group uint16
}

// Error names the group and the usual holder.
func (e *LogGroupBusyError) Error() string {
	netns := e.Netns
	if netns == "" {
		netns = "(hooktrace's own)"
	}
	return fmt.Sprintf("NFLOG group %d in netns %s is already bound by another process (ulogd or another capture?): stop it or choose another group", e.Group, netns)
}

// bindErr explains why the kernel refused the bind. It answers EPERM both
// for a missing CAP_NET_ADMIN and for a group another socket holds; with
// the capability, only the second is left.
func (l *LogListener) bindErr(err error) error {
	if errors.Is(err, unix.EPERM) && hasNetAdmin() {
		return &LogGroupBusyError{Netns: l.name, Group: l.group}
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("bind NFLOG group %d in netns %s: %w (is the nfnetlink_log module available?)", l.group, l.name, err)
	}
	return traceErr(fmt.Sprintf("bind NFLOG group %d", l.group), l.name, err)
}

// hasNetAdmin says whether this process has CAP_NET_ADMIN in its
// effective set.
func hasNetAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.Geteuid() == 0
	}
	return data[unix.CAP_NET_ADMIN/32].Effective&(1<<(unix.CAP_NET_ADMIN%32)) != 0
}

// Next blocks for the next message of the group. After Close, or once
// a stopped listener has drained, it returns an error wrapping
// net.ErrClosed. ENOBUFS is counted in Lost, and gaps in the group's
// numbering in Missed; Next goes on after both.
func (l *LogListener) Next() (LogMessage, error) { return l.NextBefore(time.Time{}) }

// NextBefore is Next that gives up at deadline (zero: never) with an
// error wrapping os.ErrDeadlineExceeded, so a reader can hand on what it
// gathered while the group is quiet.
func (l *LogListener) NextBefore(deadline time.Time) (LogMessage, error) {
	for len(l.pending) == 0 {
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return LogMessage{}, fmt.Errorf("receive NFLOG group %d in netns %s: %w", l.group, l.name, os.ErrDeadlineExceeded)
		}
		if err := l.receive(deadline); err != nil {
			return LogMessage{}, err
		}
	}
	m := l.pending[0]
	l.pending[0] = LogMessage{}
	l.pending = l.pending[1:]
	return m, nil
}

// Stop ends the listener after what the kernel already queued is read:
// Next returns those messages, then an error wrapping net.ErrClosed. The
// socket is closed then; Close may still be called.
func (l *LogListener) Stop() { l.drain.stop(l.conn) }

// queue keeps the log messages of one datagram, in the kernel's order,
// counting the numbers skipped before each.
//
// A packet the host sends has no kernel timestamp before it reaches a
// device; the kernel queued it before the messages that follow it in the
// datagram, so it takes the time of the next message that has one (or
// receivedAt): that keeps the kernel's order when messages are merged
// with captured frames by time.
func (l *LogListener) queue(msgs []netlink.Message, receivedAt time.Time) {
	start := len(l.pending)
	for _, m := range msgs {
		if m.Header.Type != nfulnlMsgPacket || len(m.Data) < 4 {
			continue
		}
		lm := LogMessage{Netns: l.name, Group: binary.BigEndian.Uint16(m.Data[2:]), Data: m.Data}
		l.account(lm.Data, &lm.Time)
		l.pending = append(l.pending, lm)
	}
	next := receivedAt
	for i := len(l.pending) - 1; i >= start; i-- {
		if l.pending[i].Time.IsZero() || l.pending[i].Time.After(next) {
			l.pending[i].Time = next
		}
		next = l.pending[i].Time
	}
}

// account reads the message's timestamp and sequence number, counting
// the messages the numbering says were skipped.
func (l *LogListener) account(data []byte, t *time.Time) {
	if len(data) < 4 {
		return
	}
	forEachAttr(data[4:], func(typ uint16, v []byte) {
		switch {
		case typ == nfulaTimestamp && len(v) >= 16:
			sec := binary.BigEndian.Uint64(v)
			usec := binary.BigEndian.Uint64(v[8:])
			if sec != 0 && sec < 1<<40 && usec < 1e6 {
				*t = time.Unix(int64(sec), int64(usec)*1000)
			}
		case typ == nfulaSeq && len(v) >= 4:
			seq := binary.BigEndian.Uint32(v)
			if l.haveSeq && seq != l.lastSeq+1 {
				l.missed.Add(uint64(seq - l.lastSeq - 1))
			}
			l.lastSeq, l.haveSeq = seq, true
		}
	})
}

// forEachAttr calls fn for each netlink attribute in b (host-order
// headers, as the kernel writes them), stopping at the first malformed
// one.
func forEachAttr(b []byte, fn func(typ uint16, v []byte)) {
	for len(b) >= 4 {
		n := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ (1<<15 | 1<<14) // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
		if n < 4 || n > len(b) {
			return
		}
		fn(typ, b[4:n])
		n = (n + 3) &^ 3
		if n > len(b) {
			return
		}
		b = b[n:]
	}
}

// receive waits for the next datagram and queues its messages.
//
// It reads datagrams itself: the kernel marks batched messages
// NLM_F_MULTI, and netlink.Conn.Receive would then wait for more
// datagrams until a NLMSG_DONE, holding back a batch the kernel sent
// without one.
func (l *LogListener) receive(deadline time.Time) error {
	if l.buf == nil {
		l.buf = make([]byte, logReceiveBuffer)
	}
	rc, err := l.conn.SyscallConn()
	if err != nil {
		return traceErr(fmt.Sprintf("receive NFLOG group %d", l.group), l.name, err)
	}
	var n int
	var rerr error
	l.drain.arm(l.conn, deadline)
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), l.buf, unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN && rerr != unix.EWOULDBLOCK
	})
	switch {
	case l.closed.Load():
		return fmt.Errorf("receive NFLOG group %d in netns %s: %w", l.group, l.name, net.ErrClosed)
	case isTimeout(err):
		if l.drain.over() {
			l.unread.Add(discardQueued(l.conn, nfulnlMsgPacket))
			l.Close()
			return fmt.Errorf("receive NFLOG group %d in netns %s: %w", l.group, l.name, net.ErrClosed)
		}
		return nil // the caller's deadline, or the drain's idle allowance renewed
	case err != nil:
		return traceErr(fmt.Sprintf("receive NFLOG group %d", l.group), l.name, err)
	case errors.Is(rerr, unix.ENOBUFS):
		l.lost.Add(1)
		return nil
	case rerr != nil:
		return traceErr(fmt.Sprintf("receive NFLOG group %d", l.group), l.name, rerr)
	}
	l.queue(splitMessages(bytes.Clone(l.buf[:n])), time.Now())
	return nil
}

// logReceiveBuffer holds one datagram: the kernel's batches are at most
// logKernelBuffer bytes, and one message at most a full packet.
const logReceiveBuffer = 256 << 10

// splitMessages cuts a datagram into its netlink messages, stopping at
// the first malformed header.
func splitMessages(b []byte) []netlink.Message {
	var msgs []netlink.Message
	for len(b) >= unix.NLMSG_HDRLEN {
		n := int(binary.NativeEndian.Uint32(b))
		if n < unix.NLMSG_HDRLEN || n > len(b) {
			break
		}
		msgs = append(msgs, netlink.Message{
			Header: netlink.Header{
				Length:   uint32(n),
				Type:     netlink.HeaderType(binary.NativeEndian.Uint16(b[4:])),
				Flags:    netlink.HeaderFlags(binary.NativeEndian.Uint16(b[6:])),
				Sequence: binary.NativeEndian.Uint32(b[8:]),
				PID:      binary.NativeEndian.Uint32(b[12:]),
			},
			Data: b[unix.NLMSG_HDRLEN:n:n],
		})
		n = (n + 3) &^ 3
		if n > len(b) {
			break
		}
		b = b[n:]
	}
	return msgs
}

// Buffered returns how many log messages were received and not yet
// returned by Next: zero means the next call waits for the kernel.
func (l *LogListener) Buffered() int { return len(l.pending) }

// Netns returns the namespace name the listener was opened with.
func (l *LogListener) Netns() string { return l.name }

// Unread returns how many messages were still queued on the socket when
// a Stop had drained for its longest.
func (l *LogListener) Unread() uint64 { return l.unread.Load() }

// Group returns the NFLOG group the listener is bound to.
func (l *LogListener) Group() uint16 { return l.group }

// Lost returns how many times the socket reported ENOBUFS: each means the
// kernel could not deliver at least one message.
func (l *LogListener) Lost() uint64 { return l.lost.Load() }

// Missed returns how many messages the group's sequence numbers show were
// never received: the exact count of what ENOBUFS reports lost.
func (l *LogListener) Missed() uint64 { return l.missed.Load() }

// Close unbinds the group (the kernel frees it with the socket) and
// unblocks Next.
func (l *LogListener) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	if err := l.conn.Close(); err != nil {
		return traceErr(fmt.Sprintf("close NFLOG group %d socket", l.group), l.name, err)
	}
	return nil
}
