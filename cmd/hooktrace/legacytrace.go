package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/nflog"
	"github.com/hooktrace/hooktrace/ui"
)

// legacyTraceGroup is the NFLOG group nfnetlink_log sends TRACE lines to
// (and every other line logged through the nf_log backend).
const legacyTraceGroup = 0

// legacyBufferBytes is the receive buffer of each group 0 socket: TRACE
// lines carry whole packets, several per packet.
const legacyBufferBytes = 16 << 20

// legacyTracing shows the TRACE lines of iptables-legacy and
// ip6tables-legacy: in each traced namespace with legacy tables, it
// listens on NFLOG group 0 and points the nf_log backend of the families
// that have tables at nfnetlink_log, for as long as it runs.
type legacyTracing struct {
	sources  []*legacySource
	wg       sync.WaitGroup
	received atomic.Uint64
}

// legacySource is one namespace's group 0 listener, the backends set for
// it, and its iptables-legacy rules.
type legacySource struct {
	ns       nflog.NetnsRef
	l        *nflog.LogListener
	changes  []*nflog.LogBackendChange
	mu       sync.Mutex
	rules    *nflog.LegacyRules
	reloaded map[string]bool // rules looked up again after a miss
}

// startLegacyTracing starts showing iptables-legacy TRACE lines in the
// namespaces, printed through printer (nil: counted only) with interface
// names from ifname (live.InterfaceName; nil: none). It never fails: a
// namespace where it cannot work (group 0 held by ulogd, no
// nfnetlink_log, no iptables) gets a one-line warning on stderr and is
// left unchanged. close undoes everything.
func startLegacyTracing(nss []capture.Namespace, ifname func(netns string, index int) string, printer ui.TracePrinter, stderr io.Writer) *legacyTracing {
	lt := &legacyTracing{}
	refs, err := netnsRefs(nss)
	if err != nil {
		fmt.Fprintf(stderr, "hooktrace: warning: iptables-legacy TRACE lines not shown: %v\n", err)
		return lt
	}
	for _, ref := range refs {
		src, err := listenLegacy(ref, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "hooktrace: warning: iptables-legacy TRACE lines not shown in %s: %v\n", nsLabel(ref), err)
			continue
		}
		if src == nil {
			continue
		}
		lt.sources = append(lt.sources, src)
		lt.wg.Add(1)
		go func() {
			defer lt.wg.Done()
			lt.read(src, printer, ifname, stderr)
		}()
	}
	warnBackendLeftovers(nss, stderr) // what this run did not take over
	return lt
}

// nsLabel names a namespace in messages.
func nsLabel(ref nflog.NetnsRef) string {
	if ref.Name == "" {
		return "this network namespace"
	}
	return "network namespace " + ref.Name
}

// listenLegacy prepares one namespace: nil, nil when it has no legacy
// tables. On an error nothing is left changed.
func listenLegacy(ref nflog.NetnsRef, stderr io.Writer) (*legacySource, error) {
	rules, err := nflog.LoadLegacyRules(ref.Path)
	if err != nil {
		return nil, err
	}
	families := legacyFamilies(rules)
	if len(families) == 0 {
		return nil, nil
	}
	l, err := nflog.ListenLog(ref.Name, ref.Path, legacyTraceGroup, legacyBufferBytes)
	var small *nflog.TraceBufferError
	switch {
	case errors.As(err, &small) && l != nil:
		fmt.Fprintf(stderr, "hooktrace: warning: %v\n", err)
	case err != nil:
		return nil, err
	}
	src := &legacySource{ns: ref, l: l, rules: rules, reloaded: map[string]bool{}}
	for _, fam := range families {
		c, err := nflog.SetLogBackend(ref, fam, nflog.NfnetlinkLog)
		if err != nil {
			src.close()
			return nil, err
		}
		if c != nil {
			src.changes = append(src.changes, c)
		}
	}
	return src, nil
}

// legacyFamilies are the families whose legacy save shows a table: only
// they can log TRACE lines, and only their backend is worth changing
// (it also carries conntrack's invalid-packet log). A table is there when
// one of its built-in chains has a policy.
func legacyFamilies(rules *nflog.LegacyRules) []uint8 {
	var out []uint8
	for _, f := range []struct {
		name string
		nf   uint8
	}{{"ip", nflog.LogFamilyIPv4}, {"ip6", nflog.LogFamilyIPv6}} {
		for _, tc := range [][2]string{{"filter", "INPUT"}, {"raw", "PREROUTING"}, {"mangle", "PREROUTING"}, {"nat", "PREROUTING"}, {"security", "INPUT"}} {
			if rules.Policy(f.name, tc[0], tc[1]) != "" {
				out = append(out, f.nf)
				break
			}
		}
	}
	return out
}

// read prints the TRACE lines of one namespace until the listener closes.
func (lt *legacyTracing) read(src *legacySource, printer ui.TracePrinter, ifname func(string, int) string, stderr io.Writer) {
	var names func(uint32) string
	if ifname != nil {
		names = func(i uint32) string { return ifname(src.ns.Name, int(i)) }
	}
	failures := 0
	for {
		m, err := src.l.Next()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			fmt.Fprintf(stderr, "hooktrace: warning: %v\n", err)
			if failures++; failures > 100 {
				return
			}
			continue
		}
		failures = 0
		ev, err := src.event(m, names)
		if decode.IsNotLegacyTrace(err) {
			continue // a user's NFLOG rule on group 0, or conntrack's log
		}
		if err != nil {
			fmt.Fprintf(stderr, "hooktrace: warning: %s: %v\n", nsLabel(src.ns), err)
			continue
		}
		lt.received.Add(1)
		if printer != nil {
			if err := printer.Trace(&ev); err != nil {
				return
			}
		}
	}
}

