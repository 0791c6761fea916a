package nflog

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// kernelLayout is what the drop program needs to know about the running
// kernel, all from its BTF: where the fields it reads are, which raw
// tracepoint argument is which, and the drop reasons' names.
type kernelLayout struct {
	skbHead, skbNetworkHeader, skbTail, skbProtocol, skbDev, skbSk int16
	devIfindex, devNet                                             int16 // net_device.ifindex, .nd_net.net
	skNet                                                          int16 // sock.__sk_common.skc_net.net
	netInum                                                        int16 // net.ns.inum

	// Raw tracepoint argument indexes of skb:kfree_skb; argRxSk is -1
	// on kernels whose tracepoint has no receiving socket.
	argSkb, argLocation, argReason, argRxSk int

	reasons map[uint32]string // value -> name without SKB_DROP_REASON_
}

// loadKernelLayout reads the running kernel's BTF.
func loadKernelLayout() (*kernelLayout, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("load kernel BTF: %w", err)
	}
	l := &kernelLayout{}
	if err := l.fields(spec); err != nil {
		return nil, err
	}
	if err := l.tracepointArgs(spec); err != nil {
		return nil, err
	}
	if l.reasons, err = dropReasonNames(spec); err != nil {
		return nil, err
	}
	return l, nil
}

// field is one member lookup: a struct, a path of member names, and the
// size the program reads there.
type field struct {
	dst  *int16
	typ  string
	path []string
	size uint32
}

// fields fills the offsets. Each is checked for the size the program
// reads: a kernel that changed a type fails here, not in the verifier
// or, worse, by reading the wrong bytes.
func (l *kernelLayout) fields(spec *btf.Spec) error {
	list := []field{
		{&l.skbHead, "sk_buff", []string{"head"}, 8},
		{&l.skbNetworkHeader, "sk_buff", []string{"network_header"}, 2},
		{&l.skbTail, "sk_buff", []string{"tail"}, 4}, // an offset on 64-bit kernels
		{&l.skbProtocol, "sk_buff", []string{"protocol"}, 2},
		{&l.skbDev, "sk_buff", []string{"dev"}, 8},
		{&l.skbSk, "sk_buff", []string{"sk"}, 8},
		{&l.devIfindex, "net_device", []string{"ifindex"}, 4},
		{&l.devNet, "net_device", []string{"nd_net", "net"}, 8},
		{&l.skNet, "sock", []string{"__sk_common", "skc_net", "net"}, 8},
		{&l.netInum, "net", []string{"ns", "inum"}, 4},
	}
	for _, f := range list {
		off, err := fieldOffset(spec, f.typ, f.path, f.size)
		if err != nil {
			return err
		}
		*f.dst = off
	}
	return nil
}

// fieldOffset finds the byte offset of a member path in a struct, looking
// through anonymous structs and unions, and checks its size.
func fieldOffset(spec *btf.Spec, typ string, path []string, size uint32) (int16, error) {
	what := typ + "." + strings.Join(path, ".")
	var st *btf.Struct
	if err := spec.TypeByName(typ, &st); err != nil {
		return 0, fmt.Errorf("find struct %s in kernel BTF: %w", typ, err)
	}
	var t btf.Type = st
	var bits btf.Bits
	for _, name := range path {
		m, off, ok := findMember(t, name)
		if !ok {
			return 0, fmt.Errorf("find %s in kernel BTF: no member %s", what, name)
		}
		if m.BitfieldSize != 0 {
			return 0, fmt.Errorf("find %s in kernel BTF: a bitfield", what)
		}
		bits += off
		t = m.Type
	}
	got, err := btf.Sizeof(t)
	if err != nil {
		return 0, fmt.Errorf("size of %s in kernel BTF: %w", what, err)
	}
	if uint32(got) != size || bits%8 != 0 || bits/8 > 1<<15-1 {
		return 0, fmt.Errorf("%s in kernel BTF: %d bytes at bit %d, expected %d bytes", what, got, bits, size)
	}
	return int16(bits / 8), nil
}

