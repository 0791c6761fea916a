package filter

import (
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// assemble turns instructions into a raw program, failing the test on error.
func assemble(t testing.TB, ins ...bpf.Instruction) []bpf.RawInstruction {
	t.Helper()
	raw, err := bpf.Assemble(ins)
	if err != nil {
		t.Fatalf("assemble %v: %v", ins, err)
	}
	return raw
}

// Shorthands for the instructions the table below uses most.
func ldA(v uint32) bpf.Instruction { return bpf.LoadConstant{Dst: bpf.RegA, Val: v} }
func ldX(v uint32) bpf.Instruction { return bpf.LoadConstant{Dst: bpf.RegX, Val: v} }
func aluK(op bpf.ALUOp, v uint32) bpf.Instruction {
	return bpf.ALUOpConstant{Op: op, Val: v}
}
func aluX(op bpf.ALUOp) bpf.Instruction { return bpf.ALUOpX{Op: op} }

func TestMatchInstructions(t *testing.T) {
	data := []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}
	const wireLen = 1500
	tests := []struct {
		name    string
		prog    []bpf.Instruction // computes A
		wantA   uint32            // what A must then hold
		rejects bool              // the program must stop and reject instead
	}{
		{name: "ld abs", prog: []bpf.Instruction{bpf.LoadAbsolute{Off: 0, Size: 4}}, wantA: 0x01020304},
		{name: "ld abs last word", prog: []bpf.Instruction{bpf.LoadAbsolute{Off: 4, Size: 4}}, wantA: 0x05060708},
		{name: "ld abs past end", prog: []bpf.Instruction{bpf.LoadAbsolute{Off: 5, Size: 4}}, rejects: true},
		{name: "ld abs huge offset", prog: []bpf.Instruction{bpf.LoadAbsolute{Off: 0xffffffff, Size: 4}}, rejects: true},
		{name: "ldh abs", prog: []bpf.Instruction{bpf.LoadAbsolute{Off: 6, Size: 2}}, wantA: 0x0708},
		{name: "ldh abs past end", prog: []bpf.Instruction{bpf.LoadAbsolute{Off: 7, Size: 2}}, rejects: true},
		{name: "ldb abs", prog: []bpf.Instruction{bpf.LoadAbsolute{Off: 7, Size: 1}}, wantA: 0x08},
		{name: "ldb abs past end", prog: []bpf.Instruction{bpf.LoadAbsolute{Off: 8, Size: 1}}, rejects: true},
		{name: "ld ind", prog: []bpf.Instruction{ldX(2), bpf.LoadIndirect{Off: 2, Size: 4}}, wantA: 0x05060708},
		{name: "ld ind past end", prog: []bpf.Instruction{ldX(2), bpf.LoadIndirect{Off: 3, Size: 4}}, rejects: true},
		{name: "ldh ind", prog: []bpf.Instruction{ldX(1), bpf.LoadIndirect{Off: 1, Size: 2}}, wantA: 0x0304},
		{name: "ldh ind past end", prog: []bpf.Instruction{ldX(2), bpf.LoadIndirect{Off: 5, Size: 2}}, rejects: true},
		{name: "ldb ind", prog: []bpf.Instruction{ldX(2), bpf.LoadIndirect{Off: 5, Size: 1}}, wantA: 0x08},
		{name: "ldb ind past end", prog: []bpf.Instruction{ldX(8), bpf.LoadIndirect{Off: 0, Size: 1}}, rejects: true},
		{name: "ind offset does not wrap", prog: []bpf.Instruction{ldX(0xffffffff), bpf.LoadIndirect{Off: 1, Size: 1}}, rejects: true},
		{name: "ldxb msh", prog: []bpf.Instruction{bpf.LoadMemShift{Off: 3}, bpf.TXA{}}, wantA: 16},
		{name: "ldxb msh past end", prog: []bpf.Instruction{bpf.LoadMemShift{Off: 8}}, rejects: true},
		{name: "ld len is the wire length", prog: []bpf.Instruction{bpf.LoadExtension{Num: bpf.ExtLen}}, wantA: wireLen},
		{name: "ld imm", prog: []bpf.Instruction{ldA(7)}, wantA: 7},
		{name: "ldx imm, txa", prog: []bpf.Instruction{ldX(9), bpf.TXA{}}, wantA: 9},
		{name: "st, ld mem", prog: []bpf.Instruction{ldA(5), bpf.StoreScratch{Src: bpf.RegA, N: 3}, ldA(0), bpf.LoadScratch{Dst: bpf.RegA, N: 3}}, wantA: 5},
		{name: "stx, ldx mem", prog: []bpf.Instruction{ldX(6), bpf.StoreScratch{Src: bpf.RegX, N: 15}, ldX(0), bpf.LoadScratch{Dst: bpf.RegX, N: 15}, bpf.TXA{}}, wantA: 6},
		{name: "unwritten memory is zero", prog: []bpf.Instruction{ldA(1), bpf.LoadScratch{Dst: bpf.RegA, N: 2}}, wantA: 0},
		{name: "tax", prog: []bpf.Instruction{ldA(11), bpf.TAX{}, ldA(0), bpf.TXA{}}, wantA: 11},
		{name: "add k wraps", prog: []bpf.Instruction{ldA(0xffffffff), aluK(bpf.ALUOpAdd, 2)}, wantA: 1},
		{name: "sub k wraps", prog: []bpf.Instruction{ldA(0), aluK(bpf.ALUOpSub, 1)}, wantA: 0xffffffff},
		{name: "mul k", prog: []bpf.Instruction{ldA(0x10001), aluK(bpf.ALUOpMul, 0x10000)}, wantA: 0x10000},
		{name: "div k", prog: []bpf.Instruction{ldA(7), aluK(bpf.ALUOpDiv, 2)}, wantA: 3},
		{name: "mod k", prog: []bpf.Instruction{ldA(7), aluK(bpf.ALUOpMod, 3)}, wantA: 1},
		{name: "and k", prog: []bpf.Instruction{ldA(0xff0f), aluK(bpf.ALUOpAnd, 0x0ff0)}, wantA: 0x0f00},
		{name: "or k", prog: []bpf.Instruction{ldA(0xf0), aluK(bpf.ALUOpOr, 0x0f)}, wantA: 0xff},
		{name: "xor k", prog: []bpf.Instruction{ldA(0xff), aluK(bpf.ALUOpXor, 0x0f)}, wantA: 0xf0},
		{name: "lsh k", prog: []bpf.Instruction{ldA(3), aluK(bpf.ALUOpShiftLeft, 31)}, wantA: 0x80000000},
		{name: "rsh k", prog: []bpf.Instruction{ldA(0xf0), aluK(bpf.ALUOpShiftRight, 4)}, wantA: 0x0f},
		{name: "neg", prog: []bpf.Instruction{ldA(1), bpf.NegateA{}}, wantA: 0xffffffff},
		{name: "add x", prog: []bpf.Instruction{ldA(2), ldX(3), aluX(bpf.ALUOpAdd)}, wantA: 5},
		{name: "sub x", prog: []bpf.Instruction{ldA(2), ldX(3), aluX(bpf.ALUOpSub)}, wantA: 0xffffffff},
		{name: "mul x", prog: []bpf.Instruction{ldA(6), ldX(7), aluX(bpf.ALUOpMul)}, wantA: 42},
		{name: "div x", prog: []bpf.Instruction{ldA(42), ldX(5), aluX(bpf.ALUOpDiv)}, wantA: 8},
		{name: "div x by zero", prog: []bpf.Instruction{ldA(42), ldX(0), aluX(bpf.ALUOpDiv)}, rejects: true},
		{name: "mod x", prog: []bpf.Instruction{ldA(42), ldX(5), aluX(bpf.ALUOpMod)}, wantA: 2},
		{name: "mod x by zero", prog: []bpf.Instruction{ldA(42), ldX(0), aluX(bpf.ALUOpMod)}, rejects: true},
		{name: "and x", prog: []bpf.Instruction{ldA(0xff0f), ldX(0x0ff0), aluX(bpf.ALUOpAnd)}, wantA: 0x0f00},
		{name: "or x", prog: []bpf.Instruction{ldA(0xf0), ldX(0x0f), aluX(bpf.ALUOpOr)}, wantA: 0xff},
		{name: "xor x", prog: []bpf.Instruction{ldA(0xff), ldX(0x0f), aluX(bpf.ALUOpXor)}, wantA: 0xf0},
		{name: "lsh x", prog: []bpf.Instruction{ldA(1), ldX(4), aluX(bpf.ALUOpShiftLeft)}, wantA: 16},
		{name: "lsh x by 32", prog: []bpf.Instruction{ldA(1), ldX(32), aluX(bpf.ALUOpShiftLeft)}, wantA: 0},
		{name: "rsh x", prog: []bpf.Instruction{ldA(0x100), ldX(4), aluX(bpf.ALUOpShiftRight)}, wantA: 0x10},
		{name: "rsh x by 40", prog: []bpf.Instruction{ldA(0xffffffff), ldX(40), aluX(bpf.ALUOpShiftRight)}, wantA: 0},
		{name: "ja", prog: []bpf.Instruction{ldA(1), bpf.Jump{Skip: 1}, ldA(2)}, wantA: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog := tt.prog
			if tt.rejects {
				prog = append(prog, bpf.RetConstant{Val: 1})
			} else { // accept only if A holds wantA
				prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: tt.wantA, SkipFalse: 1}, bpf.RetConstant{Val: 1}, bpf.RetConstant{Val: 0})
			}
			p, err := newProgram(assemble(t, prog...))
			if err != nil {
				t.Fatalf("newProgram: %v", err)
			}
			if got := p.Match(data, wireLen); got == tt.rejects {
				t.Errorf("Match = %v, want %v; program:\n%s", got, !tt.rejects, p)
			}
		})
	}
}

