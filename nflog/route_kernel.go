package nflog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// getRoute sends one RTM_GETROUTE and decodes the answer.
func (s *routeSession) getRoute(req routeRequest, flags uint32) (routeEntry, error) {
	data, err := req.encode(flags)
	if err != nil {
		return routeEntry{}, err
	}
	msgs, err := s.c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETROUTE, Flags: netlink.Request},
		Data:   data,
	})
	if err != nil {
		return routeEntry{}, err
	}
	for _, m := range msgs {
		if m.Header.Type == unix.RTM_NEWROUTE {
			return parseRoute(m.Data)
		}
	}
	return routeEntry{}, fmt.Errorf("ask for a route: no RTM_NEWROUTE in the kernel's answer")
}

// rules lists the family's policy rules in the order the kernel walks
// them (by priority; the dump is already in that order).
func (s *routeSession) rules(family uint8) ([]policyRule, error) {
	hdr := make([]byte, unix.SizeofRtMsg)
	hdr[0] = family
	msgs, err := s.dump(unix.RTM_GETRULE, hdr)
	if err != nil {
		return nil, fmt.Errorf("list ip rules: %w", err)
	}
	var rules []policyRule
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWRULE {
			continue
		}
		r, err := parseRule(m.Data)
		if err != nil {
			return nil, fmt.Errorf("list ip rules: %w", err)
		}
		rules = append(rules, r)
	}
	slices.SortStableFunc(rules, func(a, b policyRule) int { return int64Cmp(int64(a.Priority), int64(b.Priority)) })
	return rules, nil
}

func int64Cmp(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// tableRoutes lists the routes of one table of the family (a dump
// filtered by the kernel, so a large table elsewhere costs nothing),
// remembered for the session.
func (s *routeSession) tableRoutes(family uint8, table uint32) ([]routeEntry, error) {
	key := uint64(family)<<32 | uint64(table)
	if routes, ok := s.tables[key]; ok {
		return routes, nil
	}
	hdr := make([]byte, unix.SizeofRtMsg)
	hdr[0] = family
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(unix.RTA_TABLE, table)
	attrs, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	msgs, err := s.dump(unix.RTM_GETROUTE, append(hdr, attrs...))
	if errors.Is(err, unix.ENOENT) { // "FIB table does not exist": no routes
		msgs, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list routes of table %s: %w", tableName(table), err)
	}
	var routes []routeEntry
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWROUTE {
			continue
		}
		e, err := parseRoute(m.Data)
		if err != nil {
			return nil, fmt.Errorf("list routes of table %s: %w", tableName(table), err)
		}
		if e.Table == table {
			routes = append(routes, e)
		}
	}
	s.tables[key] = routes
	return routes, nil
}

func (s *routeSession) dump(typ netlink.HeaderType, data []byte) ([]netlink.Message, error) {
	return s.c.Execute(netlink.Message{
		Header: netlink.Header{Type: typ, Flags: netlink.Request | netlink.Dump},
		Data:   data,
	})
}

// linkIndex finds an interface's index by name (RTM_GETLINK).
func (s *routeSession) linkIndex(name string) (uint32, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, name)
	attrs, err := ae.Encode()
	if err != nil {
		return 0, err
	}
	l, err := s.getLink(append(make([]byte, unix.SizeofIfInfomsg), attrs...))
	if err != nil {
		return 0, err
	}
	s.names[l.index] = l.name
	return l.index, nil
}

// devName names an interface by index, or "ifN" when the kernel does
// not know it.
func (s *routeSession) devName(index uint32) string {
	if name, ok := s.names[index]; ok {
		return name
	}
	hdr := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(hdr[4:], index)
	name := "if" + strconv.FormatUint(uint64(index), 10)
	if l, err := s.getLink(hdr); err == nil {
		name = l.name
	}
	s.names[index] = name
	return name
}

type ifLink struct {
	index uint32
	name  string
}

func (s *routeSession) getLink(data []byte) (ifLink, error) {
	msgs, err := s.c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request},
		Data:   data,
	})
	if err != nil {
		return ifLink{}, err
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		l := ifLink{index: binary.NativeEndian.Uint32(m.Data[4:8])}
		ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfInfomsg:])
		if err != nil {
			return ifLink{}, err
		}
		for ad.Next() {
			if ad.Type() == unix.IFLA_IFNAME {
				l.name = ad.String()
			}
		}
		return l, ad.Err()
	}
	return ifLink{}, fmt.Errorf("no RTM_NEWLINK in the kernel's answer")
}

// Netconf attributes (include/uapi/linux/netconf.h).
const (
	netconfaIfindex    = 1
	netconfaForwarding = 2
	netconfaRPFilter   = 3
	netconfIfindexAll  = -1
)

// netconf is what RTM_GETNETCONF says of an interface (or of "all").
type netconf struct {
	forwarding, rpFilter int32
}

// netconf reads an interface's forwarding and rp_filter settings in the
// session's namespace (RTM_GETNETCONF, the sysctls without /proc).
func (s *routeSession) netconf(family uint8, ifindex int32) (netconf, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Int32(netconfaIfindex, ifindex)
	attrs, err := ae.Encode()
	if err != nil {
		return netconf{}, err
	}
	msgs, err := s.c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETNETCONF, Flags: netlink.Request},
		Data:   append([]byte{family, 0, 0, 0}, attrs...),
	})
	if err != nil {
		return netconf{}, fmt.Errorf("read forwarding and rp_filter settings: %w", err)
	}
	var nc netconf
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return netconf{}, err
		}
		for ad.Next() {
			switch ad.Type() {
			case netconfaForwarding:
				nc.forwarding = ad.Int32()
			case netconfaRPFilter:
				nc.rpFilter = ad.Int32()
			}
		}
		if err := ad.Err(); err != nil {
			return netconf{}, err
		}
	}
	return nc, nil
}
