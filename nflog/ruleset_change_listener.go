package nflog

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ChangeListener receives the nf_tables ruleset changes of one network
// namespace (NFNLGRP_NFTABLES) and hands them over a generation at a
// time. Next is for one goroutine; Generation, Lost and Close may be
// called from any.
type ChangeListener struct {
	name      string
	conn      *netlink.Conn // joined to the group
	req       *netlink.Conn // for NFT_MSG_GETGEN requests
	reqMu     sync.Mutex
	pending   []netlink.Message
	batch     ChangeBatch // the generation being received
	lost      atomic.Uint64
	malformed atomic.Uint64
	closed    atomic.Bool
}

// ListenRulesetChanges opens a NETLINK_NETFILTER socket in the namespace
// at nsPath ("" for hooktrace's own), joins NFNLGRP_NFTABLES and forces
// its receive buffer to bufBytes (0 keeps the default; when forcing is
// refused it falls back to SO_RCVBUF silently: a loss costs a reload,
// not a wrong answer). name labels errors.
func ListenRulesetChanges(name, nsPath string, bufBytes int) (*ChangeListener, error) {
	conn, err := dialTraceConn(nsPath)
	if err != nil {
		return nil, traceErr("open netlink socket for ruleset changes", name, err)
	}
	l := &ChangeListener{name: name, conn: conn}
	if err := setReceiveBuffer(conn, name, bufBytes); err != nil && !errors.As(err, new(*TraceBufferError)) {
		conn.Close()
		return nil, err
	}
	if err := conn.JoinGroup(changeGroup); err != nil {
		conn.Close()
		return nil, traceErr("join nf_tables ruleset change group", name, err)
	}
	if l.req, err = dialTraceConn(nsPath); err != nil {
		conn.Close()
		return nil, traceErr("open netlink socket for nf_tables requests", name, err)
	}
	return l, nil
}

// Next blocks until a generation ends (NFT_MSG_NEWGEN) and returns its
// changes. When the socket overran (ENOBUFS) it returns a batch with
// Lost set at once, and counts it in Lost; a notification that does not
// decode also makes its batch Lost (and is counted in Malformed), since
// a change is missing. After Close it returns an error wrapping
// net.ErrClosed.
func (l *ChangeListener) Next() (ChangeBatch, error) {
	for {
		for len(l.pending) > 0 {
			m := l.pending[0]
			l.pending = l.pending[1:]
			if b, done := l.add(m); done {
				return b, nil
			}
		}
		msgs, err := l.conn.Receive()
		switch {
		case l.closed.Load():
			return ChangeBatch{}, fmt.Errorf("receive nf_tables ruleset changes in netns %s: %w", l.name, net.ErrClosed)
		case errors.Is(err, unix.ENOBUFS):
			l.lost.Add(1)
			l.batch = ChangeBatch{}
			return ChangeBatch{Lost: true}, nil
		case err != nil:
			return ChangeBatch{}, traceErr("receive nf_tables ruleset changes", l.name, err)
		}
		l.pending = msgs
	}
}

// add takes one message into the current batch, and returns the batch
// when the message ends it.
func (l *ChangeListener) add(m netlink.Message) (ChangeBatch, bool) {
	b, done := addChangeMessage(&l.batch, m)
	if b.malformed {
		l.malformed.Add(1)
	}
	return b.ChangeBatch, done
}

// batchResult is a finished batch, or a note that a message was bad.
type batchResult struct {
	ChangeBatch
	malformed bool
}

// addChangeMessage adds one notification to cur; at NFT_MSG_NEWGEN it
// returns the batch and starts a new one.
func addChangeMessage(cur *ChangeBatch, m netlink.Message) (batchResult, bool) {
	_, gen, ok := changeMessage(uint16(m.Header.Type))
	if !ok {
		return batchResult{}, false
	}
	if gen {
		g, err := ParseGeneration(m.Data)
		b := *cur
		b.Gen = g
		*cur = ChangeBatch{}
		if err != nil {
			b.Lost = true
		}
		return batchResult{b, err != nil}, true
	}
	c, ok, err := ParseRulesetChange(m)
	switch {
	case err != nil:
		cur.Lost = true
		return batchResult{malformed: true}, false
	case ok:
		cur.Changes = append(cur.Changes, c)
	}
	return batchResult{}, false
}

// Generation asks the kernel for the namespace's current ruleset
// generation (NFT_MSG_GETGEN).
func (l *ChangeListener) Generation() (uint32, error) {
	l.reqMu.Lock()
	defer l.reqMu.Unlock()
	req := netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(nftSubsys<<8 | nftMsgGetGen), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, 0, 0, 0},
	}
	msgs, err := l.req.Execute(req)
	if err != nil {
		return 0, traceErr("ask nf_tables for its generation", l.name, err)
	}
	for _, m := range msgs {
		if uint16(m.Header.Type) == nftSubsys<<8|nftMsgNewGen {
			g, err := ParseGeneration(m.Data)
			if err != nil {
				return 0, fmt.Errorf("netns %s: %w", l.name, err)
			}
			return g, nil
		}
	}
	return 0, fmt.Errorf("ask nf_tables for its generation in netns %s: no NFT_MSG_NEWGEN in the reply", l.name)
}

// Lost returns how many times the socket reported ENOBUFS; each means
// that changes were lost.
func (l *ChangeListener) Lost() uint64 { return l.lost.Load() }

// Malformed returns how many notifications did not decode.
func (l *ChangeListener) Malformed() uint64 { return l.malformed.Load() }

// Close closes both sockets and unblocks Next.
func (l *ChangeListener) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.reqMu.Lock()
	rerr := l.req.Close()
	l.reqMu.Unlock()
	if err := l.conn.Close(); err != nil {
		return traceErr("close nf_tables ruleset change socket", l.name, err)
	}
	if rerr != nil {
		return traceErr("close nf_tables request socket", l.name, rerr)
	}
	return nil
}
