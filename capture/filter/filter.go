// Package filter compiles tcpdump (pcap-filter) expressions with libpcap and
// runs the resulting classic BPF programs in a small pure-Go interpreter.
//
// libpcap is the reference: Compile calls pcap_compile through cgo, so an
// expression means here exactly what it means to tcpdump. Match then runs the
// program without cgo, allocation or panics, and Instructions gives the same
// program for attaching in the kernel with SO_ATTACH_FILTER.
//
// Building the package needs cgo and libpcap (Debian: libpcap-dev).
package filter

import "golang.org/x/net/bpf"

// maxSnaplen is tcpdump's default and largest snapshot length
// (MAXIMUM_SNAPLEN); Compile uses it when asked for none.
const maxSnaplen = 262144

// retK is the raw opcode of "ret #k" (BPF_RET|BPF_K).
const retK = 0x06

// Program is a validated classic BPF program. A Program is immutable and safe
// for concurrent use by several goroutines.
type Program struct {
	raw []bpf.RawInstruction // as libpcap produced it
	ins []insn               // the same program, decoded for the interpreter
}

// newProgram validates raw and decodes it for Match. Every Program, whether
// libpcap or a fuzzer produced it, goes through here.
func newProgram(raw []bpf.RawInstruction) (*Program, error) {
	ins, err := decode(raw)
	if err != nil {
		return nil, err
	}
	return &Program{raw: append([]bpf.RawInstruction(nil), raw...), ins: ins}, nil
}

// acceptAll returns the program of an empty expression: accept every packet,
// keeping up to snaplen bytes, as libpcap compiles it.
func acceptAll(snaplen int) *Program {
	p, err := newProgram([]bpf.RawInstruction{{Op: retK, K: uint32(snaplen)}})
	if err != nil {
		panic("filter: accept-all program is invalid: " + err.Error())
	}
	return p
}

// Instructions returns a copy of the program as libpcap compiled it, for
// attaching to a socket with SO_ATTACH_FILTER. The kernel refuses the
// backward jumps of "protochain" with EINVAL; libpcap then filters in user
// space, and so can the caller, with Match.
func (p *Program) Instructions() []bpf.RawInstruction {
	return append([]bpf.RawInstruction(nil), p.raw...)
}
