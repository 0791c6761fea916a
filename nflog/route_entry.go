package nflog

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Route flags as iproute2's print_rt_flags names them (rtnetlink.h).
var routeFlagNames = []struct {
	bit  uint32
	name string
}{
	{unix.RTNH_F_DEAD, "dead"},
	{unix.RTNH_F_ONLINK, "onlink"},
	{unix.RTNH_F_PERVASIVE, "pervasive"},
	{unix.RTNH_F_OFFLOAD, "offload"},
	{unix.RTNH_F_TRAP, "trap"},
	{unix.RTM_F_NOTIFY, "notify"},
	{unix.RTNH_F_LINKDOWN, "linkdown"},
	{unix.RTNH_F_UNRESOLVED, "unresolved"},
	{0x4000, "rt_offload"},
	{0x8000, "rt_trap"},
	{0x20000000, "rt_offload_failed"},
}

// nextHop is one path of a multipath route.
type nextHop struct {
	Gateway netip.Addr
	OIF     uint32
	Weight  int // hops + 1
	Flags   uint8
}

// routeEntry is one route as the kernel reports it (RTM_NEWROUTE): a
// table entry, or the answer to RTM_GETROUTE.
type routeEntry struct {
	Family   uint8
	Dst, Src netip.Prefix // invalid: default (Dst) or none (Src)
	DstLen   uint8
	SrcLen   uint8
	TOS      uint8
	Table    uint32
	Protocol uint8
	Scope    uint8
	Type     uint8
	Flags    uint32
	Gateway  netip.Addr
	OIF      uint32
	IIF      uint32
	PrefSrc  netip.Addr
	Priority uint32
	HasPrio  bool
	Mark     uint32
	UID      uint32
	HasUID   bool
	Pref     int // IPv6 router preference; -1 unset
	MTU      uint32
	NextHops []nextHop
}

// parseRoute decodes an RTM_NEWROUTE message body.
func parseRoute(b []byte) (routeEntry, error) {
	if len(b) < unix.SizeofRtMsg {
		return routeEntry{}, fmt.Errorf("route message of %d bytes is shorter than its header", len(b))
	}
	e := routeEntry{
		Family: b[0], DstLen: b[1], SrcLen: b[2], TOS: b[3], Table: uint32(b[4]),
		Protocol: b[5], Scope: b[6], Type: b[7], Flags: binary.NativeEndian.Uint32(b[8:12]),
		Pref: -1,
	}
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofRtMsg:])
	if err != nil {
		return routeEntry{}, fmt.Errorf("decode route attributes: %w", err)
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.RTA_DST:
			e.Dst = prefixFrom(ad.Bytes(), e.DstLen)
		case unix.RTA_SRC:
			e.Src = prefixFrom(ad.Bytes(), e.SrcLen)
		case unix.RTA_TABLE:
			e.Table = ad.Uint32()
		case unix.RTA_GATEWAY:
			e.Gateway = addrFrom(ad.Bytes())
		case unix.RTA_VIA:
			e.Gateway = viaAddr(ad.Bytes())
		case unix.RTA_OIF:
			e.OIF = ad.Uint32()
		case unix.RTA_IIF:
			e.IIF = ad.Uint32()
		case unix.RTA_PREFSRC:
			e.PrefSrc = addrFrom(ad.Bytes())
		case unix.RTA_PRIORITY:
			e.Priority, e.HasPrio = ad.Uint32(), true
		case unix.RTA_MARK:
			e.Mark = ad.Uint32()
		case unix.RTA_UID:
			e.UID, e.HasUID = ad.Uint32(), true
		case unix.RTA_PREF:
			e.Pref = int(ad.Uint8())
		case unix.RTA_METRICS:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					if nad.Type() == unix.RTAX_MTU {
						e.MTU = nad.Uint32()
					}
				}
				return nil
			})
		case unix.RTA_MULTIPATH:
			e.NextHops = parseNextHops(ad.Bytes(), e.Family)
		}
	}
	if err := ad.Err(); err != nil {
		return routeEntry{}, fmt.Errorf("decode route attributes: %w", err)
	}
	return e, nil
}

func addrFrom(b []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(b)
	return a
}

// viaAddr decodes RTA_VIA: a family (u16) then the address.
func viaAddr(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	return addrFrom(b[2:])
}

