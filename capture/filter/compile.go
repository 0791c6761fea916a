package filter

/*
#cgo LDFLAGS: -lpcap
#include <stdlib.h>
#include <pcap/pcap.h>

// hooktrace_dlt turns a LINKTYPE_ value, as capture files store it, into the
// DLT_ value pcap_open_dead wants, as libpcap's linktype_to_dlt does when it
// reads a file. They differ only below LINKTYPE_MATCHING_MIN (104) and for
// LINKTYPE_ATM_CLIP. 14 is DLT_RAW on OpenBSD, and package capture reads it
// as raw IP too.
static int hooktrace_dlt(int linktype) {
	switch (linktype) {
	case 100: return DLT_ATM_RFC1483;
	case 101: case 14: return DLT_RAW;
	case 102: return DLT_SLIP_BSDOS;
	case 103: return DLT_PPP_BSDOS;
	case 106: return DLT_ATM_CLIP;
	}
	return linktype;
}
*/
import "C"

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/net/bpf"
)

// compileMu serialises pcap_compile, which is not thread safe in libpcap
// before 1.8.
var compileMu sync.Mutex

// Compile compiles a tcpdump filter expression for packets of the given link
// type, a LINKTYPE_ value as capture files store it (capture.LinkType), with
// libpcap (optimised, netmask unknown, so "ip broadcast"
// is refused). The program's accept value is snaplen; snaplen <= 0 or above
// 262144 means 262144, as in tcpdump.
//
// An empty expression accepts every packet of any link type. When libpcap
// refuses the expression, the error is a *SyntaxError.
func Compile(expr string, linkType int, snaplen int) (*Program, error) {
	if snaplen <= 0 || snaplen > maxSnaplen {
		snaplen = maxSnaplen
	}
	if strings.TrimSpace(expr) == "" {
		return acceptAll(snaplen), nil
	}
	if strings.IndexByte(expr, 0) >= 0 {
		return nil, &SyntaxError{Expr: expr, Msg: "expression contains a NUL byte"}
	}
	if linkType < 0 || linkType > math.MaxInt32 {
		return nil, &SyntaxError{Expr: expr, Msg: fmt.Sprintf("link type %d out of range", linkType)}
	}
	raw, err := pcapCompile(expr, linkType, snaplen)
	if err != nil {
		return nil, err
	}
	p, err := newProgram(raw)
	if err != nil {
		return nil, fmt.Errorf("filter expression %q: check the program libpcap compiled for link type %d: %w", expr, linkType, err)
	}
	return p, nil
}

// pcapCompile runs pcap_compile on a dead handle for linkType and returns a
// copy of the program.
func pcapCompile(expr string, linkType, snaplen int) ([]bpf.RawInstruction, error) {
	cexpr := C.CString(expr)
	defer C.free(unsafe.Pointer(cexpr))

	compileMu.Lock()
	defer compileMu.Unlock()

	p := C.pcap_open_dead(C.hooktrace_dlt(C.int(linkType)), C.int(snaplen))
	if p == nil {
		return nil, fmt.Errorf("filter expression %q: open a libpcap handle for link type %d: pcap_open_dead failed", expr, linkType)
	}
	defer C.pcap_close(p)

	var prog C.struct_bpf_program
	if C.pcap_compile(p, &prog, cexpr, 1, C.PCAP_NETMASK_UNKNOWN) != 0 {
		msg := strings.TrimSpace(C.GoString(C.pcap_geterr(p)))
		return nil, &SyntaxError{Expr: expr, Msg: oneLine(msg)}
	}
	defer C.pcap_freecode(&prog)

	insns := unsafe.Slice(prog.bf_insns, int(prog.bf_len))
	raw := make([]bpf.RawInstruction, len(insns))
	for i, in := range insns {
		raw[i] = bpf.RawInstruction{Op: uint16(in.code), Jt: uint8(in.jt), Jf: uint8(in.jf), K: uint32(in.k)}
	}
	return raw, nil
}

// oneLine joins a possibly multi-line message into one line.
func oneLine(s string) string {
	if s == "" {
		return "pcap_compile failed"
	}
	return strings.Join(strings.Fields(s), " ")
}
