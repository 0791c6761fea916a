package filter

import "encoding/binary"

// maxBackJumps bounds the backward jumps one Match may take. libpcap's
// protochain loop takes one per IPv6 extension header, and each header is at
// least 8 bytes, so 32768 covers the largest packet; libpcap itself would
// loop for ever on a program that needs more.
const maxBackJumps = 1 << 15

// Match reports whether the program accepts a packet: data is the captured
// bytes and wireLen the packet's length on the wire (at least len(data) for a
// truncated capture), which "len", "less" and "greater" test, as libpcap's
// bpf_filter does.
//
// Match follows the kernel and libpcap: a load beyond the captured bytes or a
// division by zero ends the program and rejects the packet, and any non-zero
// return value accepts it. Match never allocates and never panics, and it
// always ends: a program that loops (only "protochain" does) is rejected after
// maxBackJumps backward jumps.
func (p *Program) Match(data []byte, wireLen int) bool {
	var (
		a, x  uint32
		mem   [memWords]uint32
		loops int
	)
	n := uint64(len(data))
	ins := p.ins
	for pc := 0; ; pc++ {
		in := ins[pc]
		switch in.op {
		case opLdAbsW:
			k := uint64(in.k)
			if k+4 > n {
				return false
			}
			a = binary.BigEndian.Uint32(data[k:])
		case opLdAbsH:
			k := uint64(in.k)
			if k+2 > n {
				return false
			}
			a = uint32(binary.BigEndian.Uint16(data[k:]))
		case opLdAbsB:
			k := uint64(in.k)
			if k >= n {
				return false
			}
			a = uint32(data[k])
		case opLdIndW:
			k := uint64(x) + uint64(in.k)
			if k+4 > n {
				return false
			}
			a = binary.BigEndian.Uint32(data[k:])
		case opLdIndH:
			k := uint64(x) + uint64(in.k)
			if k+2 > n {
				return false
			}
			a = uint32(binary.BigEndian.Uint16(data[k:]))
		case opLdIndB:
			k := uint64(x) + uint64(in.k)
			if k >= n {
				return false
			}
			a = uint32(data[k])
		case opLdLen:
			a = uint32(wireLen)
		case opLdImm:
			a = in.k
		case opLdMem:
			a = mem[in.k&(memWords-1)]
		case opLdxImm:
			x = in.k
		case opLdxMem:
			x = mem[in.k&(memWords-1)]
		case opLdxLen:
			x = uint32(wireLen)
		case opLdxMsh:
			k := uint64(in.k)
			if k >= n {
				return false
			}
			x = uint32(data[k]&0xf) << 2
		case opSt:
			mem[in.k&(memWords-1)] = a
		case opStx:
			mem[in.k&(memWords-1)] = x
		case opAddK:
			a += in.k
		case opSubK:
			a -= in.k
		case opMulK:
			a *= in.k
		case opDivK:
			a /= in.k // decode refuses a zero constant
		case opOrK:
			a |= in.k
		case opAndK:
			a &= in.k
		case opLshK:
			a <<= in.k
		case opRshK:
			a >>= in.k
		case opNeg:
			a = -a
		case opModK:
			a %= in.k // decode refuses a zero constant
		case opXorK:
			a ^= in.k
		case opAddX:
			a += x
		case opSubX:
			a -= x
		case opMulX:
			a *= x
		case opDivX:
			if x == 0 {
				return false
			}
			a /= x
		case opOrX:
			a |= x
		case opAndX:
			a &= x
		case opLshX:
			a <<= x // Go gives 0 for x >= 32, as libpcap does
		case opRshX:
			a >>= x
		case opModX:
			if x == 0 {
				return false
			}
			a %= x
		case opXorX:
			a ^= x
		case opJa:
			k := int(int32(in.k)) // libpcap sign-extends: protochain loops back
			if k < 0 {
				if loops++; loops > maxBackJumps {
					return false
				}
			}
			pc += k
		case opJeqK:
			pc += branch(a == in.k, in)
		case opJgtK:
			pc += branch(a > in.k, in)
		case opJgeK:
			pc += branch(a >= in.k, in)
		case opJsetK:
			pc += branch(a&in.k != 0, in)
		case opJeqX:
			pc += branch(a == x, in)
		case opJgtX:
			pc += branch(a > x, in)
		case opJgeX:
			pc += branch(a >= x, in)
		case opJsetX:
			pc += branch(a&x != 0, in)
		case opRetK:
			return in.k != 0
		case opRetA:
			return a != 0
		case opTax:
			x = a
		case opTxa:
			a = x
		}
	}
}

// branch returns how far a conditional jump skips.
func branch(cond bool, in insn) int {
	if cond {
		return int(in.jt)
	}
	return int(in.jf)
}
