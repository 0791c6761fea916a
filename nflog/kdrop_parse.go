package nflog

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// kfreeSkbEvent is one skb:kfree_skb line of trace_pipe.
type kfreeSkbEvent struct {
	mono     int64 // the instance's clock (mono), nanoseconds
	protocol uint16
	location string // symbol+offset, or what the kernel printed
	address  uint64 // when the kernel printed a raw address (0x...)
	reason   string
}

// parseKfreeSkbLine reads a trace_pipe line such as
//
//	python3-2874 [001] .Ns1. 11733.366040: kfree_skb: skbaddr=000000009ef86ec5 rx_sk=0000000000000000 protocol=2048 location=__udp4_lib_rcv+0x4bc/0xd00 reason: NO_SOCKET
//
// Fields are found by name, so kernels that print more or fewer of them
// (no rx_sk before 6.8; location as a raw address in some) are read
// alike. A numeric reason is named from reasons, the event format's own
// table. Lines of other events, or without a time or reason, are refused.
func parseKfreeSkbLine(line []byte, reasons map[uint32]string) (kfreeSkbEvent, bool) {
	const marker = " kfree_skb: "
	i := bytes.Index(line, []byte(marker))
	if i < 0 {
		return kfreeSkbEvent{}, false
	}
	var ev kfreeSkbEvent
	head := bytes.TrimSuffix(line[:i], []byte(":"))
	if j := bytes.LastIndexByte(head, ' '); j >= 0 {
		head = head[j+1:]
	}
	mono, ok := parseTraceTime(string(head))
	if !ok {
		return kfreeSkbEvent{}, false
	}
	ev.mono = mono
	rest := strings.TrimRight(string(line[i+len(marker):]), "\r\n ")
	fields, reason, ok := strings.Cut(rest, "reason: ")
	reason = strings.TrimSpace(reason)
	if !ok || reason == "" || strings.ContainsAny(reason, " \t") {
		return kfreeSkbEvent{}, false
	}
	ev.reason = reasonName(reason, reasons)
	for _, f := range strings.Fields(fields) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "protocol":
			if p, err := strconv.ParseUint(v, 10, 16); err == nil {
				ev.protocol = uint16(p)
			}
		case "location":
			ev.location, ev.address = parseTraceLocation(v)
		}
	}
	return ev, true
}

// parseTraceTime reads "11733.366040" (seconds, up to nine decimals) as
// nanoseconds.
func parseTraceTime(s string) (int64, bool) {
	sec, frac, ok := strings.Cut(s, ".")
	if !ok || sec == "" || frac == "" || len(frac) > 9 {
		return 0, false
	}
	n, err := strconv.ParseUint(sec, 10, 32)
	if err != nil {
		return 0, false
	}
	f, err := strconv.ParseUint(frac, 10, 32)
	if err != nil {
		return 0, false
	}
	for i := len(frac); i < 9; i++ {
		f *= 10
	}
	return int64(n)*1e9 + int64(f), true
}

// parseTraceLocation reads %pS ("udp_rcv+0x4bc/0xd00": the size after
// the slash is dropped, to match the BPF probe's symbol+offset) or a
// raw address ("0xffffffff81a2b3c4"), which is returned for resolving.
func parseTraceLocation(v string) (string, uint64) {
	if hex, ok := strings.CutPrefix(v, "0x"); ok {
		if a, err := strconv.ParseUint(hex, 16, 64); err == nil {
			return v, a
		}
	}
	if sym, _, ok := strings.Cut(v, "/"); ok {
		return sym, 0
	}
	return v, 0
}

// reasonName names a printed reason: names pass through; a number
// (__print_symbolic prints "0x..." for values outside its table) is
// looked up in reasons.
func reasonName(printed string, reasons map[uint32]string) string {
	v, err := strconv.ParseUint(printed, 0, 32)
	if err != nil {
		return printed
	}
	if name, ok := reasons[uint32(v)]; ok {
		return name
	}
	return printed
}

// parseReasonFormat reads the reason names from the kfree_skb event's
// format file: the table of `__print_symbolic(REC->reason, { 2,
// "NOT_SPECIFIED" }, ...)` in its print fmt.
func parseReasonFormat(format string) (map[uint32]string, error) {
	const start = "__print_symbolic(REC->reason,"
	i := strings.Index(format, start)
	if i < 0 {
		return nil, errors.New("no symbolic reason table in print fmt")
	}
	s := format[i+len(start):]
	names := make(map[uint32]string)
	for {
		s = strings.TrimLeft(s, " \t\n,")
		if !strings.HasPrefix(s, "{") {
			break
		}
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return nil, errors.New("unterminated entry in reason table")
		}
		num, name, ok := strings.Cut(s[1:end], ",")
		v, err := strconv.ParseUint(strings.TrimSpace(num), 0, 32)
		name = strings.Trim(strings.TrimSpace(name), `"`)
		if !ok || err != nil || name == "" {
			return nil, errors.New("malformed entry in reason table: " + s[:end+1])
		}
		names[uint32(v)] = name
		s = s[end+1:]
	}
	if len(names) == 0 {
		return nil, errors.New("empty reason table in print fmt")
	}
	return names, nil
}