// event decodes a message, reading the rules again once per rule it did
// not find (a rule added while tracing).
func (src *legacySource) event(m nflog.LogMessage, names func(uint32) string) (decode.TraceEvent, error) {
	src.mu.Lock()
	defer src.mu.Unlock()
	ev, err := decode.LegacyTrace(m.Netns, m.Time, m.Data, src.rules, names)
	if err != nil || ev.Type != nflog.TraceRule || ev.Rule != "" {
		return ev, err
	}
	key := fmt.Sprintf("%d %s %s %d", ev.Family, ev.Table, ev.Chain, ev.RuleNumber)
	if src.reloaded[key] {
		return ev, nil
	}
	src.reloaded[key] = true
	rules, err := nflog.LoadLegacyRules(src.ns.Path)
	if err != nil {
		return ev, nil
	}
	src.rules = rules
	return decode.LegacyTrace(m.Netns, m.Time, m.Data, src.rules, names)
}

// close stops listening and restores the backends. The backend goes back
// first, so that no line is logged to a group nobody listens to.
func (src *legacySource) close() error {
	var errs []error
	for _, c := range src.changes {
		if _, err := c.Restore(); err != nil {
			errs = append(errs, err)
		}
	}
	src.changes = nil
	if err := src.l.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// lost adds up the messages the kernel could not deliver, by the groups'
// numbering.
func (lt *legacyTracing) lost() uint64 {
	var n uint64
	for _, s := range lt.sources {
		n += s.l.Missed()
	}
	return n
}

// close stops every listener, waits for the readers and restores every
// backend it changed; what it could not restore is returned, one line.
func (lt *legacyTracing) close() error {
	var errs []error
	for _, s := range lt.sources {
		if err := s.close(); err != nil {
			errs = append(errs, err)
		}
	}
	lt.wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("restore nf_log backends: %w", oneLine(errors.Join(errs...)))
	}
	return nil
}

// oneLine joins a joined error's lines with "; ".
func oneLine(err error) error {
	var j interface{ Unwrap() []error }
	if !errors.As(err, &j) {
		return err
	}
	msg := ""
	for i, e := range j.Unwrap() {
		if i > 0 {
			msg += "; "
		}
		msg += e.Error()
	}
	return errors.New(msg)
}

// leftoverBackends pairs the recorded nf_log backend changes with the
// namespaces in nss, by inode, setting each change's path to enter it.
// Changes in namespaces not in nss are returned apart.
func leftoverBackends(nss []capture.Namespace) (in, elsewhere []*nflog.LogBackendChange, err error) {
	changes, err := nflog.LogBackendLeftovers()
	refs, rerr := netnsRefs(nss)
	if rerr != nil {
		return nil, nil, rerr
	}
	for _, c := range changes {
		found := false
		for i, ns := range nss {
			if ns.Inode == c.Inode {
				c.Netns = refs[i]
				found = true
				break
			}
		}
		if found {
			in = append(in, c)
		} else {
			elsewhere = append(elsewhere, c)
		}
	}
	return in, elsewhere, err
}

// restoreBackends is the nf_log part of `hooktrace cleanup`: it restores
// the backends recorded in state files for the namespaces in nss. The
// guard (guardOwner, the pid of the hooktrace it watches) leaves alone
// what another running hooktrace set. With every namespace on the machine
// (all), a record whose namespace is gone is forgotten.
func restoreBackends(nss []capture.Namespace, all bool, guardOwner int, stdout io.Writer) (int, error) {
	in, elsewhere, err := leftoverBackends(nss)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	n := 0
	for _, c := range in {
		if guardOwner > 0 && c.PID != guardOwner && c.OwnerAlive() {
			continue
		}
		restored, err := c.Restore()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		if restored {
			fmt.Fprintf(stdout, "restored nf_log backend for %s in %s to %s\n", nflog.LogFamilyName(c.Family), nsLabel(c.Netns), c.Previous)
		} else {
			fmt.Fprintf(stdout, "left nf_log backend for %s in %s as it is: it no longer holds hooktrace's %s\n", nflog.LogFamilyName(c.Family), nsLabel(c.Netns), c.Set)
		}
	}
	for _, c := range elsewhere {
		if !all || c.OwnerAlive() {
			continue
		}
		if err := c.Forget(); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		fmt.Fprintf(stdout, "forgot nf_log backend for %s in network namespace %s: the namespace is gone\n", nflog.LogFamilyName(c.Family), c.Netns.Name)
	}
	if len(errs) > 0 {
		return n, oneLine(errors.Join(errs...))
	}
	return n, nil
}

// warnBackendLeftovers tells about nf_log backends a killed run left set
// in the namespaces in nss.
func warnBackendLeftovers(nss []capture.Namespace, stderr io.Writer) {
	in, _, _ := leftoverBackends(nss)
	for _, c := range in {
		if c.OwnerAlive() {
			continue
		}
		if cur, err := nflog.ReadLogBackend(c.Netns.Path, c.Family); err != nil || cur != c.Set {
			continue
		}
		fmt.Fprintf(stderr, "hooktrace: warning: %s still has nf_log backend %s for %s from a hooktrace run that was killed (it was %s); restore it with `hooktrace cleanup`\n", nsLabel(c.Netns), c.Set, nflog.LogFamilyName(c.Family), c.Previous)
	}
}
