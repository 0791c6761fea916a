package main

// Differential tests: hooktrace against tshark (decoding) and against
// tcpdump (filtering), over every well-formed capture of fixtures/.
//
// TestTsharkDifferential compares, packet by packet, what both tools found:
// the protocol stack, the IP addresses and ports of every header outer to
// inner (tunnels and ICMP-quoted packets included), VXLAN and Geneve VNIs,
// GRE protocol types and ARP addresses. TestTsharkDifferentialFilter checks
// that a filter expression keeps the same packets in hooktrace as in tcpdump.
//
// Both need the external tools: without them the tests skip, except on CI
// (the environment variable CI set), where they fail.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// fixturesDir holds the captures, relative to this package.
var fixturesDir = filepath.Join("..", "..", "fixtures")

// brokenPrefixes name the deliberately broken fixtures, which the two tools
// are not expected to read alike.
var brokenPrefixes = []string{"malformed", "truncated", "not-a-capture", "empty", "unknown-linktype", "corrupt"}

// tsharkArgs are the options given to tshark before -r: no name resolution,
// no reassembly (hooktrace decodes each packet alone), and the ports on
// which hooktrace decodes a protocol that tshark does not look for there.
var tsharkArgs = []string{
	"-n",
	"-o", "ip.defragment:FALSE",
	"-o", "ipv6.defragment:FALSE",
	"-o", "tcp.desegment_tcp_streams:FALSE",
	"-d", "udp.port==8472,vxlan", // Linux's VXLAN port
	"-d", "udp.port==51820,wg", // WireGuard's usual port
}

// tsharkFields are the fields tshark prints, in this order.
var tsharkFields = []string{
	"frame.number", "frame.protocols",
	"ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
	"tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "sctp.srcport", "sctp.dstport",
	"vxlan.vni", "geneve.vni", "gre.proto",
	"arp.src.proto_ipv4", "arp.dst.proto_ipv4",
}

// tsharkProtos maps tshark's frame.protocols names to hooktrace's "proto"
// values. Names not listed (frame, ethertype, data, null, raw, the
// protocols hooktrace does not decode) are dropped from the stack.
var tsharkProtos = map[string]string{
	"eth":          "eth",
	"sll":          "sll", // tshark calls both cooked versions sll
	"nflog":        "nflog",
	"arp":          "arp",
	"vlan":         "vlan",
	"ieee8021ad":   "vlan", // 802.1ad S-tag: hooktrace decodes it as a VLAN tag
	"mpls":         "mpls",
	"ip":           "ipv4",
	"ipv6":         "ipv6",
	"ipv6.hopopts": "ipv6-hop",
	"ipv6.routing": "ipv6-ext",
	"ipv6.dstopts": "ipv6-opts",
	"ipv6.fraghdr": "ipv6-frag",
	"icmp":         "icmp",
	"icmpv6":       "icmpv6",
	"tcp":          "tcp",
	"udp":          "udp",
	"sctp":         "sctp",
	"dns":          "dns",
	"mdns":         "dns", // hooktrace decodes DNS on 5353 and 5355 too
	"llmnr":        "dns",
	"vxlan":        "vxlan",
	"geneve":       "geneve",
	"gre":          "gre",
	"wg":           "wireguard",
	"tls":          "tls",
	"http":         "http",
}

// hooktraceProtos maps hooktrace protos whose tshark counterpart has
// another name or none.
var hooktraceProtos = map[string]string{
	"sll2":     "sll",
	"loopback": "", // tshark's null/loop, dropped on both sides
}

// diffException accepts one known, documented difference between tshark
// and hooktrace: for packet n of file, field reads exactly tshark in tshark
// and exactly hooktrace in hooktrace. An exception that no longer matches a
// difference fails the test, so the list cannot go stale.
type diffException struct {
	file      string
	n         int
	field     string
	tshark    string
	hooktrace string
	why       string
}

