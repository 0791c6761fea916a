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

// image formats the instruction at pc like libpcap's bpf_image.
func image(ri bpf.RawInstruction, pc int) string {
	info, ok := opcodes[ri.Op]
	if !ok {
		return fmt.Sprintf("(%03d) %-8s 0x%x", pc, "unimp", ri.Op)
	}
	var operand string
	switch {
	case info.op == opJa: // ja prints its target
		operand = fmt.Sprintf(info.operand, int32(uint32(pc)+1+ri.K))
	case strings.Contains(info.operand, "%x"):
		operand = fmt.Sprintf(info.operand, ri.K)
	case strings.Contains(info.operand, "%d"):
		operand = fmt.Sprintf(info.operand, int32(ri.K)) // bpf_image prints k as an int
	default:
		operand = info.operand
	}
	if info.op >= opJeqK && info.op <= opJsetX { // conditional jump
		return fmt.Sprintf("(%03d) %-8s %-16s jt %d\tjf %d", pc, info.name, operand, pc+1+int(ri.Jt), pc+1+int(ri.Jf))
	}
	return fmt.Sprintf("(%03d) %-8s %s", pc, info.name, operand)
}