func TestMatchJumps(t *testing.T) {
	tests := []struct {
		cond bpf.JumpTest
		a, v uint32
		want bool
	}{
		{bpf.JumpEqual, 5, 5, true}, {bpf.JumpEqual, 5, 6, false},
		{bpf.JumpNotEqual, 5, 6, true}, {bpf.JumpNotEqual, 5, 5, false},
		{bpf.JumpGreaterThan, 6, 5, true}, {bpf.JumpGreaterThan, 5, 5, false},
		{bpf.JumpGreaterThan, 0x80000000, 1, true}, // unsigned
		{bpf.JumpGreaterOrEqual, 5, 5, true}, {bpf.JumpGreaterOrEqual, 4, 5, false},
		{bpf.JumpLessThan, 4, 5, true}, {bpf.JumpLessThan, 5, 5, false},
		{bpf.JumpLessOrEqual, 5, 5, true}, {bpf.JumpLessOrEqual, 6, 5, false},
		{bpf.JumpBitsSet, 6, 2, true}, {bpf.JumpBitsSet, 6, 1, false},
		{bpf.JumpBitsNotSet, 6, 1, true}, {bpf.JumpBitsNotSet, 6, 2, false},
	}
	for _, tt := range tests {
		k := []bpf.Instruction{ldA(tt.a), bpf.JumpIf{Cond: tt.cond, Val: tt.v, SkipTrue: 1}, bpf.RetConstant{Val: 0}, bpf.RetConstant{Val: 1}}
		x := []bpf.Instruction{ldA(tt.a), ldX(tt.v), bpf.JumpIfX{Cond: tt.cond, SkipTrue: 1}, bpf.RetConstant{Val: 0}, bpf.RetConstant{Val: 1}}
		for _, prog := range [][]bpf.Instruction{k, x} {
			p, err := newProgram(assemble(t, prog...))
			if err != nil {
				t.Fatalf("newProgram: %v", err)
			}
			if got := p.Match(nil, 0); got != tt.want {
				t.Errorf("%v with A=%#x, operand %#x: Match = %v, want %v\n%s", tt.cond, tt.a, tt.v, got, tt.want, p)
			}
		}
	}
}

