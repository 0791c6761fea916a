package filter

import (
	"fmt"
	"strings"

	"golang.org/x/net/bpf"
)

// String returns the program in the format of tcpdump -d, one instruction per
// line, for debugging.
func (p *Program) String() string {
	var b strings.Builder
	for pc, ri := range p.raw {
		b.WriteString(image(ri, pc))
		b.WriteByte('\n')
	}
	return b.String()
}

// mnemonics gives, for each raw opcode, its name and operand format as
// libpcap's bpf_image prints them.
var mnemonics = map[uint16][2]string{
	0x06: {"ret", "#%d"}, 0x16: {"ret", ""},
	0x20: {"ld", "[%d]"}, 0x28: {"ldh", "[%d]"}, 0x30: {"ldb", "[%d]"},
	0x80: {"ld", "#pktlen"},
	0x40: {"ld", "[x + %d]"}, 0x48: {"ldh", "[x + %d]"}, 0x50: {"ldb", "[x + %d]"},
	0x00: {"ld", "#0x%x"}, 0x01: {"ldx", "#0x%x"}, 0x81: {"ldx", "#pktlen"},
	0xb1: {"ldxb", "4*([%d]&0xf)"},
	0x60: {"ld", "M[%d]"}, 0x61: {"ldx", "M[%d]"},
	0x02: {"st", "M[%d]"}, 0x03: {"stx", "M[%d]"},
	0x05: {"ja", "%d"},
	0x25: {"jgt", "#0x%x"}, 0x35: {"jge", "#0x%x"}, 0x15: {"jeq", "#0x%x"}, 0x45: {"jset", "#0x%x"},
	0x2d: {"jgt", "x"}, 0x3d: {"jge", "x"}, 0x1d: {"jeq", "x"}, 0x4d: {"jset", "x"},
	0x0c: {"add", "x"}, 0x1c: {"sub", "x"}, 0x2c: {"mul", "x"}, 0x3c: {"div", "x"},
	0x9c: {"mod", "x"}, 0x5c: {"and", "x"}, 0x4c: {"or", "x"}, 0xac: {"xor", "x"},
	0x6c: {"lsh", "x"}, 0x7c: {"rsh", "x"},
	0x04: {"add", "#%d"}, 0x14: {"sub", "#%d"}, 0x24: {"mul", "#%d"}, 0x34: {"div", "#%d"},
	0x94: {"mod", "#%d"}, 0x54: {"and", "#0x%x"}, 0x44: {"or", "#0x%x"}, 0xa4: {"xor", "#0x%x"},
	0x64: {"lsh", "#%d"}, 0x74: {"rsh", "#%d"},
	0x84: {"neg", ""}, 0x07: {"tax", ""}, 0x87: {"txa", ""},
}

// image formats the instruction at pc like libpcap's bpf_image.
func image(ri bpf.RawInstruction, pc int) string {
	m, ok := mnemonics[ri.Op]
	if !ok {
		return fmt.Sprintf("(%03d) %-8s 0x%x", pc, "unimp", ri.Op)
	}
	var operand string
	switch {
	case ri.Op == 0x05: // ja prints its absolute target
		operand = fmt.Sprintf(m[1], int32(uint32(pc)+1+ri.K))
	case strings.Contains(m[1], "%x"):
		operand = fmt.Sprintf(m[1], ri.K)
	case strings.Contains(m[1], "%d"):
		operand = fmt.Sprintf(m[1], int32(ri.K)) // bpf_image prints k as an int
	default:
		operand = m[1]
	}
	if ri.Op&0x07 == 0x05 && ri.Op != 0x05 { // conditional jump
		return fmt.Sprintf("(%03d) %-8s %-16s jt %d\tjf %d", pc, m[0], operand, pc+1+int(ri.Jt), pc+1+int(ri.Jf))
	}
	return fmt.Sprintf("(%03d) %-8s %s", pc, m[0], operand)
}
