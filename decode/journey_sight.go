package decode

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"slices"
	"time"

	"github.com/gopacket/gopacket"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// Sighting is what the journey builder needs of one record: a decoded
// frame (ReadPacket) or a trace event (ReadTrace). Reading it is the
// part of a record's work that depends on the record alone, so it can be
// done on any goroutine, many at once; the builder then only joins it
// to its journey (AddSighting), in record order.
//
// (The fields are grouped by size, which leaves little padding: the
// sightings of a replay are millions, made on other goroutines than the
// builder's, and each byte of them crosses between processors.)
type Sighting struct {
	// A frame: its view of the IP packets it carries. Frame.Data and the
	// views point into the frame's bytes, which must stay as they are
	// until AddSighting returns.
	frame  capture.Frame
	pv     packetView
	reset  uint64 // the key a TCP reset answering this segment has; 0 none
	answer uint64 // a TCP reset: the key of the segment it answers
	// What the step an NFLOG message or a trace event makes says (none
	// for a quiet trace event), and the device a trace event names.
	step  *stepWhat
	iface string
	// A trace event: its namespace, trace id and time.
	netns   string
	traceID traceID
	time    time.Time
	hdr     []byte // the event's header snapshot (a copy, in a buffer ReadTrace reuses), nil without
	mark    uint32 // the packet's mark
	// An NFLOG message: its devices, and where its first IP header
	// starts (for a journey's first sighting).
	indev, outdev    uint32
	ipOff            int32
	kind             sightKind
	hasIP            bool // a frame that carries an IP packet (pv is set)
	hasHook, isNFLOG bool // an NFLOG message, and one of a hook
	quiet            bool // a trace event: the implicit end of a chain, which makes no step
	legacy           bool // an iptables-legacy TRACE line: each shows the headers
	selected         bool // a filter selected the frame (Select)
}

// Select marks a frame's sighting as one a filter selected: the journey
// it joins is Selected. Call it after reading the frame.
func (s *Sighting) Select() { s.selected = true }

type sightKind uint8

const (
	sightFrame sightKind = iota + 1
	sightTrace
)

// ReadPacket reads into s what the journey builder needs of a decoded
// frame: a capture from a device, or an NFLOG message (LINKTYPE_NFLOG).
// The sighting points into p's frame bytes (not into p). Its step's
// description comes from steps (nil: a new one).
func (s *Sighting) ReadPacket(p *Packet, steps *StepTable) {
	pv, ok := readPacket(p)
	var n *NFLOG
	ipOff := -1
	if f := p.Frame; f.LinkType == capture.LinkTypeNFLOG {
		for i := range p.Layers {
			if v, isNF := p.Layers[i].dl.(*NFLOG); isNF {
				n = v
				break
			}
		}
		for i := range p.Layers {
			if l := &p.Layers[i]; (l.Proto == ProtoIPv4 || l.Proto == ProtoIPv6) && l.Err == nil {
				ipOff, _ = l.Span(f.Data)
				break
			}
		}
	}
	s.read(p.Frame, &pv, ok, n, ipOff, steps)
}

// ReadFrame is ReadPacket for a frame not decoded: it reads what the
// builder needs straight from the bytes when decoding the frame could
// show no other IP packet in it (plainIP): an Ethernet frame or NFLOG
// message carrying TCP, UDP or ICMP in IPv4 without options or fragments,
// or in IPv6 without extension headers. For any other frame (tunnels,
// VLAN tags, fragments...) it returns false, having read nothing: decode
// it and call ReadPacket. A replay that prints only journeys so decodes
// few frames.
func (s *Sighting) ReadFrame(f capture.Frame, steps *StepTable) bool {
	var n *NFLOG
	var ip []byte
	var version byte // the IP version the link says the packet has, which decides how it is decoded
	switch f.LinkType {
	case capture.LinkTypeEthernet:
		if len(f.Data) < 14 {
			return false
		}
		ip = f.Data[14:]
		switch binary.BigEndian.Uint16(f.Data[12:]) {
		case 0x0800:
			version = 4
		case 0x86dd:
			version = 6
		}
	case capture.LinkTypeNFLOG:
		var nf NFLOG
		if nf.DecodeFromBytes(f.Data, gopacket.NilDecodeFeedback) != nil {
			return false
		}
		n, ip = &nf, nf.payload
		switch nf.Family {
		case 2:
			version = 4
		case 10:
			version = 6
		}
	}
	if version == 0 || len(ip) == 0 || ip[0]>>4 != version || !plainIP(ip) {
		return false
	}
	v, ok := readIP(ip)
	if !ok {
		return false
	}
	pv := packetView{inner: v, outer: v}
	s.read(f, &pv, true, n, cap(f.Data)-cap(ip), steps)
	return true
}

