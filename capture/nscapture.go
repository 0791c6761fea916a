package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nsCapture is the capture inside one network namespace: a watch on its
// interfaces and a pair of sockets on each one captured.
type nsCapture struct {
	live   *Live
	ns     Namespace
	handle netns.NsHandle // None for hooktrace's own namespace
	done   chan struct{}  // closed to stop the link watch
	wg     sync.WaitGroup

	mu     sync.Mutex
	ifaces map[int]*ifaceCapture
	closed bool
}

// ifaceCapture is one interface and its two sockets.
type ifaceCapture struct {
	ns       *nsCapture
	name     string
	index    int
	linkType LinkType
	socks    []*socket
	stop     chan struct{}
	stopOnce sync.Once
	goneOnce sync.Once
	ready    atomic.Bool // every socket has its filter attached
}

// halt tells the interface's readers to stop.
func (ic *ifaceCapture) halt() { ic.stopOnce.Do(func() { close(ic.stop) }) }

func (ic *ifaceCapture) label() string {
	if ic.ns.ns.Name == "" {
		return ic.name
	}
	return ic.ns.ns.Name + "/" + ic.name
}

// gone is called by a socket reader whose socket failed. A poll error
// means the interface went down or away, which rtnetlink reports too; the
// interface is forgotten so that it is opened again when it comes back.
func (ic *ifaceCapture) gone(err error) {
	ic.goneOnce.Do(func() {
		if !errors.Is(err, afpacket.ErrPoll) {
			ic.ns.live.opts.notify("%v; capture on %s ends", err, ic.label())
		}
		ic.ns.forget(ic)
	})
}

// forget removes an interface whose sockets ended by themselves.
func (nc *nsCapture) forget(ic *ifaceCapture) {
	nc.mu.Lock()
	cur, ok := nc.ifaces[ic.index]
	mine := ok && cur == ic
	if mine {
		delete(nc.ifaces, ic.index)
	}
	socks := ic.socks
	nc.mu.Unlock()
	if mine {
		ic.halt()
		nc.live.retire(socks)
	}
}

func openNamespace(l *Live, ns Namespace) (*nsCapture, error) {
	nc := &nsCapture{live: l, ns: ns, handle: netns.None(), done: make(chan struct{}), ifaces: map[int]*ifaceCapture{}}
	self, err := nsInode("/proc/self/ns/net")
	if err != nil {
		return nil, err
	}
	if ns.Inode != self {
		h, err := netns.GetFromPath(ns.Path)
		if err != nil {
			return nil, privilegeHint(fmt.Errorf("open network namespace %s: %w", ns.Name, err), "CAP_SYS_ADMIN")
		}
		nc.handle = h
	}
	return nc, nil
}

