package filter

import (
	"errors"
	"fmt"

	"golang.org/x/net/bpf"
)

// Limits of classic BPF, as the kernel and libpcap define them.
const (
	maxInsns = 4096 // BPF_MAXINSNS
	memWords = 16   // BPF_MEMWORDS, the scratch memory M[0..15]
)

// opcode is the interpreter's dense numbering of the classic BPF
// instructions, so that Match's switch compiles to a jump table.
type opcode uint8

// The instructions Match runs; opcodes gives their raw codes.
const (
	opLdAbsW opcode = iota
	opLdAbsH
	opLdAbsB
	opLdIndW
	opLdIndH
	opLdIndB
	opLdLen
	opLdImm
	opLdMem
	opLdxImm
	opLdxMem
	opLdxLen
	opLdxMsh
	opSt
	opStx
	opAddK
	opSubK
	opMulK
	opDivK
	opOrK
	opAndK
	opLshK
	opRshK
	opNeg
	opModK
	opXorK
	opAddX
	opSubX
	opMulX
	opDivX
	opOrX
	opAndX
	opLshX
	opRshX
	opModX
	opXorX
	opJa
	opJeqK
	opJgtK
	opJgeK
	opJsetK
	opJeqX
	opJgtX
	opJgeX
	opJsetX
	opRetK
	opRetA
	opTax
	opTxa
)

// opInfo is what the package knows of one raw opcode: the interpreter's
// opcode, and the mnemonic and operand format libpcap's bpf_image prints.
type opInfo struct {
	op            opcode
	name, operand string
}

// opcodes holds every raw opcode libpcap and the kernel accept; decode
// refuses the others.
var opcodes = map[uint16]opInfo{
	0x20: {opLdAbsW, "ld", "[%d]"},
	0x28: {opLdAbsH, "ldh", "[%d]"},
	0x30: {opLdAbsB, "ldb", "[%d]"},
	0x40: {opLdIndW, "ld", "[x + %d]"},
	0x48: {opLdIndH, "ldh", "[x + %d]"},
	0x50: {opLdIndB, "ldb", "[x + %d]"},
	0x80: {opLdLen, "ld", "#pktlen"},
	0x00: {opLdImm, "ld", "#0x%x"},
	0x60: {opLdMem, "ld", "M[%d]"},
	0x01: {opLdxImm, "ldx", "#0x%x"},
	0x61: {opLdxMem, "ldx", "M[%d]"},
	0x81: {opLdxLen, "ldx", "#pktlen"},
	0xb1: {opLdxMsh, "ldxb", "4*([%d]&0xf)"},
	0x02: {opSt, "st", "M[%d]"},
	0x03: {opStx, "stx", "M[%d]"},
	0x04: {opAddK, "add", "#%d"},
	0x14: {opSubK, "sub", "#%d"},
	0x24: {opMulK, "mul", "#%d"},
	0x34: {opDivK, "div", "#%d"},
	0x44: {opOrK, "or", "#0x%x"},
	0x54: {opAndK, "and", "#0x%x"},
	0x64: {opLshK, "lsh", "#%d"},
	0x74: {opRshK, "rsh", "#%d"},
	0x84: {opNeg, "neg", ""},
	0x94: {opModK, "mod", "#%d"},
	0xa4: {opXorK, "xor", "#0x%x"},
	0x0c: {opAddX, "add", "x"},
	0x1c: {opSubX, "sub", "x"},
	0x2c: {opMulX, "mul", "x"},
	0x3c: {opDivX, "div", "x"},
	0x4c: {opOrX, "or", "x"},
	0x5c: {opAndX, "and", "x"},
	0x6c: {opLshX, "lsh", "x"},
	0x7c: {opRshX, "rsh", "x"},
	0x9c: {opModX, "mod", "x"},
	0xac: {opXorX, "xor", "x"},
	0x05: {opJa, "ja", "%d"},
	0x15: {opJeqK, "jeq", "#0x%x"},
	0x25: {opJgtK, "jgt", "#0x%x"},
	0x35: {opJgeK, "jge", "#0x%x"},
	0x45: {opJsetK, "jset", "#0x%x"},
	0x1d: {opJeqX, "jeq", "x"},
	0x2d: {opJgtX, "jgt", "x"},
	0x3d: {opJgeX, "jge", "x"},
	0x4d: {opJsetX, "jset", "x"},
	0x06: {opRetK, "ret", "#%d"},
	0x16: {opRetA, "ret", ""},
	0x07: {opTax, "tax", ""},
	0x87: {opTxa, "txa", ""},
}

// insn is one decoded instruction; jt and jf are relative, as in raw BPF.
type insn struct {
	op     opcode
	jt, jf uint8
	k      uint32
}

// decode checks raw the way the kernel does before attaching it and returns
// it in the interpreter's form: every opcode is known, every jump lands inside
// the program, the last instruction is a ret, scratch memory indexes are below
// 16, and no constant divides by zero or shifts by 32 or more. Match relies
// on all of this and checks none of it again.
//
// Unlike the kernel, decode accepts a ja that jumps backwards, as libpcap's
// own bpf_filter does, because "protochain" needs it. Match bounds such loops
// (see backJumpSlack).
func decode(raw []bpf.RawInstruction) ([]insn, error) {
	if len(raw) == 0 || len(raw) > maxInsns {
		return nil, fmt.Errorf("program has %d instructions, want 1 to %d", len(raw), maxInsns)
	}
	ins := make([]insn, len(raw))
	for pc, ri := range raw {
		info, ok := opcodes[ri.Op]
		if !ok {
			return nil, fmt.Errorf("instruction %d: unknown opcode %#x", pc, ri.Op)
		}
		if err := checkInsn(info.op, ri, pc, len(raw)); err != nil {
			return nil, fmt.Errorf("instruction %d (%s): %w", pc, image(ri, pc), err)
		}
		ins[pc] = insn{op: info.op, jt: ri.Jt, jf: ri.Jf, k: ri.K}
	}
	if last := ins[len(ins)-1].op; last != opRetK && last != opRetA {
		return nil, fmt.Errorf("program ends with %s, not a ret", image(raw[len(raw)-1], len(raw)-1))
	}
	return ins, nil
}

// checkInsn checks the operands of one instruction at pc in a program of n.
func checkInsn(op opcode, ri bpf.RawInstruction, pc, n int) error {
	switch op {
	case opLdMem, opLdxMem, opSt, opStx:
		if ri.K >= memWords {
			return fmt.Errorf("scratch memory index %d out of range", ri.K)
		}
	case opDivK, opModK:
		if ri.K == 0 {
			return errors.New("division by constant zero")
		}
	case opLshK, opRshK:
		if ri.K >= 32 {
			return fmt.Errorf("shift by %d", ri.K)
		}
	case opJa:
		// k is signed: libpcap compiles "protochain" to a loop with a
		// backward ja, and its bpf_filter sign-extends k. The kernel
		// refuses such programs.
		if to := int64(pc) + 1 + int64(int32(ri.K)); to < 0 || to >= int64(n) {
			return errors.New("jump outside the program")
		}
	case opJeqK, opJgtK, opJgeK, opJsetK, opJeqX, opJgtX, opJgeX, opJsetX:
		left := uint64(n - pc - 1) // instructions after this one
		if uint64(ri.Jt) >= left || uint64(ri.Jf) >= left {
			return errors.New("jump past the end of the program")
		}
	}
	return nil
}