// plainIP says whether b is an IPv4 packet without options or fragments,
// or an IPv6 packet without extension headers, all there (padding after
// it aside), carrying TCP, ICMP, or UDP to a port that carries no tunnel:
// a packet decoding shows no other IP packet in (an ICMP error's quoted
// packet aside, which ReadPacket leaves too).
func plainIP(b []byte) bool {
	var l4 []byte
	var proto uint8
	switch {
	case len(b) >= 20 && b[0] == 0x45:
		n := int(binary.BigEndian.Uint16(b[2:]))
		if n < 20 || n > len(b) || binary.BigEndian.Uint16(b[6:])&0x3fff != 0 {
			return false
		}
		l4, proto = b[20:n], b[9]
		if proto == 1 { // ICMP
			return true
		}
	case len(b) >= 40 && b[0]>>4 == 6:
		n := 40 + int(binary.BigEndian.Uint16(b[4:]))
		if n == 40 || n > len(b) { // a length of 0 is a jumbogram's, in a hop-by-hop option
			return false
		}
		l4, proto = b[40:n], b[6]
		if proto == 58 { // ICMPv6
			return true
		}
	default:
		return false
	}
	switch proto {
	case 6: // TCP
		return true
	case 17:
		if len(l4) < 8 {
			return false
		}
		switch binary.BigEndian.Uint16(l4[2:]) {
		case portVXLAN, portVXLANLinux, portGeneve:
			return false
		}
		return true
	}
	return false
}

// read fills s from a frame, the view of the IP packets it carries (ok:
// it carries one), and for an NFLOG message its header (n) and where its
// first IP header starts (ipOff, -1: nowhere).
func (s *Sighting) read(f capture.Frame, pv *packetView, ok bool, n *NFLOG, ipOff int, steps *StepTable) {
	*s = Sighting{kind: sightFrame, frame: f}
	if f.LinkType == capture.LinkTypeNFLOG {
		s.isNFLOG = true
		if n == nil || !n.HasHook || !ok {
			return
		}
		s.hasHook = true
		prefix := bytes.TrimRight(n.Prefix, " \x00")
		st := stepWhat{Kind: StepNFLOG, Hook: n.HookName(), Family: nflog.FamilyName(n.Family)}
		switch string(prefix) { // hooktrace's own, most of them: no string made
		case nflog.LogPrefixFirst, nflog.LogPrefixLast:
			st.Kind, st.First = StepHook, string(prefix) == nflog.LogPrefixFirst
			if n.Family != 7 {
				st.Family = "inet"
			}
		default:
			st.Prefix = string(prefix)
		}
		s.step = steps.get(&st)
		s.indev, s.outdev, s.mark = n.Indev, n.Outdev, n.Mark
		s.ipOff = int32(ipOff)
	}
	if !ok {
		return
	}
	s.pv, s.hasIP = *pv, true
	v := &s.pv.inner
	if v.proto == 6 && v.tcpFlags&tcpRST != 0 {
		s.answer = resetKeyOf(v)
	}
	s.reset = nextResetKey(v)
}