// findMember looks for a named member of a struct or union, descending
// into anonymous members; the offset is from the start of t.
func findMember(t btf.Type, name string) (btf.Member, btf.Bits, bool) {
	var members []btf.Member
	switch c := btf.UnderlyingType(t).(type) {
	case *btf.Struct:
		members = c.Members
	case *btf.Union:
		members = c.Members
	default:
		return btf.Member{}, 0, false
	}
	for _, m := range members {
		if m.Name == name {
			return m, m.Offset, true
		}
	}
	for _, m := range members {
		if m.Name != "" {
			continue
		}
		if inner, off, ok := findMember(m.Type, name); ok {
			return inner, m.Offset + off, true
		}
	}
	return btf.Member{}, 0, false
}

// tracepointArgs finds the argument order of skb:kfree_skb from the type
// of its raw tracepoint, btf_trace_kfree_skb: a pointer to a function
// whose first parameter is the tracepoint's own data, then the
// tracepoint's arguments. They are told apart by type, since the
// parameters have no names.
func (l *kernelLayout) tracepointArgs(spec *btf.Spec) error {
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_kfree_skb", &td); err != nil {
		return fmt.Errorf("find tracepoint kfree_skb in kernel BTF: %w", err)
	}
	ptr, ok := btf.UnderlyingType(td.Type).(*btf.Pointer)
	var proto *btf.FuncProto
	if ok {
		proto, ok = btf.UnderlyingType(ptr.Target).(*btf.FuncProto)
	}
	if !ok || len(proto.Params) < 2 {
		return errors.New("tracepoint kfree_skb in kernel BTF: not a function prototype")
	}
	l.argSkb, l.argLocation, l.argReason, l.argRxSk = -1, -1, -1, -1
	for i, p := range proto.Params[1:] {
		switch tp := btf.UnderlyingType(p.Type).(type) {
		case *btf.Enum:
			if tp.Name == "skb_drop_reason" {
				l.argReason = i
			}
		case *btf.Pointer:
			switch target := btf.UnderlyingType(tp.Target).(type) {
			case *btf.Struct:
				if target.Name == "sk_buff" && l.argSkb < 0 {
					l.argSkb = i
				} else if target.Name == "sock" && l.argRxSk < 0 {
					l.argRxSk = i
				}
			case *btf.Void:
				if l.argLocation < 0 {
					l.argLocation = i
				}
			}
		}
	}
	if l.argSkb < 0 || l.argLocation < 0 || l.argReason < 0 {
		return fmt.Errorf("tracepoint kfree_skb in kernel BTF: arguments %v not understood", proto.Params)
	}
	return nil
}

// dropReasonNames reads enum skb_drop_reason: SKB_DROP_REASON_NO_SOCKET
// becomes NO_SOCKET, as the tracepoint prints it; SKB_CONSUMED and
// SKB_NOT_DROPPED_YET become CONSUMED and NOT_DROPPED_YET, but
// SKB_DROP_REASON_SKB_CSUM stays SKB_CSUM.
func dropReasonNames(spec *btf.Spec) (map[uint32]string, error) {
	var e *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &e); err != nil {
		return nil, fmt.Errorf("find enum skb_drop_reason in kernel BTF: %w", err)
	}
	names := make(map[uint32]string, len(e.Values))
	for _, v := range e.Values {
		name, ok := strings.CutPrefix(v.Name, "SKB_DROP_REASON_")
		if !ok {
			name = strings.TrimPrefix(v.Name, "SKB_")
		}
		names[uint32(v.Value)] = name
	}
	return names, nil
}

// reasonValue returns the value of a reason name, if the kernel has it.
func reasonValue(names map[uint32]string, name string) (uint32, bool) {
	for v, n := range names {
		if n == name {
			return v, true
		}
	}
	return 0, false
}
