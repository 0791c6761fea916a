package filter

import "encoding/binary"

// Backward jumps: libpcap compiles "protochain" to a loop, a ja with a
// negative k, which its own bpf_filter runs as is. Each turn of that loop
// moves to a header at a new offset, a multiple of 4 inside the captured
// bytes (or the packet is rejected on a load past the end, or the loop
// never ends in libpcap either), so one loop turns fewer than len(data)/4+1
// times. Match allows len(data)+backJumpSlack backward jumps in all, room for
// four such loops, and then rejects the packet.
const backJumpSlack = 16

// Match reports whether the program accepts a packet: data is the captured
// bytes and wireLen the packet's length on the wire (at least len(data) for a
// truncated capture), which "len", "less" and "greater" test, as libpcap's
// bpf_filter does.
//
// Match follows the kernel and libpcap: a load beyond the captured bytes or a
// division by zero ends the program and rejects the packet, and any non-zero
// return value accepts it. Match never allocates and never panics, and it
// always ends: a program that loops (only "protochain" does) is rejected
// after len(data)+16 backward jumps.
func (p *Program) Match(data []byte, wireLen int) bool {
	var (
		a, x  uint32
		mem   [memWords]uint32
		loops uint64 // backward jumps taken
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
				if loops++; loops > n+backJumpSlack {
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