// ReadTrace reads into s what the journey builder needs of a trace
// event. It keeps nothing of ev: s holds a copy of its headers, in a
// buffer that the next ReadTrace into s reuses. Its step's description
// comes from steps (nil: a new one).
func (s *Sighting) ReadTrace(ev *TraceEvent, steps *StepTable) {
	buf := s.hdr[:0] // the copy of the last trace event s was read from: the builder took it already
	*s = Sighting{kind: sightTrace, netns: ev.Netns, time: ev.Time, mark: ev.Mark,
		traceID: traceIDOf(ev.Netns, ev.ID), legacy: ev.Legacy}
	if len(ev.Network) > 0 {
		hdr := append(append(buf, ev.Network...), ev.Transport...)
		if v, ok := readIP(hdr); ok {
			s.hdr = hdr
			s.pv.inner = v
			s.reset = nextResetKey(&s.pv.inner)
		}
	}
	if ev.Type == nflog.TraceRule && ev.Handle == 0 && ev.RuleNumber == 0 && ev.Verdict == nflog.VerdictContinue {
		// The implicit end of a chain: nothing matched there, which the
		// next event (a policy, or the chain that jumped here) shows.
		s.quiet = true
		return
	}
	st := stepWhat{
		Kind: StepRule, Hook: ev.Hook, Family: nflog.FamilyName(ev.Family),
		Table: ev.Table, Chain: ev.Chain, Priority: ev.Priority, HasPriority: ev.HasPriority,
		Handle: ev.Handle, RuleNumber: ev.RuleNumber, Rule: ev.Rule, JumpTarget: ev.JumpTarget,
	}
	if ev.IptablesRule != "" {
		st.Rule = ev.IptablesRule
	}
	st.Rule = steps.stripCounters(st.Rule)
	if ev.Type == nflog.TracePolicy {
		st.Kind = StepPolicy
	}
	if v, ok := ev.Outcome(); ok {
		st.Verdict = v.String()
	}
	s.step = steps.get(&st)
	if ev.IIFName != "" {
		s.iface = ev.IIFName
	} else if ev.OIFName != "" {
		s.iface = ev.OIFName
	}
}

// traceID names a packet's trace id in a namespace for the builder's
// index, in one word (a map of words is looked up fastest): a 64-bit hash
// of the namespace's name, as likely to collide as the packets'
// fingerprints (hashes too), with the id multiplied by an odd constant
// in, so that two ids of one namespace never collide.
type traceID uint64

func traceIDOf(netns string, id uint32) traceID {
	return traceID(maphash.String(fpSeed, netns) ^ uint64(id)*0x9e3779b97f4a7c15)
}

// nextResetKey is the key under which the TCP reset answering segment v
// finds it; 0 when v is no TCP segment a reset answers.
func nextResetKey(v *ipView) uint64 {
	if v.proto != 6 || v.tcpFlags&tcpRST != 0 || !v.ep.Src.IsValid() {
		return 0
	}
	n := v.tcpPayload
	if v.tcpFlags&tcpSYN != 0 {
		n++
	}
	if v.tcpFlags&tcpFIN != 0 {
		n++
	}
	return resetKey(v.ep, v.tcpSeq+n)
}

// placed says whether the sighting says where it was made: an NFLOG
// copy does (its hook), and a frame that names its device, or that came
// from a capture of one device (a plain pcap); a frame of a Linux cooked
// capture (tcpdump -i any) that names none does not.
func (s *Sighting) placed() bool {
	f := &s.frame
	return s.isNFLOG || f.Iface != "" || f.Ifindex == 0 && f.LinkType != capture.LinkTypeLinuxSLL && f.LinkType != capture.LinkTypeLinuxSLL2
}

// AddSighting joins a sighting to its journey, as AddPacket and AddTrace
// do with the frame or trace event it was read from.
func (b *JourneyBuilder) AddSighting(s *Sighting) {
	switch s.kind {
	case sightFrame:
		b.addFrame(s)
	case sightTrace:
		b.addTrace(s)
	}
}

// addFrame takes the sighting of a frame.
func (b *JourneyBuilder) addFrame(s *Sighting) {
	f := s.frame
	b.packets++
	b.advance(f.Time)
	if s.isNFLOG {
		b.addNFLOG(s)
		return
	}
	if !s.hasIP {
		return
	}
	o := obs{
		at: f.Time, netns: f.Netns, iface: f.Iface, step: captureStep(f.Dir),
		proto: s.pv.inner.proto, ttl: s.pv.inner.ttl, num: b.packets - 1, from: fromPacket,
	}
	js, ok := b.join(s, &o)
	if !ok {
		return
	}
	if js.frame.Data == nil || f.Time.Before(js.frame.Time) || !js.frameKT {
		b.keepFrame(js, f, s.pv.inner, true)
	}
	b.add(js, &o, &s.pv.inner.ep)
}

