package filter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Limits of classic BPF, as the kernel and libpcap define them.
const (
	maxInsns = 4096 // BPF_MAXINSNS
	memWords = 16   // BPF_MEMWORDS, the scratch memory M[0..15]
)

// Raw classic BPF opcodes (struct bpf_insn code) that validate refers to by
// name; the rest live in the decoding table.
const (
	opcodeRetK = 0x06 // BPF_RET|BPF_K
)

// opcode is the interpreter's dense numbering of the classic BPF
// instructions, so that Match's switch compiles to a jump table.
type opcode uint8

// The instructions Match runs; each comment gives the raw opcode.
const (
	opLdAbsW opcode = iota // 0x20 ld [k]
	opLdAbsH               // 0x28 ldh [k]
	opLdAbsB               // 0x30 ldb [k]
	opLdIndW               // 0x40 ld [x + k]
	opLdIndH               // 0x48 ldh [x + k]
	opLdIndB               // 0x50 ldb [x + k]
	opLdLen                // 0x80 ld #pktlen
	opLdImm                // 0x00 ld #k
	opLdMem                // 0x60 ld M[k]
	opLdxImm               // 0x01 ldx #k
	opLdxMem               // 0x61 ldx M[k]
	opLdxLen               // 0x81 ldx #pktlen
	opLdxMsh               // 0xb1 ldxb 4*([k]&0xf)
	opSt                   // 0x02 st M[k]
	opStx                  // 0x03 stx M[k]
	opAddK                 // 0x04
	opSubK                 // 0x14
	opMulK                 // 0x24
	opDivK                 // 0x34
	opOrK                  // 0x44
	opAndK                 // 0x54
	opLshK                 // 0x64
	opRshK                 // 0x74
	opNeg                  // 0x84
	opModK                 // 0x94
	opXorK                 // 0xa4
	opAddX                 // 0x0c
	opSubX                 // 0x1c
	opMulX                 // 0x2c
	opDivX                 // 0x3c
	opOrX                  // 0x4c
	opAndX                 // 0x5c
	opLshX                 // 0x6c
	opRshX                 // 0x7c
	opModX                 // 0x9c
	opXorX                 // 0xac
	opJa                   // 0x05 ja k
	opJeqK                 // 0x15
	opJgtK                 // 0x25
	opJgeK                 // 0x35
	opJsetK                // 0x45
	opJeqX                 // 0x1d
	opJgtX                 // 0x2d
	opJgeX                 // 0x3d
	opJsetX                // 0x4d
	opRetK                 // 0x06 ret #k
	opRetA                 // 0x16 ret a
	opTax                  // 0x07
	opTxa                  // 0x87
)

// opcodes maps every raw opcode libpcap and the kernel accept to the
// interpreter's opcode; anything missing is refused by decode.
var opcodes = map[uint16]opcode{
	0x20: opLdAbsW, 0x28: opLdAbsH, 0x30: opLdAbsB,
	0x40: opLdIndW, 0x48: opLdIndH, 0x50: opLdIndB,
	0x80: opLdLen, 0x00: opLdImm, 0x60: opLdMem,
	0x01: opLdxImm, 0x61: opLdxMem, 0x81: opLdxLen, 0xb1: opLdxMsh,
	0x02: opSt, 0x03: opStx,
	0x04: opAddK, 0x14: opSubK, 0x24: opMulK, 0x34: opDivK, 0x44: opOrK,
	0x54: opAndK, 0x64: opLshK, 0x74: opRshK, 0x84: opNeg, 0x94: opModK,
	0xa4: opXorK,
	0x0c: opAddX, 0x1c: opSubX, 0x2c: opMulX, 0x3c: opDivX, 0x4c: opOrX,
	0x5c: opAndX, 0x6c: opLshX, 0x7c: opRshX, 0x9c: opModX, 0xac: opXorX,
	0x05: opJa, 0x15: opJeqK, 0x25: opJgtK, 0x35: opJgeK, 0x45: opJsetK,
	0x1d: opJeqX, 0x2d: opJgtX, 0x3d: opJgeX, 0x4d: opJsetX,
	0x06: opRetK, 0x16: opRetA,
	0x07: opTax, 0x87: opTxa,
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
		op, ok := opcodes[ri.Op]
		if !ok {
			return nil, fmt.Errorf("instruction %d: unknown opcode %#x", pc, ri.Op)
		}
		if err := checkInsn(op, ri, pc, len(raw)); err != nil {
			return nil, fmt.Errorf("instruction %d (%s): %w", pc, image(ri, pc), err)
		}
		ins[pc] = insn{op: op, jt: ri.Jt, jf: ri.Jf, k: ri.K}
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
			return fmt.Errorf("division by constant zero")
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
			return fmt.Errorf("jump outside the program")
		}
	case opJeqK, opJgtK, opJgeK, opJsetK, opJeqX, opJgtX, opJgeX, opJsetX:
		left := uint64(n - pc - 1) // instructions after this one
		if uint64(ri.Jt) >= left || uint64(ri.Jf) >= left {
			return fmt.Errorf("jump past the end of the program")
		}
	}
	return nil
}
