package nflog

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Names iproute2 prints for numbers, with the files it reads for more.
var (
	tableNames = nameTable{
		builtin: map[uint32]string{0: "unspec", 253: "default", 254: "main", 255: "local"},
		files:   iproute2Files("rt_tables"),
	}
	routeProtoNames = nameTable{
		builtin: map[uint32]string{
			0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static",
			8: "gated", 9: "ra", 10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted",
			14: "xorp", 15: "ntk", 16: "dhcp", 18: "keepalived", 42: "babel",
			99: "openr", 186: "bgp", 187: "isis", 188: "ospf", 189: "rip", 192: "eigrp",
		},
		files: iproute2Files("rt_protos"),
	}
	ipProtoNames = nameTable{
		builtin: map[uint32]string{
			1: "icmp", 2: "igmp", 4: "ipencap", 6: "tcp", 17: "udp", 41: "ipv6",
			47: "gre", 50: "esp", 51: "ah", 58: "ipv6-icmp", 132: "sctp", 136: "udplite",
		},
		files:      []string{"/etc/protocols"},
		nameFirst:  true,
		firstOnly:  true,
		unknownFmt: "ipproto-%d",
	}
)

// iproute2Files lists where iproute2 looks for a name file: /etc and
// /usr/share, each with its .d directory of *.conf files.
func iproute2Files(name string) []string {
	var files []string
	for _, dir := range []string{"/usr/share/iproute2", "/etc/iproute2"} {
		files = append(files, filepath.Join(dir, name))
		more, _ := filepath.Glob(filepath.Join(dir, name+".d", "*.conf"))
		files = append(files, more...)
	}
	return files
}

// nameTable maps numbers to names: built-in ones, then those the files
// give (read once; a missing file is skipped).
type nameTable struct {
	builtin    map[uint32]string
	files      []string
	nameFirst  bool   // lines are "name number" (/etc/protocols), not "number name"
	firstOnly  bool   // the first line for a number wins
	unknownFmt string // for a number without a name; default "%d"

	once  sync.Once
	names map[uint32]string
}

func (t *nameTable) name(n uint32) string {
	t.once.Do(t.load)
	if s, ok := t.names[n]; ok {
		return s
	}
	if t.unknownFmt != "" {
		return fmt.Sprintf(t.unknownFmt, n)
	}
	return strconv.FormatUint(uint64(n), 10)
}

func (t *nameTable) load() {
	t.names = make(map[uint32]string, len(t.builtin))
	for n, s := range t.builtin {
		t.names[n] = s
	}
	for _, file := range t.files {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		t.read(bufio.NewScanner(f))
		f.Close()
	}
}

func (t *nameTable) read(sc *bufio.Scanner) {
	seen := map[uint32]bool{}
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		num, name := fields[0], fields[1]
		if t.nameFirst {
			num, name = name, num
		}
		n, err := strconv.ParseUint(num, 0, 32)
		if err != nil || (t.firstOnly && seen[uint32(n)]) {
			continue
		}
		seen[uint32(n)] = true
		t.names[uint32(n)] = name
	}
}

// tableName names a routing table as iproute2 does: local, main,
// default, a name from rt_tables, or the number.
func tableName(id uint32) string { return tableNames.name(id) }

// routeProtoName names a route or rule protocol (proto kernel, boot).
func routeProtoName(p uint8) string { return routeProtoNames.name(uint32(p)) }

// ipProtoName names an IP protocol as `ip rule` does (/etc/protocols).
func ipProtoName(p uint8) string { return ipProtoNames.name(uint32(p)) }

// scopeName names a route scope as iproute2 does.
func scopeName(s uint8) string {
	switch s {
	case 0:
		return "global"
	case 200:
		return "site"
	case 253:
		return "link"
	case 254:
		return "host"
	case 255:
		return "nowhere"
	}
	return strconv.Itoa(int(s))
}

var routeTypeNames = []string{
	"unspec", "unicast", "local", "broadcast", "anycast", "multicast",
	"blackhole", "unreachable", "prohibit", "throw", "nat", "xresolve",
}

// routeTypeName names a route type (RTN_*) as iproute2 does.
func routeTypeName(t uint8) string {
	if int(t) < len(routeTypeNames) {
		return routeTypeNames[t]
	}
	return strconv.Itoa(int(t))
}