func TestMatchReturn(t *testing.T) {
	tests := []struct {
		name string
		prog []bpf.Instruction
		want bool
	}{
		{"ret #0", []bpf.Instruction{bpf.RetConstant{Val: 0}}, false},
		{"ret #1", []bpf.Instruction{bpf.RetConstant{Val: 1}}, true},
		{"ret a zero", []bpf.Instruction{ldA(0), bpf.RetA{}}, false},
		{"ret a non-zero", []bpf.Instruction{ldA(0x80000000), bpf.RetA{}}, true},
	}
	for _, tt := range tests {
		p, err := newProgram(assemble(t, tt.prog...))
		if err != nil {
			t.Fatalf("%s: newProgram: %v", tt.name, err)
		}
		if got := p.Match([]byte{1}, 1); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestMatchBackwardJump runs loops made of backward ja instructions, which
// libpcap uses for "protochain": a counting loop finishes and an endless one
// is cut short and rejected.
func TestMatchBackwardJump(t *testing.T) {
	back := func(n uint32) bpf.RawInstruction { return bpf.RawInstruction{Op: 0x05, K: -n} }
	count := append(assemble(t,
		ldX(0),
		bpf.TXA{}, // 1: loop
		aluK(bpf.ALUOpAdd, 1),
		bpf.TAX{},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 100, SkipTrue: 1},
	), back(5), bpf.RawInstruction{Op: 0x16}) // ret a
	p, err := newProgram(count)
	if err != nil {
		t.Fatalf("newProgram: %v", err)
	}
	if !p.Match(make([]byte, 100), 100) {
		t.Errorf("counting loop of 100 turns rejected on 100 bytes:\n%s", p)
	}
	if p.Match(make([]byte, 50), 50) {
		t.Errorf("counting loop of 100 turns accepted on 50 bytes:\n%s", p)
	}

	endless := append([]bpf.RawInstruction{back(1)}, assemble(t, bpf.RetConstant{Val: 1})...)
	if p, err = newProgram(endless); err != nil {
		t.Fatalf("newProgram: %v", err)
	}
	if p.Match(nil, 0) {
		t.Errorf("endless loop accepted")
	}
}

func TestNewProgramRefuses(t *testing.T) {
	ret := bpf.RawInstruction{Op: 0x06, K: 1}
	tests := []struct {
		name string
		raw  []bpf.RawInstruction
		want string
	}{
		{"empty", nil, "0 instructions"},
		{"too long", make([]bpf.RawInstruction, maxInsns+1), "4097 instructions"},
		{"unknown opcode", []bpf.RawInstruction{{Op: 0xff}, ret}, "unknown opcode 0xff"},
		{"ret x", []bpf.RawInstruction{{Op: 0x0e}}, "unknown opcode 0xe"},
		{"ldx abs", []bpf.RawInstruction{{Op: 0x21}, ret}, "unknown opcode 0x21"},
		{"no ret at end", []bpf.RawInstruction{{Op: 0x00, K: 1}}, "not a ret"},
		{"ja past end", []bpf.RawInstruction{{Op: 0x05, K: 1}, ret}, "outside the program"},
		{"ja before start", []bpf.RawInstruction{{Op: 0x05, K: 0xfffffffe}, ret}, "outside the program"},
		{"jt past end", []bpf.RawInstruction{{Op: 0x15, Jt: 1}, ret}, "past the end"},
		{"jf past end", []bpf.RawInstruction{{Op: 0x1d, Jf: 1}, ret}, "past the end"},
		{"jump onto nothing", []bpf.RawInstruction{{Op: 0x15}}, "past the end"},
		{"ld mem 16", []bpf.RawInstruction{{Op: 0x60, K: 16}, ret}, "scratch memory"},
		{"st mem 16", []bpf.RawInstruction{{Op: 0x02, K: 16}, ret}, "scratch memory"},
		{"div by zero", []bpf.RawInstruction{{Op: 0x34}, ret}, "division by constant zero"},
		{"mod by zero", []bpf.RawInstruction{{Op: 0x94}, ret}, "division by constant zero"},
		{"lsh 32", []bpf.RawInstruction{{Op: 0x64, K: 32}, ret}, "shift by 32"},
		{"rsh 33", []bpf.RawInstruction{{Op: 0x74, K: 33}, ret}, "shift by 33"},
	}
	for _, tt := range tests {
		_, err := newProgram(tt.raw)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: newProgram error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	p, err := Compile("tcp port 443 and not host 10.0.0.1", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	pkt := benchPacket(t)
	if n := testing.AllocsPerRun(1000, func() { p.Match(pkt, len(pkt)) }); n != 0 {
		t.Errorf("Match allocates %v times per run", n)
	}
}
