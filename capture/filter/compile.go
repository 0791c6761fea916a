package filter

/*
#cgo LDFLAGS: -lpcap
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

// hooktrace_open_file returns a handle that compiles as for a capture file
// of the given LINKTYPE_, as `tcpdump -r` does: libpcap then accepts every
// BSD value of AF_INET6 in loopback headers, where a handle from
// pcap_open_dead (a live capture on this host) accepts only Linux's. The
// 24-byte file header is read from memory at once; buf is freed by the
// caller after pcap_close.
static pcap_t *hooktrace_open_file(int linktype, int snaplen, unsigned char *buf, char *errbuf) {
	unsigned int magic = 0xa1b2c3d4;
	unsigned short major = 2, minor = 4;
	unsigned int zero = 0, snap = (unsigned int)snaplen, lt = (unsigned int)linktype;
	if (lt == 12 || lt == 14) {
		lt = 101; // DLT_RAW values that files store as LINKTYPE_RAW
	}
	memcpy(buf, &magic, 4);
	memcpy(buf + 4, &major, 2);
	memcpy(buf + 6, &minor, 2);
	memcpy(buf + 8, &zero, 4);
	memcpy(buf + 12, &zero, 4);
	memcpy(buf + 16, &snap, 4);
	memcpy(buf + 20, &lt, 4);
	FILE *f = fmemopen(buf, 24, "rb");
	if (f == NULL) {
		snprintf(errbuf, PCAP_ERRBUF_SIZE, "fmemopen failed");
		return NULL;
	}
	pcap_t *p = pcap_fopen_offline(f, errbuf);
	if (p == NULL) {
		fclose(f);
	}
	return p;
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

// Compile compiles a tcpdump filter expression for packets of a capture
// file, exactly as `tcpdump -r` does, for the given link type: a LINKTYPE_
// value as capture files store it (capture.LinkType). It uses libpcap
// (optimised, netmask unknown, so "ip broadcast" is refused). The program's accept value is snaplen; snaplen <= 0 or above
// 262144 means 262144, as in tcpdump.
//
// An empty expression accepts every packet of any link type. When libpcap
// refuses the expression, the error is a *SyntaxError.
func Compile(expr string, linkType int, snaplen int) (*Program, error) {
	return compile(expr, linkType, snaplen, true)
}

// CompileLive compiles an expression for a live capture on this host, as
// `tcpdump -i` does, for attaching to a socket in the kernel. It differs
// from Compile only where libpcap's code depends on the capturing host,
// such as the address family values of loopback headers.
func CompileLive(expr string, linkType int, snaplen int) (*Program, error) {
	return compile(expr, linkType, snaplen, false)
}

func compile(expr string, linkType, snaplen int, offline bool) (*Program, error) {
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
	raw, err := pcapCompile(expr, linkType, snaplen, offline)
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
func pcapCompile(expr string, linkType, snaplen int, offline bool) ([]bpf.RawInstruction, error) {
	cexpr := C.CString(expr)
	defer C.free(unsafe.Pointer(cexpr))

	compileMu.Lock()
	defer compileMu.Unlock()

	var p *C.pcap_t
	if offline {
		buf := (*C.uchar)(C.malloc(24))
		defer C.free(unsafe.Pointer(buf))
		errbuf := (*C.char)(C.malloc(C.PCAP_ERRBUF_SIZE))
		defer C.free(unsafe.Pointer(errbuf))
		p = C.hooktrace_open_file(C.int(linkType), C.int(snaplen), buf, errbuf)
		if p == nil {
			return nil, &SyntaxError{Expr: expr, Msg: fmt.Sprintf("link type %d: %s", linkType, oneLine(C.GoString(errbuf)))}
		}
	} else {
		p = C.pcap_open_dead(C.hooktrace_dlt(C.int(linkType)), C.int(snaplen))
		if p == nil {
			return nil, fmt.Errorf("filter expression %q: open a libpcap handle for link type %d: pcap_open_dead failed", expr, linkType)
		}
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