// start opens the interfaces present now, then follows link changes.
// For the initial namespaces an interface the user named must exist.
func (nc *nsCapture) start(ctx context.Context, initial bool) error {
	h, err := netlink.NewHandleAt(nc.handle)
	if err != nil {
		return fmt.Errorf("open rtnetlink in network namespace %s: %w", nc.ns.Name, err)
	}
	links, err := h.LinkList()
	h.Close()
	if err != nil {
		return fmt.Errorf("list interfaces in network namespace %s: %w", nc.ns.Name, err)
	}
	opts := &nc.live.opts
	if initial && !opts.anyInterface() {
		for _, want := range opts.Interfaces {
			if !hasLink(links, want) {
				where := ""
				if nc.ns.Name != "" {
					where = " in network namespace " + nc.ns.Name
				}
				return fmt.Errorf("interface %s%s: %w", want, where, ErrNoInterface)
			}
		}
	}
	// Subscribe before opening, so an interface created meanwhile is seen.
	updates := make(chan netlink.LinkUpdate, 64)
	handle := nc.handle
	err = netlink.LinkSubscribeWithOptions(updates, nc.done, netlink.LinkSubscribeOptions{
		Namespace: &handle,
		ErrorCallback: func(err error) {
			select {
			case <-nc.done: // the watch was closed on purpose
			default:
				opts.notify("watch interfaces in network namespace %s: %v", nc.ns.Name, err)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watch interfaces in network namespace %s: %w", nc.ns.Name, err)
	}
	for _, link := range links {
		if err := nc.openLink(link); err != nil && initial {
			if !nc.linkGone(link) {
				return err
			}
			// It went between the listing and the opening (a test or a
			// container tearing down): as if it had not been listed.
			opts.notify("interface %s in network namespace %s vanished as capture started", link.Attrs().Name, nc.ns.Name)
		}
	}
	nc.wg.Add(1)
	go nc.follow(updates)
	return nil
}

// linkGone says whether the namespace no longer has the link (by index
// and name), or no longer exists.
func (nc *nsCapture) linkGone(link netlink.Link) bool {
	h, err := netlink.NewHandleAt(nc.handle)
	if err != nil {
		return true
	}
	defer h.Close()
	now, err := h.LinkByIndex(link.Attrs().Index)
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || err == nil && now.Attrs().Name != link.Attrs().Name
}

func hasLink(links []netlink.Link, name string) bool {
	for _, l := range links {
		if l.Attrs().Name == name {
			return true
		}
	}
	return false
}

// follow opens interfaces that appear and closes those that are removed.
func (nc *nsCapture) follow(updates <-chan netlink.LinkUpdate) {
	defer nc.wg.Done()
	for u := range updates {
		switch u.Header.Type {
		case unix.RTM_NEWLINK:
			if u.Attrs().Flags&net.FlagUp == 0 {
				nc.closeLink(int(u.Attrs().Index)) // down: reopened when it comes up
				continue
			}
			if err := nc.openLink(u.Link); err != nil {
				nc.live.opts.notify("%v", err)
			}
		case unix.RTM_DELLINK:
			nc.closeLink(int(u.Attrs().Index))
		}
	}
}

// wanted says whether a link is to be captured.
func (nc *nsCapture) wanted(name string) bool {
	opts := &nc.live.opts
	if opts.NoInterfaces {
		return false
	}
	if opts.anyInterface() {
		return true
	}
	for _, i := range opts.Interfaces {
		if i == name {
			return true
		}
	}
	return false
}

// linkTypeOf maps an interface's encapsulation to the link type its
// AF_PACKET frames have; ok is false for kinds hooktrace does not capture.
func linkTypeOf(l netlink.Link) (LinkType, bool) {
	switch l.Attrs().EncapType {
	case "ether", "loopback":
		return LinkTypeEthernet, true
	case "none", "ipip", "tunnel6", "sit", "gre", "ip6gre", "ipgre":
		return LinkTypeRaw, true
	}
	return 0, false
}

func (nc *nsCapture) openLink(link netlink.Link) error {
	a := link.Attrs()
	if !nc.wanted(a.Name) || a.Flags&net.FlagUp == 0 {
		return nil // an interface that is down is opened when it comes up
	}
	lt, ok := linkTypeOf(link)
	if !ok {
		if !nc.live.opts.anyInterface() {
			return fmt.Errorf("interface %s has link encapsulation %q, which hooktrace cannot capture", a.Name, a.EncapType)
		}
		return nil
	}
	nc.mu.Lock()
	if _, ok := nc.ifaces[a.Index]; ok || nc.closed {
		nc.mu.Unlock()
		return nil
	}
	ic := &ifaceCapture{ns: nc, name: a.Name, index: a.Index, linkType: lt, stop: make(chan struct{})}
	nc.ifaces[a.Index] = ic
	nc.mu.Unlock()
	nc.live.named(nc.ns.Name, a.Index, a.Name)
	if err := ic.open(); err != nil {
		nc.mu.Lock()
		delete(nc.ifaces, a.Index)
		nc.mu.Unlock()
		return err
	}
	return nil
}

// open creates both sockets and waits until their filters are attached.
func (ic *ifaceCapture) open() error {
	l := ic.ns.live
	prog, err := l.program(ic.linkType)
	if err != nil {
		return fmt.Errorf("filter for %s: %w", ic.label(), err)
	}
	var socks []*socket
	for _, dir := range []Direction{DirIn, DirOut} {
		s, err := openSocket(ic, dir, &l.opts)
		if err != nil {
			for _, s := range socks {
				s.tp.Close()
			}
			return err
		}
		socks = append(socks, s)
	}
	ic.ns.mu.Lock()
	ic.socks = socks
	ic.ns.mu.Unlock()
	errs := make(chan error, len(socks))
	for _, s := range socks {
		ic.ns.wg.Add(1)
		s.start(prog, l.pool, ic.stop, func(err error) { errs <- err }, ic.ns.wg.Done)
	}
	var first error
	for range socks {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		ic.halt()
		return first
	}
	ic.ready.Store(true)
	return nil
}

func (nc *nsCapture) closeLink(index int) {
	nc.mu.Lock()
	ic, ok := nc.ifaces[index]
	nc.mu.Unlock()
	if ok {
		nc.forget(ic)
	}
}

func (nc *nsCapture) sockets() []*socket {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	var out []*socket
	for _, ic := range nc.ifaces {
		out = append(out, ic.socks...)
	}
	return out
}

// close stops every reader, waits for them and returns their sockets so
// their counters keep counting.
func (nc *nsCapture) close() []*socket {
	nc.mu.Lock()
	if nc.closed {
		nc.mu.Unlock()
		return nil
	}
	nc.closed = true
	var socks []*socket
	for _, ic := range nc.ifaces {
		ic.halt()
		socks = append(socks, ic.socks...)
	}
	nc.ifaces = map[int]*ifaceCapture{}
	nc.mu.Unlock()
	close(nc.done)
	nc.wg.Wait()
	if nc.handle != netns.None() {
		nc.handle.Close()
	}
	return socks
}