// diffExceptions are the differences hooktrace documents. Keep each one
// explicit, with its reason; no blanket skips.
var diffExceptions = []diffException{
	// hooktrace decodes TLS only as far as a ClientHello, which says where
	// a connection goes (decode/tls.go); tshark calls every segment on
	// port 443 TLS, whatever it holds.
	{"tls-sni.pcap", 6, "protocols", "eth ipv4 tcp tls", "eth ipv4 tcp",
		"ServerHello and ChangeCipherSpec from the server: not a ClientHello"},
	{"icmp.pcap", 9, "protocols", "eth ipv4 tcp tls", "eth ipv4 tcp",
		"1460 bytes to port 443 that are no TLS record (tshark: Continuation Data)"},
	{"nanosecond.pcap", 9, "protocols", "eth ipv4 tcp tls", "eth ipv4 tcp",
		"the icmp.pcap packets again: as icmp.pcap packet 9"},
	// hooktrace does not decode the payload of a packet quoted by an ICMP
	// error (it is cut short: decode/wrappers.go); tshark does, by port.
	{"icmp.pcap", 10, "protocols", "eth ipv4 icmp ipv4 tcp tls", "eth ipv4 icmp ipv4 tcp",
		"fragmentation needed quoting the 443 segment of packet 9"},
	{"nanosecond.pcap", 10, "protocols", "eth ipv4 icmp ipv4 tcp tls", "eth ipv4 icmp ipv4 tcp",
		"the icmp.pcap packets again: as icmp.pcap packet 10"},
}

// view is what one tool found in one packet, each field as a comparable
// string. Lists are outer to inner.
type view struct {
	protos string // protocol stack, "eth ipv4 udp dns"
	ips    string // "v4 10.0.0.1>10.0.0.2 v6 fd42::1>fd42::2", one pair per IP header
	ports  string // "tcp 47000>80 udp 1>2", one pair per transport header
	vxlan  string // VNIs, "42,42"
	geneve string
	gre    string // protocol types, "0x0800"
	arp    string // "10.0.0.1>10.0.0.2" per ARP header
}

var viewFields = []struct {
	name string
	get  func(*view) string
}{
	{"protocols", func(v *view) string { return v.protos }},
	{"ip addresses", func(v *view) string { return v.ips }},
	{"ports", func(v *view) string { return v.ports }},
	{"vxlan vni", func(v *view) string { return v.vxlan }},
	{"geneve vni", func(v *view) string { return v.geneve }},
	{"gre proto", func(v *view) string { return v.gre }},
	{"arp addresses", func(v *view) string { return v.arp }},
}

// needTool returns the path of an external tool, or skips the test when it
// is missing outside CI (and fails it on CI).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if _, ci := os.LookupEnv("CI"); !ci {
		t.Skipf("%s not installed (apt-get install -y tshark tcpdump): %v", name, err)
	}
	t.Fatalf("%s not installed, and CI is set: the differential tests must run on CI: %v", name, err)
	return ""
}