// parseNextHops decodes RTA_MULTIPATH: rtnexthop headers (len u16,
// flags u8, hops u8, ifindex s32), each followed by its attributes.
func parseNextHops(b []byte, family uint8) []nextHop {
	var hops []nextHop
	for len(b) >= 8 {
		n := int(binary.NativeEndian.Uint16(b))
		if n < 8 || n > len(b) {
			break
		}
		h := nextHop{Flags: b[2], Weight: int(b[3]) + 1, OIF: binary.NativeEndian.Uint32(b[4:8])}
		if ad, err := netlink.NewAttributeDecoder(b[8:n]); err == nil {
			for ad.Next() {
				switch ad.Type() {
				case unix.RTA_GATEWAY:
					h.Gateway = addrFrom(ad.Bytes())
				case unix.RTA_VIA:
					h.Gateway = viaAddr(ad.Bytes())
				}
			}
		}
		hops = append(hops, h)
		b = b[(n+3)&^3:]
	}
	return hops
}

// routeText renders a route as `ip route` (iproute2's print_route)
// prints it, on one line: a multipath route's next hops follow its
// other fields. devName resolves interface indexes.
func routeText(e routeEntry, devName func(uint32) string) string {
	var w []string
	if e.Type != unix.RTN_UNICAST {
		w = append(w, routeTypeName(e.Type))
	}
	w = append(w, prefixText(e.Dst, e.DstLen, "default"))
	if e.Src.IsValid() || e.SrcLen != 0 {
		w = append(w, "from", prefixText(e.Src, e.SrcLen, "0"))
	}
	if e.TOS != 0 {
		w = append(w, "tos", fmt.Sprintf("0x%x", e.TOS))
	}
	if e.Gateway.IsValid() {
		w = append(w, "via", e.Gateway.String())
	}
	if e.OIF != 0 {
		w = append(w, "dev", devName(e.OIF))
	}
	if e.Table != unix.RT_TABLE_MAIN && e.Table != 0 {
		w = append(w, "table", tableName(e.Table))
	}
	if e.Flags&unix.RTM_F_CLONED == 0 {
		if e.Protocol != unix.RTPROT_BOOT {
			w = append(w, "proto", routeProtoName(e.Protocol))
		}
		if e.Scope != unix.RT_SCOPE_UNIVERSE {
			w = append(w, "scope", scopeName(e.Scope))
		}
	}
	if e.PrefSrc.IsValid() {
		w = append(w, "src", e.PrefSrc.String())
	}
	if e.HasPrio {
		w = append(w, "metric", fmt.Sprint(e.Priority))
	}
	for _, f := range routeFlagNames {
		if e.Flags&f.bit != 0 {
			w = append(w, f.name)
		}
	}
	if e.Mark != 0 {
		w = append(w, "mark", fmt.Sprintf("0x%x", e.Mark))
	}
	if e.MTU != 0 {
		w = append(w, "mtu", fmt.Sprint(e.MTU))
	}
	if e.IIF != 0 {
		w = append(w, "iif", devName(e.IIF))
	}
	for _, h := range e.NextHops {
		w = append(w, "nexthop")
		if h.Gateway.IsValid() {
			w = append(w, "via", h.Gateway.String())
		}
		w = append(w, "dev", devName(h.OIF), "weight", fmt.Sprint(h.Weight))
	}
	if e.Pref >= 0 {
		w = append(w, "pref", routePrefName(e.Pref))
	}
	return strings.Join(w, " ")
}

func routePrefName(p int) string {
	switch p {
	case 0:
		return "medium"
	case 1:
		return "high"
	case 3:
		return "low"
	}
	return fmt.Sprint(p)
}

// bestRoute finds the route a table lookup returns for the flow, as the
// kernel's fib_table_lookup and fib6_lookup choose it: the longest
// destination prefix holding the address, then the lowest metric;
// routes with a TOS (the lookup has none), dead routes and IPv6 source
// routes whose source prefix does not hold the source are skipped.
func bestRoute(routes []routeEntry, table uint32, f ruleFlow) (routeEntry, bool) {
	best, found := routeEntry{}, false
	for _, e := range routes {
		if e.Table != table || e.TOS != 0 || e.Flags&(unix.RTNH_F_DEAD|unix.RTM_F_CLONED) != 0 {
			continue
		}
		if !prefixHolds(e.Dst, f.Dst) || (e.Src.IsValid() && e.Src.Bits() > 0 && !prefixHolds(e.Src, f.Src)) {
			continue
		}
		if !found || e.DstLen > best.DstLen || (e.DstLen == best.DstLen && e.Priority < best.Priority) {
			best, found = e, true
		}
	}
	return best, found
}

// prefixHolds: an invalid prefix is the default route, which holds
// every address.
func prefixHolds(p netip.Prefix, a netip.Addr) bool {
	if !p.IsValid() {
		return true
	}
	return a.IsValid() && p.Contains(a.Unmap())
}
