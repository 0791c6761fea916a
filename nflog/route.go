package nflog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// LookupRoute asks the kernel of the network namespace at nsPath ("" for
// hooktrace's own; else a file such as /run/netns/NAME or
// /proc/PID/ns/net) how it routes the packet q describes, and which
// `ip rule` chose the table.
//
// The decision is the kernel's own: an RTM_GETROUTE with the packet's
// addresses, mark, protocol and ports, and with its input interface when
// q.IIF is set (the kernel then runs the input route lookup, with its
// reverse-path and forwarding checks). A second request with
// RTM_F_FIB_MATCH returns the route that matched, which gives Route. The
// rule is found by evaluating the namespace's rules (RTM_GETRULE) in
// order against the packet: the first that matches and names the table
// the kernel answered, unless suppress_prefixlength rejects that route.
//
// A refusal by the kernel is a decision, not an error: Kind is "error"
// (or "blackhole", "unreachable", "prohibit" when a route or rule of
// that type explains it) and Error says what the kernel said. The error
// is for what stopped the question being asked: a namespace or input
// interface that does not exist, a socket that could not be opened.
//
// Where the kernel's answer is not the whole truth it is corrected or
// completed: an IPv4 route of the local table is reported as local even
// while the kernel, with only the default rules, keeps local and main
// merged and answers "main"; a refusal's rule and route are found by
// reading the tables the rules name. Rules on tun_id, oif, VRF
// (l3mdev) and suppress_ifgroup are not evaluated: the rule is then ""
// or a later one, never a guess presented as the kernel's.
func LookupRoute(nsPath string, q RouteQuery) (RouteDecision, error) {
	dst := q.Dst.Unmap()
	if !dst.IsValid() {
		return RouteDecision{}, fmt.Errorf("look up route in netns %s: no destination address", namespaceLabel(nsPath))
	}
	if q.Src.IsValid() && q.Src.Unmap().Is4() != dst.Is4() {
		return RouteDecision{}, fmt.Errorf("look up route in netns %s: source %s and destination %s are of different families", namespaceLabel(nsPath), q.Src, q.Dst)
	}
	c, err := dialRoute(nsPath)
	if err != nil {
		return RouteDecision{}, fmt.Errorf("open rtnetlink socket in netns %s: %w", namespaceLabel(nsPath), err)
	}
	defer c.Close()
	s := newRouteSession(c, namespaceLabel(nsPath))
	d, err := s.decide(q)
	if err != nil {
		return RouteDecision{}, fmt.Errorf("look up route to %s in netns %s: %w", q.Dst, s.ns, err)
	}
	return d, nil
}

