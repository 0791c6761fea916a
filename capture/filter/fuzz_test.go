package filter

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

var update = flag.Bool("update", false, "rewrite the libpcap seeds in testdata/fuzz/FuzzMatch")

// FuzzMatch runs fuzzed programs, checked by the same validator as libpcap's,
// on fuzzed packets: Match must never panic or hang, and must agree with
// golang.org/x/net/bpf's VM wherever that VM can run the program.
func FuzzMatch(f *testing.F) {
	f.Add(rawToBytes([]bpf.RawInstruction{{Op: 0x06, K: 1}}), []byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, prog, data []byte, extra uint16) {
		raw := bytesToRaw(prog)
		p, err := newProgram(raw)
		if err != nil {
			return
		}
		p.Match(data, len(data)+int(extra))
		got := p.Match(data, len(data))
		if want, ok := xnetMatch(raw, data); ok && got != want {
			t.Fatalf("Match = %v, x/net/bpf VM = %v on %x; program:\n%s", got, want, data, p)
		}
	})
}

// bytesToRaw reads a program as consecutive 8-byte struct sock_filter
// records, little endian; a trailing partial record is dropped.
func bytesToRaw(b []byte) []bpf.RawInstruction {
	raw := make([]bpf.RawInstruction, len(b)/8)
	for i := range raw {
		r := b[i*8:]
		raw[i] = bpf.RawInstruction{Op: binary.LittleEndian.Uint16(r), Jt: r[2], Jf: r[3], K: binary.LittleEndian.Uint32(r[4:])}
	}
	return raw
}

// rawToBytes is the inverse of bytesToRaw.
func rawToBytes(raw []bpf.RawInstruction) []byte {
	b := make([]byte, 0, 8*len(raw))
	for _, ri := range raw {
		b = binary.LittleEndian.AppendUint16(b, ri.Op)
		b = append(b, ri.Jt, ri.Jf)
		b = binary.LittleEndian.AppendUint32(b, ri.K)
	}
	return b
}

// xnetMatch runs raw in golang.org/x/net/bpf's VM. ok is false for programs
// that VM cannot run as libpcap would: those with neg, a backward jump, an
// ancillary load (k >= 0xfffff000), or ldx #pktlen, which it disassembles
// as a load into A.
func xnetMatch(raw []bpf.RawInstruction, data []byte) (accept, ok bool) {
	ins := make([]bpf.Instruction, len(raw))
	for i, ri := range raw {
		switch {
		case ri.Op == 0x84, ri.Op == 0x81, ri.Op == 0x05 && int32(ri.K) < 0:
			return false, false
		case (ri.Op == 0x20 || ri.Op == 0x28 || ri.Op == 0x30) && ri.K >= 0xfffff000:
			return false, false
		}
		ins[i] = ri.Disassemble()
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		return false, false
	}
	n, err := vm.Run(data)
	if err != nil {
		return false, false
	}
	return n > 0, true
}

// fuzzSeeds are the programs libpcap compiles for these expressions, each
// run on the first packet of the Ethernet corpus whose name starts so, for
// the FuzzMatch seed corpus.
var fuzzSeeds = []struct {
	name, expr, packet string
}{
	{"tcp-port-443", benchExpr, "ipv4 tcp"},
	{"vlan-and-tcp", "vlan and tcp", "802.1q ipv4 tcp"},
	{"protochain", "ip6 protochain 6", "ipv6 hop-by-hop tcp"},
	{"http-get", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420", "ipv4 http get"},
	{"alu", "ip[2:2] / (ip[8] - 64) > 1 and ip[2:2] % ip[9] = 0 and -ip[8] & 0xff > 3", "ipv4 udp"},
	{"mpls-icmp", "mpls and icmp[icmptype] == icmp-echo", "mpls ipv4 icmp"},
	{"greater", "greater 200 or ether broadcast", "truncated"},
}

// TestFuzzSeeds checks that every seed in testdata/fuzz/FuzzMatch holds a
// valid program; with -update it first rewrites the libpcap seeds.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzMatch")
	if *update {
		writeFuzzSeeds(t, dir)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) < len(fuzzSeeds) {
		t.Fatalf("found %d seed files in %s (%v), want at least %d; run go test -run TestFuzzSeeds -update", len(files), dir, err, len(fuzzSeeds))
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 4 || lines[0] != "go test fuzz v1" {
			t.Errorf("%s: not a FuzzMatch seed", file)
			continue
		}
		prog, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Errorf("%s: program: %v", file, err)
			continue
		}
		if _, err := newProgram(bytesToRaw([]byte(prog))); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}

func writeFuzzSeeds(t *testing.T, dir string) {
	pkts := ethernetCorpus(t)
	for _, s := range fuzzSeeds {
		p, err := Compile(s.expr, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(pkts, func(p testPacket) bool { return strings.HasPrefix(p.name, s.packet) })
		if i < 0 {
			t.Fatalf("no %q packet in the corpus", s.packet)
		}
		pkt := pkts[i]
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\nuint16(%d)\n",
			rawToBytes(p.Instructions()), pkt.data, pkt.wireLen-len(pkt.data))
		if err := os.WriteFile(filepath.Join(dir, "libpcap-"+s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	loop := []bpf.RawInstruction{{Op: 0x05, K: 0xffffffff}, {Op: 0x06, K: 1}} // ja to itself
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\nuint16(0)\n", rawToBytes(loop), []byte{})
	if err := os.WriteFile(filepath.Join(dir, "endless-loop"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
