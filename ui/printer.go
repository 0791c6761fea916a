// Package ui renders what hooktrace decoded: text and NDJSON printers for
// scripts and pipes, and (in its own package beneath) the terminal UI.
package ui

import (
	"io"
	"strconv"
	"time"

	"github.com/hooktrace/hooktrace/decode"
)

// PacketPrinter writes one record per packet.
type PacketPrinter interface {
	// Packet writes packet number n (1-based, its position in the input).
	Packet(n uint64, p *decode.Packet) error
}

// NDJSON writes newline-delimited JSON records; the schema is in README.md.
type NDJSON struct {
	w       io.Writer
	j       jsonBuf
	sum     []byte
	clock   stampCache
	decoder *decode.Decoder // for trace header snapshots, made when first needed
}

func (p *NDJSON) dec() *decode.Decoder {
	if p.decoder == nil {
		p.decoder = decode.NewDecoder()
	}
	return p.decoder
}

// NewNDJSON returns an NDJSON printer writing to w. Wrap w in a
// bufio.Writer: each record is one Write.
func NewNDJSON(w io.Writer) *NDJSON {
	return &NDJSON{w: w, j: jsonBuf{b: make([]byte, 0, 4096)}}
}

// Packet writes a {"type":"packet",...} record.
func (p *NDJSON) Packet(n uint64, pkt *decode.Packet) error {
	j := &p.j
	j.reset()
	j.open('{')
	j.plain("type", "packet")
	j.Uint("n", n)
	p.packetMembers(pkt)
	j.close('}')
	j.b = append(j.b, '\n')
	_, err := p.w.Write(j.b)
	return err
}

// packetMembers writes a packet record's members after "type" and "n".
func (p *NDJSON) packetMembers(pkt *decode.Packet) {
	j := &p.j
	f := &pkt.Frame
	p.time("time", f.Time)
	j.Str("iface", f.Iface)
	if f.Ifindex != 0 {
		j.Uint("ifindex", uint64(f.Ifindex))
	}
	j.Str("netns", f.Netns)
	j.plain("dir", f.Dir.String())
	j.Uint("len", uint64(f.Len))
	j.Uint("caplen", uint64(len(f.Data)))
	j.Uint("linktype", uint64(f.LinkType))
	if f.Comment != "" {
		j.Str("comment", f.Comment)
	}
	p.writeLayers(pkt)
}

// writeLayers writes a packet's "layers" and "summary" members.
func (p *NDJSON) writeLayers(pkt *decode.Packet) {
	j := &p.j
	j.BeginList("layers")
	for i := range pkt.Layers {
		writeLayer(j, &pkt.Layers[i])
	}
	j.EndList()
	p.sum = pkt.AppendSummary(p.sum[:0])
	j.Text("summary", p.sum)
}

func writeLayer(j *jsonBuf, l *decode.Layer) {
	j.BeginObject()
	j.plain("proto", l.Proto.String())
	if l.Depth > 0 {
		j.Uint("depth", uint64(l.Depth))
	}
	if l.Quoted {
		j.Bool("quoted", true)
	}
	if l.Tunnel != decode.TunnelNone {
		j.plain("tunnel", l.Tunnel.String())
	}
	l.WriteFields(j)
	if l.Err != nil {
		j.Str("error", l.Err.Error())
	}
	j.EndObject()
}

// Text writes one tcpdump-like line per packet: time, interface,
// direction and every encapsulation layer.
type Text struct {
	w       io.Writer
	loc     *time.Location
	b       []byte
	decoder *decode.Decoder // for trace header snapshots, made when first needed
}

func (t *Text) dec() *decode.Decoder {
	if t.decoder == nil {
		t.decoder = decode.NewDecoder()
	}
	return t.decoder
}

// NewText returns a text printer writing times in loc (time.Local for a
// user's terminal, as tcpdump does).
func NewText(w io.Writer, loc *time.Location) *Text {
	return &Text{w: w, loc: loc, b: make([]byte, 0, 1024)}
}

// Packet writes one line.
func (t *Text) Packet(n uint64, pkt *decode.Packet) error {
	f := &pkt.Frame
	b := f.Time.In(t.loc).AppendFormat(t.b[:0], "15:04:05.000000")
	switch {
	case f.Netns != "" && f.Iface != "":
		b = append(append(append(append(b, ' '), f.Netns...), '/'), f.Iface...)
	case f.Iface != "":
		b = append(append(b, ' '), f.Iface...)
	case f.Ifindex != 0:
		b = strconv.AppendInt(append(b, " if"...), int64(f.Ifindex), 10)
	}
	if d := f.Dir.String(); d != "" {
		b = append(append(b, ' '), d...)
	}
	b = append(b, ' ')
	b = pkt.AppendSummary(b)
	b = append(b, '\n')
	t.b = b
	_, err := t.w.Write(b)
	return err
}