// dialRoute opens a NETLINK_ROUTE socket inside the namespace at nsPath;
// the namespace file is only needed until the socket exists.
func dialRoute(nsPath string) (*netlink.Conn, error) {
	cfg := &netlink.Config{Strict: true}
	if nsPath != "" {
		f, err := os.Open(nsPath)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	return netlink.Dial(unix.NETLINK_ROUTE, cfg)
}

// routeSession is one LookupRoute's conversation with the kernel.
type routeSession struct {
	c      *netlink.Conn
	ns     string
	names  map[uint32]string       // interface index to name
	tables map[uint64][]routeEntry // family<<32|table to its routes
}

func newRouteSession(c *netlink.Conn, ns string) *routeSession {
	return &routeSession{c: c, ns: ns, names: map[uint32]string{}, tables: map[uint64][]routeEntry{}}
}

// decide asks the kernel and explains its answer.
func (s *routeSession) decide(q RouteQuery) (RouteDecision, error) {
	req := newRouteRequest(q)
	if q.IIF != "" {
		idx, err := s.linkIndex(q.IIF)
		if err != nil {
			return RouteDecision{}, fmt.Errorf("find input interface %s: %w", q.IIF, err)
		}
		req.IIF = idx
	}
	rules, err := s.rules(req.Family)
	if err != nil {
		return RouteDecision{}, err
	}
	flow := req.flow(q.IIF)
	var flags uint32 // IPv6 answers name the table anyway, and refuse the flag
	if req.Family == unix.AF_INET {
		flags = unix.RTM_F_LOOKUP_TABLE
	}
	answer, err := s.getRoute(req, flags)
	if refusal, ok := kernelRefusal(err); ok {
		return s.explainRefusal(req, flow, rules, refusal)
	}
	if err != nil {
		return RouteDecision{}, err
	}
	matched, ferr := s.getRoute(req, flags|unix.RTM_F_FIB_MATCH)
	if ferr != nil {
		if _, ok := kernelRefusal(ferr); !ok {
			return RouteDecision{}, ferr
		}
		matched = answer // no route to match (the answer has no fib entry)
	}
	if err := s.unmergeLocal(req.Family, &answer, &matched); err != nil {
		return RouteDecision{}, err
	}
	d := s.decision(req, answer, matched)
	d.Rule = ruleFor(rules, flow, answer.Table, matched)
	if d.Kind == "forward" && req.Family == unix.AF_INET6 {
		d.Note = s.forwardingNote6()
	}
	d.Note = joinNotes(d.Note, req.note)
	return d, nil
}

// decision reads the kernel's answer: the type, table and next hop of
// the packet's route (answer), and the route that matched (matched).
func (s *routeSession) decision(req routeRequest, answer, matched routeEntry) RouteDecision {
	d := RouteDecision{
		Kind:    routeKind(answer.Type, req.IIF != 0),
		Table:   tableName(answer.Table),
		Route:   routeText(matched, s.devName),
		Gateway: answer.Gateway,
		PrefSrc: answer.PrefSrc,
	}
	if answer.OIF != 0 {
		d.Dev = s.devName(answer.OIF)
	}
	if !d.PrefSrc.IsValid() {
		d.PrefSrc = matched.PrefSrc
	}
	return d
}

// unmergeLocal corrects the table of a route from IPv4's local table.
// While a namespace has only the default rules, the kernel keeps the
// local table's routes in main's trie and answers "main" for them
// (fib_trie's merged tables); the route's own table is local, and so is
// the rule that looks it up first. The local table is asked whether it
// holds the matched route.
func (s *routeSession) unmergeLocal(family uint8, answer, matched *routeEntry) error {
	if family != unix.AF_INET || answer.Table != unix.RT_TABLE_MAIN {
		return nil
	}
	local, err := s.tableRoutes(family, unix.RT_TABLE_LOCAL)
	if err != nil {
		return err
	}
	for _, e := range local {
		if e.Type == matched.Type && e.DstLen == matched.DstLen && e.Dst == matched.Dst &&
			e.TOS == matched.TOS && e.Priority == matched.Priority && e.OIF == matched.OIF {
			answer.Table, matched.Table = unix.RT_TABLE_LOCAL, unix.RT_TABLE_LOCAL
			return nil
		}
	}
	return nil
}

// ruleFor finds the rule that chose the table the kernel answered, or
// "" when the rules as hooktrace reads them do not lead there.
func ruleFor(rules []policyRule, f ruleFlow, table uint32, matched routeEntry) string {
	r, _, hasRoute, ok := walkRules(rules, f, func(t uint32) (routeEntry, bool) {
		return matched, t == table
	})
	if !ok || !hasRoute {
		return ""
	}
	return r.String()
}

// routeKind names what a route of type t does with the packet.
func routeKind(t uint8, input bool) string {
	switch t {
	case unix.RTN_LOCAL, unix.RTN_ANYCAST:
		return "local"
	case unix.RTN_UNICAST:
		if input {
			return "forward"
		}
		return "output"
	}
	return routeTypeName(t)
}

// refusal is the kernel's reason for not routing a packet.
type refusal struct {
	errno syscall.Errno
	text  string // the errno's text and the kernel's extended message
}

// kernelRefusal tells an error the kernel answered from a failure to ask.
func kernelRefusal(err error) (refusal, bool) {
	var op *netlink.OpError
	var errno syscall.Errno
	if !errors.As(err, &op) || !errors.As(op.Err, &errno) {
		return refusal{}, false
	}
	text := errno.Error()
	if op.Message != "" {
		text += ": " + op.Message
	}
	return refusal{errno: errno, text: text}, true
}

// refusalErrno is the errno the kernel gives for a route or rule of
// each refusing type (fib_props; fib rule actions).
var (
	routeErrno = map[uint8]syscall.Errno{
		unix.RTN_BLACKHOLE: unix.EINVAL, unix.RTN_UNREACHABLE: unix.EHOSTUNREACH, unix.RTN_PROHIBIT: unix.EACCES,
	}
	ruleErrno = map[uint8]syscall.Errno{
		unix.FR_ACT_BLACKHOLE: unix.EINVAL, unix.FR_ACT_UNREACHABLE: unix.ENETUNREACH, unix.FR_ACT_PROHIBIT: unix.EACCES,
	}
)

// explainRefusal says why the kernel refused: the rule and route that
// led there, read from the namespace's rules and routes the way the
// kernel walks them, and for an input lookup what the interface's
// forwarding and reverse-path settings say. A route or rule type is
// only claimed when the kernel's errno is the one that type gives.
func (s *routeSession) explainRefusal(req routeRequest, flow ruleFlow, rules []policyRule, why refusal) (RouteDecision, error) {
	d := RouteDecision{Kind: "error", Error: why.text}
	var lookupErr error
	r, rt, hasRoute, ok := walkRules(rules, flow, func(t uint32) (routeEntry, bool) {
		routes, err := s.tableRoutes(req.Family, t)
		if err != nil {
			lookupErr = err
			return routeEntry{}, false
		}
		return bestRoute(routes, t, flow)
	})
	if lookupErr != nil {
		return RouteDecision{}, lookupErr
	}
	switch {
	case ok && hasRoute:
		d.Table, d.Rule, d.Route = tableName(rt.Table), r.String(), routeText(rt, s.devName)
		if routeErrno[rt.Type] == why.errno && isErrorRoute(rt.Type) {
			d.Kind = routeTypeName(rt.Type)
		}
	case ok:
		d.Rule = r.String()
		if ruleErrno[r.Action] == why.errno {
			d.Kind = strings.Join(r.actionWords(), " ")
		}
	}
	if req.IIF != 0 && d.Kind == "error" && hasRoute && !isErrorRoute(rt.Type) {
		hint, err := s.inputHint(req, flow, why)
		if err != nil {
			return RouteDecision{}, err
		}
		d.Error = joinNotes(d.Error, hint)
	}
	d.Note = req.note
	return d, nil
}

// inputHint explains an input lookup refused although a route exists:
// forwarding disabled on the input interface (EHOSTUNREACH), or the
// reverse-path filter (EINVAL), checked by asking the kernel for the
// route back to the source as fib_validate_source does.
func (s *routeSession) inputHint(req routeRequest, flow ruleFlow, why refusal) (string, error) {
	if req.Family != unix.AF_INET {
		return "", nil
	}
	dev, err := s.netconf(req.Family, int32(req.IIF))
	if err != nil {
		return "", err
	}
	switch why.errno {
	case unix.EHOSTUNREACH:
		if dev.forwarding == 0 {
			return fmt.Sprintf("forwarding is disabled on %s (net.ipv4.conf.%s.forwarding=0)", flow.IIF, flow.IIF), nil
		}
	case unix.EINVAL:
		return s.reversePathHint(req, flow, dev)
	}
	return "", nil
}

func (s *routeSession) reversePathHint(req routeRequest, flow ruleFlow, dev netconf) (string, error) {
	all, err := s.netconf(req.Family, netconfIfindexAll)
	if err != nil {
		return "", err
	}
	rpf := max(all.rpFilter, dev.rpFilter)
	if rpf <= 0 || !req.Src.IsValid() {
		return "", nil
	}
	back, err := s.getRoute(routeRequest{Family: req.Family, Dst: req.Src}, 0)
	if _, refused := kernelRefusal(err); refused {
		return fmt.Sprintf("rp_filter=%d on %s: no route back to %s (reverse-path check)", rpf, flow.IIF, req.Src), nil
	}
	if err != nil {
		return "", err
	}
	if rpf == 1 && back.OIF != req.IIF {
		return fmt.Sprintf("rp_filter=1 on %s: the route back to %s leaves by %s, not %s (strict reverse-path check)",
			flow.IIF, req.Src, s.devName(back.OIF), flow.IIF), nil
	}
	return "", nil
}

// forwardingNote6: an IPv6 route lookup answers a forward even when
// forwarding is off; ip6_forward then drops the packet.
func (s *routeSession) forwardingNote6() string {
	all, err := s.netconf(unix.AF_INET6, netconfIfindexAll)
	if err != nil || all.forwarding != 0 {
		return ""
	}
	return "IPv6 forwarding is disabled (net.ipv6.conf.all.forwarding=0): ip6_forward drops the packet"
}

func joinNotes(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// routeRequest is an RTM_GETROUTE for one packet.
type routeRequest struct {
	Family       uint8
	Src, Dst     netip.Addr
	IIF          uint32
	Mark         uint32
	Proto        uint8 // 0 when the kernel cannot be asked about q.Proto
	SPort, DPort uint16
	note         string // what the request had to leave out
}

func newRouteRequest(q RouteQuery) routeRequest {
	r := routeRequest{Src: q.Src.Unmap(), Dst: q.Dst.Unmap(), Mark: q.Mark, SPort: q.SPort, DPort: q.DPort}
	r.Family = unix.AF_INET6
	if r.Dst.Is4() {
		r.Family = unix.AF_INET
	}
	switch {
	case q.Proto == unix.IPPROTO_TCP || q.Proto == unix.IPPROTO_UDP,
		q.Proto == unix.IPPROTO_ICMP && r.Family == unix.AF_INET,
		q.Proto == unix.IPPROTO_ICMPV6 && r.Family == unix.AF_INET6:
		r.Proto = q.Proto
	case q.Proto != 0:
		r.note = fmt.Sprintf("the kernel answers route queries for tcp, udp and icmp only: %s was asked as any protocol, so ipproto rules were not considered", ipProtoName(q.Proto))
	}
	return r
}

// flow is what the kernel's rules see of the request: the input
// interface is lo for a packet the namespace sends, and the user is the
// asker's (the kernel uses ours) or none for a packet that arrived.
func (r routeRequest) flow(iif string) ruleFlow {
	f := ruleFlow{Dst: r.Dst, Src: r.Src, IIF: iif, Mark: r.Mark, Proto: r.Proto, SPort: r.SPort, DPort: r.DPort}
	if iif == "" {
		f.IIF, f.UID = "lo", uint32(os.Getuid())
	} else {
		f.UID = 0xffffffff // INVALID_UID
	}
	return f
}

// encode builds the request's rtmsg and attributes.
func (r routeRequest) encode(flags uint32) ([]byte, error) {
	bits := uint8(r.Dst.BitLen())
	hdr := make([]byte, unix.SizeofRtMsg)
	hdr[0], hdr[1] = r.Family, bits
	if r.Src.IsValid() {
		hdr[2] = bits
	}
	binary.NativeEndian.PutUint32(hdr[8:], flags)
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(unix.RTA_DST, r.Dst.AsSlice())
	if r.Src.IsValid() {
		ae.Bytes(unix.RTA_SRC, r.Src.AsSlice())
	}
	if r.IIF != 0 {
		ae.Uint32(unix.RTA_IIF, r.IIF)
	}
	if r.Mark != 0 {
		ae.Uint32(unix.RTA_MARK, r.Mark)
	}
	if r.Proto != 0 {
		ae.Uint8(unix.RTA_IP_PROTO, r.Proto)
	}
	if r.SPort != 0 {
		ae.Bytes(unix.RTA_SPORT, binary.BigEndian.AppendUint16(nil, r.SPort))
	}
	if r.DPort != 0 {
		ae.Bytes(unix.RTA_DPORT, binary.BigEndian.AppendUint16(nil, r.DPort))
	}
	attrs, err := ae.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode route request: %w", err)
	}
	return append(hdr, attrs...), nil
}