// wellFormedFixtures lists fixtures/*.pcap and *.pcapng except the broken ones.
func wellFormedFixtures(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.pcap", "*.pcapng"} {
		m, err := filepath.Glob(filepath.Join(fixturesDir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	files = slices.DeleteFunc(files, func(f string) bool {
		base := filepath.Base(f)
		for _, p := range brokenPrefixes {
			if strings.HasPrefix(base, p) {
				return true
			}
		}
		return false
	})
	if len(files) == 0 {
		t.Fatalf("no captures in %s: run go run ./fixtures/gen from the repository root", fixturesDir)
	}
	return files
}

func TestTsharkDifferential(t *testing.T) {
	tshark := needTool(t, "tshark")
	files := wellFormedFixtures(t)

	var mu sync.Mutex
	used := make([]bool, len(diffExceptions))
	failed := map[string]bool{} // files whose comparison failed
	t.Run("files", func(t *testing.T) {
		for _, file := range files {
			t.Run(filepath.Base(file), func(t *testing.T) {
				t.Parallel()
				defer func() {
					if t.Failed() {
						mu.Lock()
						failed[filepath.Base(file)] = true
						mu.Unlock()
					}
				}()
				ts := tsharkViews(t, tshark, file)
				ht := hooktraceViews(t, file)
				if len(ts) != len(ht) {
					t.Errorf("%s: packet count: tshark %d, hooktrace %d", filepath.Base(file), len(ts), len(ht))
				}
				for i := 0; i < min(len(ts), len(ht)); i++ {
					if ts[i].n != ht[i].n {
						t.Fatalf("%s: record %d: tshark packet number %d, hooktrace %d", filepath.Base(file), i+1, ts[i].n, ht[i].n)
					}
					for _, f := range viewFields {
						tv, hv := f.get(&ts[i].v), f.get(&ht[i].v)
						if tv == hv {
							continue
						}
						if k := findException(filepath.Base(file), ts[i].n, f.name, tv, hv); k >= 0 {
							mu.Lock()
							used[k] = true
							mu.Unlock()
							continue
						}
						t.Errorf("%s packet %d: %s differ\n\ttshark:    %q\n\thooktrace: %q",
							filepath.Base(file), ts[i].n, f.name, tv, hv)
					}
				}
			})
		}
	})
	present := map[string]bool{}
	for _, f := range files {
		present[filepath.Base(f)] = true
	}
	for k, e := range diffExceptions {
		// A file that failed may have stopped before the exception's packet.
		if !used[k] && present[e.file] && !failed[e.file] {
			t.Errorf("exception for %s packet %d %s (tshark %q, hooktrace %q) matches no difference any more: remove or update it",
				e.file, e.n, e.field, e.tshark, e.hooktrace)
		}
	}
}

func findException(file string, n int, field, tv, hv string) int {
	for k, e := range diffExceptions {
		if e.file == file && e.n == n && e.field == field && e.tshark == tv && e.hooktrace == hv {
			return k
		}
	}
	return -1
}

type numberedView struct {
	n int
	v view
}

// runTool runs a command and returns its standard output; it fails the
// test on a non-zero exit.
func runTool(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// tsharkViews runs tshark over file and returns a view per packet.
func tsharkViews(t *testing.T, tshark, file string) []numberedView {
	t.Helper()
	args := append(slices.Clone(tsharkArgs), "-r", file, "-T", "fields",
		"-E", "occurrence=a", "-E", "aggregator=,", "-E", "separator=/t")
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	out := runTool(t, tshark, args...)
	var views []numberedView
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != len(tsharkFields) {
			t.Fatalf("%s: tshark printed %d columns, want %d: %q", filepath.Base(file), len(cols), len(tsharkFields), sc.Text())
		}
		col := map[string][]string{}
		for i, f := range tsharkFields {
			if cols[i] != "" {
				col[f] = strings.Split(cols[i], ",")
			}
		}
		n, err := strconv.Atoi(cols[0])
		if err != nil {
			t.Fatalf("%s: tshark frame number %q: %v", filepath.Base(file), cols[0], err)
		}
		views = append(views, numberedView{n, tsharkView(col)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return views
}

// tsharkView builds a view from tshark's fields. The protocol stack orders
// the address and port fields, which tshark prints field by field: each
// "ip" in frame.protocols takes the next ip.src and ip.dst, and so on.
func tsharkView(col map[string][]string) view {
	var v view
	next := map[string]int{}
	take := func(field string) string {
		vals := col[field]
		i := next[field]
		if i >= len(vals) {
			return "?"
		}
		next[field]++
		return vals[i]
	}
	var protos, ips, ports []string
	for _, p := range strings.Split(strings.Join(col["frame.protocols"], ","), ":") {
		name, ok := tsharkProtos[p]
		if !ok {
			continue
		}
		protos = append(protos, name)
		switch name {
		case "ipv4":
			ips = append(ips, "v4 "+take("ip.src")+">"+take("ip.dst"))
		case "ipv6":
			ips = append(ips, "v6 "+take("ipv6.src")+">"+take("ipv6.dst"))
		case "tcp", "udp", "sctp":
			ports = append(ports, name+" "+take(name+".srcport")+">"+take(name+".dstport"))
		}
	}
	// Values no protocol took (there should be none) are shown at the end.
	for _, f := range []struct{ src, dst, label string }{
		{"ip.src", "ip.dst", "v4"}, {"ipv6.src", "ipv6.dst", "v6"},
	} {
		for next[f.src] < len(col[f.src]) || next[f.dst] < len(col[f.dst]) {
			ips = append(ips, "unclaimed "+f.label+" "+take(f.src)+">"+take(f.dst))
		}
	}
	for _, p := range []string{"tcp", "udp", "sctp"} {
		for next[p+".srcport"] < len(col[p+".srcport"]) || next[p+".dstport"] < len(col[p+".dstport"]) {
			ports = append(ports, "unclaimed "+p+" "+take(p+".srcport")+">"+take(p+".dstport"))
		}
	}
	v.protos = strings.Join(protos, " ")
	v.ips = strings.Join(ips, " ")
	v.ports = strings.Join(ports, " ")
	v.vxlan = normDecimal(col["vxlan.vni"])
	v.geneve = normDecimal(col["geneve.vni"]) // tshark prints Geneve's in hex
	var gre []string
	for _, s := range col["gre.proto"] {
		gre = append(gre, normHex(s))
	}
	v.gre = strings.Join(gre, ",")
	var arp []string
	for i := range col["arp.src.proto_ipv4"] {
		d := "?"
		if i < len(col["arp.dst.proto_ipv4"]) {
			d = col["arp.dst.proto_ipv4"][i]
		}
		arp = append(arp, col["arp.src.proto_ipv4"][i]+">"+d)
	}
	v.arp = strings.Join(arp, " ")
	return v
}

// normDecimal writes numbers given in decimal or 0x-hex in decimal, joined by commas.
func normDecimal(vals []string) string {
	out := make([]string, len(vals))
	for i, s := range vals {
		out[i] = s
		if n, err := strconv.ParseUint(s, 0, 64); err == nil {
			out[i] = strconv.FormatUint(n, 10)
		}
	}
	return strings.Join(out, ",")
}

// normHex writes a number given in decimal or 0x-hex as 0x%04x.
func normHex(s string) string {
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return s
	}
	return fmt.Sprintf("0x%04x", n)
}

// jsonRecord is the part of a hooktrace --json record the tests read.
type jsonRecord struct {
	Type   string      `json:"type"`
	N      int         `json:"n"`
	Time   string      `json:"time"`
	Layers []jsonLayer `json:"layers"`
}

type jsonLayer struct {
	Proto string          `json:"proto"`
	Src   string          `json:"src"`
	Dst   string          `json:"dst"`
	Sport *uint64         `json:"sport"`
	Dport *uint64         `json:"dport"`
	VNI   *uint64         `json:"vni"`
	Type  json.RawMessage `json:"type"` // "0x0800" for gre; a number for icmp
	Error string          `json:"error"`
}

// hooktraceRecords runs hooktrace --json over file and returns its packet
// records.
func hooktraceRecords(t *testing.T, file string) []jsonRecord {
	t.Helper()
	return parseRecords(t, file, runTool(t, hooktraceBin, "--json", "-r", file))
}

// parseRecords returns the packet records of hooktrace's NDJSON output.
func parseRecords(t *testing.T, file string, out []byte) []jsonRecord {
	t.Helper()
	var recs []jsonRecord
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var r jsonRecord
		if err := dec.Decode(&r); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("hooktrace --json -r %s: bad NDJSON after %d records: %v", filepath.Base(file), len(recs), err)
		}
		if r.Type == "packet" {
			recs = append(recs, r)
		}
	}
	return recs
}

// hooktraceViews runs hooktrace --json over file and returns a view per packet.
func hooktraceViews(t *testing.T, file string) []numberedView {
	t.Helper()
	var views []numberedView
	for _, r := range hooktraceRecords(t, file) {
		views = append(views, numberedView{r.N, hooktraceView(r.Layers)})
	}
	return views
}

func hooktraceView(layers []jsonLayer) view {
	var protos, ips, ports, vxlan, geneve, gre, arp []string
	port := func(p *uint64) string {
		if p == nil {
			return "?"
		}
		return strconv.FormatUint(*p, 10)
	}
	for _, l := range layers {
		name := l.Proto
		if m, ok := hooktraceProtos[name]; ok {
			name = m
		}
		// tshark shows a label stack as one mpls protocol, hooktrace
		// one layer per label.
		if name != "" && (name != "mpls" || len(protos) == 0 || protos[len(protos)-1] != "mpls") {
			protos = append(protos, name)
		}
		switch l.Proto {
		case "ipv4", "ipv6":
			if l.Src != "" {
				ips = append(ips, "v"+l.Proto[3:]+" "+l.Src+">"+l.Dst)
			}
		case "tcp", "udp", "sctp":
			if l.Sport != nil {
				ports = append(ports, l.Proto+" "+port(l.Sport)+">"+port(l.Dport))
			}
		case "vxlan":
			if l.VNI != nil {
				vxlan = append(vxlan, port(l.VNI))
			}
		case "geneve":
			if l.VNI != nil {
				geneve = append(geneve, port(l.VNI))
			}
		case "gre":
			var s string
			if json.Unmarshal(l.Type, &s) == nil {
				gre = append(gre, normHex(s))
			}
		case "arp":
			if l.Src != "" {
				arp = append(arp, l.Src+">"+l.Dst)
			}
		}
	}
	return view{
		protos: strings.Join(protos, " "),
		ips:    strings.Join(ips, " "),
		ports:  strings.Join(ports, " "),
		vxlan:  strings.Join(vxlan, ","),
		geneve: strings.Join(geneve, ","),
		gre:    strings.Join(gre, ","),
		arp:    strings.Join(arp, " "),
	}
}

// filterExprs are checked against tcpdump on every well-formed fixture.
var filterExprs = []string{
	"tcp",
	"udp",
	"udp port 53",
	"vlan",
	"icmp",
	"icmp6",
	"not arp",
	"host 10.0.0.1",
	"ip6",
	"tcp[tcpflags] & tcp-syn != 0",
	"ip proto 47",
	"udp port 4789 or udp port 8472",
	"greater 200", // the length on the wire: an NFLOG message's packet by its IP header
}

// tcpdumpLine matches the time stamp that starts each packet's line.
var tcpdumpLine = regexp.MustCompile(`^(\d+\.\d{9}) `)

func TestTsharkDifferentialFilter(t *testing.T) {
	tcpdump := needTool(t, "tcpdump")
	files := wellFormedFixtures(t)
	var mu sync.Mutex
	kept := map[string]int{} // packets tcpdump keeps, over all files
	t.Run("files", func(t *testing.T) {
		for _, file := range files {
			t.Run(filepath.Base(file), func(t *testing.T) {
				t.Parallel()
				parts := splitByLinkType(t, file)
				for _, expr := range filterExprs {
					want, refused := tcpdumpKeeps(t, tcpdump, parts, expr)
					recs, stderr := hooktraceFiltered(t, file, expr)
					var got []string
					for _, r := range recs {
						ts, err := time.Parse(time.RFC3339Nano, r.Time)
						if err != nil {
							t.Fatalf("%s: hooktrace packet %d: time %q: %v", filepath.Base(file), r.N, r.Time, err)
						}
						got = append(got, fmt.Sprintf("%d.%09d", ts.Unix(), ts.Nanosecond()))
					}
					sort.Strings(got)
					mu.Lock()
					kept[expr] += len(want)
					mu.Unlock()
					if !slices.Equal(got, want) {
						t.Errorf("%s: filter %q: tcpdump keeps %d packets, hooktrace %d\n\ttcpdump only:   %v\n\thooktrace only: %v",
							filepath.Base(file), expr, len(want), len(got), minus(want, got), minus(got, want))
					}
					// Where libpcap refuses the expression for a link type,
					// hooktrace skips that link type's packets and says so.
					if refused != "" && !strings.Contains(stderr, "warning") {
						t.Errorf("%s: filter %q: libpcap refuses it (%s) but hooktrace gives no warning; stderr: %q",
							filepath.Base(file), expr, refused, stderr)
					}
				}
			})
		}
	})
	// An expression that keeps nothing anywhere tests nothing.
	for _, expr := range filterExprs {
		if kept[expr] == 0 && !t.Failed() {
			t.Errorf("filter %q keeps no packet of any fixture: choose another", expr)
		}
	}
}

// hooktraceFiltered runs hooktrace --json -r file expr and returns its
// packet records and standard error.
func hooktraceFiltered(t *testing.T, file, expr string) ([]jsonRecord, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(hooktraceBin, "--json", "-r", file, expr)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hooktrace --json -r %s %q: %v\n%s", filepath.Base(file), expr, err, stderr.Bytes())
	}
	return parseRecords(t, file, stdout.Bytes()), stderr.String()
}

// tcpdumpKeeps returns the sorted time stamps of the packets tcpdump keeps
// from the parts of a capture. A part for whose link type libpcap refuses
// the expression keeps nothing; refused then says why.
func tcpdumpKeeps(t *testing.T, tcpdump string, parts []string, expr string) (times []string, refused string) {
	t.Helper()
	for _, part := range parts {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(tcpdump, "-nn", "-tt", "--time-stamp-precision=nano", "-r", part, expr)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			// libpcap compiles the expression before it reads a packet:
			// an error with no packet printed and no read error is a
			// refusal ("no VLAN support for Raw IP").
			msg := strings.TrimSpace(stderr.String())
			if stdout.Len() != 0 || strings.Contains(msg, "pcap_loop") || !strings.Contains(msg, "tcpdump: ") {
				t.Fatalf("tcpdump -r %s %q: %v\n%s", part, expr, err, msg)
			}
			refused = msg[strings.LastIndex(msg, "tcpdump: "):]
			continue
		}
		sc := bufio.NewScanner(&stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			if m := tcpdumpLine.FindStringSubmatch(sc.Text()); m != nil {
				times = append(times, m[1])
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(times)
	return times, refused
}

// splitByLinkType returns the file as tcpdump can filter it as hooktrace
// does: the file itself when all its packets have one link type other
// than NFLOG. libpcap cannot read a pcapng whose interfaces have
// different link types, so such a file is split, with gopacket's reader,
// into one nanosecond pcap per link type in a temporary directory; and
// it cannot filter NFLOG messages (it refuses any protocol filter for
// them), which hooktrace filters by the packet they carry: their payloads
// go into a raw IP pcap, with their times.
func splitByLinkType(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var fileLink layers.LinkType
	if strings.HasSuffix(file, ".pcapng") {
		r, err = pcapgo.NewNgReader(f, pcapgo.NgReaderOptions{WantMixedLinkType: true})
	} else {
		var pr *pcapgo.Reader
		pr, err = pcapgo.NewReader(f)
		if pr != nil {
			r, fileLink = pr, pr.LinkType()
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	type frame struct {
		ci   gopacket.CaptureInfo
		data []byte
	}
	byLink := map[layers.LinkType][]frame{}
	var order []layers.LinkType
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		lt := fileLink
		if len(ci.AncillaryData) > 0 {
			lt = ci.AncillaryData[0].(layers.LinkType)
		}
		if lt == linkTypeNFLOG {
			lt, data = layers.LinkTypeRaw, nflogPayload(t, data)
		}
		if _, seen := byLink[lt]; !seen {
			order = append(order, lt)
		}
		byLink[lt] = append(byLink[lt], frame{ci, data})
	}
	if len(order) <= 1 && !slices.Contains(order, layers.LinkTypeRaw) || len(order) == 0 {
		return []string{file}
	}
	dir := t.TempDir()
	var parts []string
	for _, lt := range order {
		name := filepath.Join(dir, fmt.Sprintf("%s.linktype%d.pcap", filepath.Base(file), int(lt)))
		out, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w := pcapgo.NewWriterNanos(out)
		if err := w.WriteFileHeader(262144, lt); err != nil {
			t.Fatal(err)
		}
		for _, fr := range byLink[lt] {
			fr.ci.AncillaryData = nil
			fr.ci.CaptureLength, fr.ci.Length = len(fr.data), max(fr.ci.Length, len(fr.data))
			if lt == layers.LinkTypeRaw {
				// An NFLOG message's packet, as hooktrace gives the
				// filter: as long as its IP header says (NFLOG may copy
				// only the start).
				fr.ci.Length = len(fr.data)
				if d := fr.data; len(d) >= 20 && d[0]>>4 == 4 {
					fr.ci.Length = max(len(d), int(d[2])<<8|int(d[3]))
				} else if len(d) >= 40 && d[0]>>4 == 6 {
					fr.ci.Length = max(len(d), 40+(int(d[4])<<8|int(d[5])))
				}
			}
			if err := w.WritePacket(fr.ci, fr.data); err != nil {
				t.Fatal(err)
			}
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, name)
	}
	return parts
}

// linkTypeNFLOG is LINKTYPE_NFLOG, which gopacket does not name.
const linkTypeNFLOG layers.LinkType = 239

// nflogPayload returns the packet an NFLOG message carries (its
// NFULA_PAYLOAD attribute), read here on its own: a 4-byte header, then
// attributes of a 2-byte length (the attribute's, header included) and a
// 2-byte type in the capturing host's order (little-endian here), each
// padded to 4 bytes.
func nflogPayload(t *testing.T, msg []byte) []byte {
	const payloadType = 9
	b := msg[min(4, len(msg)):]
	for len(b) >= 4 {
		n, typ := int(b[0])|int(b[1])<<8, int(b[2])|int(b[3])<<8
		if n < 4 || n > len(b) {
			break
		}
		if typ&0x7fff == payloadType {
			return b[4:n]
		}
		b = b[min(len(b), (n+3)&^3):]
	}
	t.Logf("NFLOG message without a payload: % x", msg)
	return nil
}

// minus returns the members of a (sorted, with repeats) not matched in b.
func minus(a, b []string) []string {
	count := map[string]int{}
	for _, s := range b {
		count[s]++
	}
	var out []string
	for _, s := range a {
		if count[s] > 0 {
			count[s]--
			continue
		}
		out = append(out, s)
	}
	return out
}