// addNFLOG takes an NFLOG message: one of hooktrace's own (a packet
// entering or leaving a hook) or one of the user's log rules.
func (b *JourneyBuilder) addNFLOG(s *Sighting) {
	if !s.hasHook {
		return
	}
	f := s.frame
	v := &s.pv.inner
	o := obs{at: f.Time, netns: f.Netns, step: s.step, mark: s.mark, proto: v.proto, ttl: v.ttl, num: b.packets - 1, from: fromPacket}
	if hook := s.step.Hook; b.opt.IfName != nil {
		if s.indev != 0 && (hook == "prerouting" || hook == "input" || hook == "forward") {
			o.iface = b.opt.IfName(f.Netns, s.indev)
		} else if s.outdev != 0 {
			o.iface = b.opt.IfName(f.Netns, s.outdev)
		}
	}
	js, ok := b.join(s, &o)
	if !ok {
		return
	}
	if js.frame.Data == nil {
		// An NFLOG copy: a device capture makes a better first sighting.
		js.frameKT = false
		if s.ipOff >= 0 {
			ip := f.Data[s.ipOff:] // maybe only its first bytes (log snaplen): its header says how long it was
			b.keepFrame(js, capture.Frame{Time: f.Time, Netns: f.Netns, Iface: f.Iface, LinkType: capture.LinkTypeRaw,
				Len: IPLength(ip), Data: ip}, s.pv.inner, false)
		}
	}
	b.add(js, &o, &v.ep)
}

// keepFrame makes a copy of f the journey's first sighting, v the view
// of its innermost IP packet; kt says f's time is the kernel's. The copy
// of f's bytes is in a buffer of the builder's pool (the one of the
// sighting it replaces, when large enough), which goes back to it when
// the journey is assembled.
func (b *JourneyBuilder) keepFrame(js *jstate, f capture.Frame, v ipView, kt bool) {
	buf := js.frame.Data
	if cap(buf) < len(f.Data) {
		buf = b.pool.getBytes(len(f.Data))
	}
	f.Data = append(buf[:0], f.Data...)
	js.frame, js.frameIP, js.frameKT = f, firstIP{ep: v.ep, proto: v.proto, read: v.fp != 0}, kt
}

// firstIP is what a journey's first sighting showed of its innermost IP
// packet: for a journey seen only inside tunnel packets, its protocol
// and endpoints.
type firstIP struct {
	ep    Endpoints
	proto uint8
	read  bool // the packet could be read (ipView.fp is not 0)
}

// addTrace takes the sighting of a trace event. The first event of each
// base chain carries the packet's headers and finds (or starts) its
// journey; the events after it follow by the trace id, per namespace.
func (b *JourneyBuilder) addTrace(s *Sighting) {
	b.traces++
	b.advance(s.time)
	var js *jstate
	var ep *Endpoints
	o := obs{num: b.traces - 1, from: fromTrace}
	if s.hdr != nil {
		v := &s.pv.inner
		ep, o.proto, o.ttl = &v.ep, v.proto, v.ttl
		// The newest journey of the fingerprint, when this base chain
		// traced its packet already, is another packet's (live, trace
		// events come before the frames, which wait out the capture's
		// reordering): this one starts its own, as in join. (Only the
		// first nf_tables event of a base chain shows the headers; every
		// iptables-legacy line does.)
		e, found := b.find(v.fp, s.time)
		again := found && s.step != nil && !s.legacy && e.js.tracedAt(s, v.ttl, e.outer)
		if found && !again {
			js, o.outer = e.js, e.outer
		} else {
			js = b.start(s.time)
			b.index(js, v.fp, false, again)
		}
		b.indexReset(js, s.reset, false)
		if js.frame.Data == nil {
			// The headers only: as long as they say the packet was.
			b.keepFrame(js, capture.Frame{Time: s.time, Netns: s.netns, LinkType: capture.LinkTypeRaw, Len: IPLength(s.hdr), Data: s.hdr}, *v, false)
		}
		// The trace id finds js from now on. (A journey that does not
		// list it yet is not the one the id finds: looking that up would
		// cost one more lookup for each packet.)
		if !slices.Contains(js.traces, s.traceID) || b.byTrace[s.traceID] != js {
			b.byTrace[s.traceID] = js
			js.traces = append(js.traces, s.traceID)
		}
	}
	if js == nil {
		var ok bool
		if js, ok = b.byTrace[s.traceID]; !ok || !js.open {
			b.stats.Unmatched++
			return
		}
		o.outer = js.lastOuter(s.netns)
	}
	if s.quiet {
		if js.last.Before(s.time) {
			js.last = s.time
			b.touch(js)
		}
		js.quiet = append(js.quiet, b.traces-1)
		return
	}
	o.at, o.netns, o.iface, o.step, o.mark = s.time, s.netns, s.iface, s.step, s.mark
	b.add(js, &o, ep)
}
