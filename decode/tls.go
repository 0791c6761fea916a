package decode

import (
	"encoding/binary"
	"fmt"

	"github.com/gopacket/gopacket"
)

// TLSHello is the part of a TLS ClientHello that says where a connection
// goes: the server name (SNI), offered ALPN protocols and versions.
type TLSHello struct {
	RecordVersion uint16 // version in the record header
	HelloVersion  uint16 // legacy_version in the ClientHello
	SNI           []byte // server_name, empty when absent
	ALPN          []byte // the first offered ALPN protocol, empty when absent
	contents      []byte
}

// looksLikeClientHello says whether a TCP payload starts a TLS handshake
// record holding a ClientHello.
func looksLikeClientHello(b []byte) bool {
	return len(b) >= 6 && b[0] == 0x16 && b[1] == 3 && b[2] <= 4 && b[5] == 1
}

// DecodeFromBytes decodes a ClientHello up to its server_name and ALPN
// extensions. A hello cut short (by the snap length, or split over several
// segments) keeps what was found and reports the cut.
func (t *TLSHello) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	*t = TLSHello{contents: data}
	if len(data) < 9 {
		df.SetTruncated()
		return fmt.Errorf("TLS record needs 9 bytes for a ClientHello, %d present", len(data))
	}
	t.RecordVersion = binary.BigEndian.Uint16(data[1:])
	if data[5] != 1 {
		return fmt.Errorf("TLS handshake type %d is not a ClientHello", data[5])
	}
	hello := data[9:]
	hlen := int(data[6])<<16 | int(data[7])<<8 | int(data[8])
	if hlen < len(hello) {
		hello = hello[:hlen]
	}
	r := byteReader{b: hello}
	t.HelloVersion = r.u16()
	r.skip(32)          // random
	r.skip(int(r.u8())) // session id
	r.skip(int(r.u16()))
	r.skip(int(r.u8())) // compression methods
	ext := r.bytes(int(r.u16()))
	for len(ext) >= 4 {
		typ := binary.BigEndian.Uint16(ext)
		n := int(binary.BigEndian.Uint16(ext[2:]))
		if n > len(ext)-4 {
			r.short = true
			n = len(ext) - 4
		}
		t.extension(typ, ext[4:4+n])
		ext = ext[4+n:]
	}
	if r.short || hlen > len(data)-9 {
		df.SetTruncated()
		if len(t.SNI) == 0 {
			return fmt.Errorf("TLS ClientHello truncated before the server name (%d of %d bytes)", len(data)-9, hlen)
		}
	}
	return nil
}

func (t *TLSHello) extension(typ uint16, v []byte) {
	r := byteReader{b: v}
	switch typ {
	case 0: // server_name: list of (type, name)
		list := r.bytes(int(r.u16()))
		lr := byteReader{b: list}
		for len(lr.b) > 0 && !lr.short {
			kind := lr.u8()
			name := lr.bytes(int(lr.u16()))
			if kind == 0 && len(t.SNI) == 0 {
				t.SNI = name
			}
		}
	case 16: // application_layer_protocol_negotiation
		list := r.bytes(int(r.u16()))
		lr := byteReader{b: list}
		t.ALPN = lr.bytes(int(lr.u8()))
	}
}

// CanDecode reports the TLS ClientHello layer type.
func (t *TLSHello) CanDecode() gopacket.LayerClass { return layerTypeTLSHello }

// LayerType returns the TLS ClientHello layer type.
func (t *TLSHello) LayerType() gopacket.LayerType { return layerTypeTLSHello }

// NextLayerType is zero: nothing is decoded inside TLS.
func (t *TLSHello) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }

// LayerPayload is empty.
func (t *TLSHello) LayerPayload() []byte { return nil }

// byteReader reads big-endian fields, remembering (not panicking) when
// the bytes run out.
type byteReader struct {
	b     []byte
	short bool
}

func (r *byteReader) u8() uint8 {
	if len(r.b) < 1 {
		r.short = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *byteReader) u16() uint16 {
	if len(r.b) < 2 {
		r.short = true
		r.b = nil
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *byteReader) bytes(n int) []byte {
	if n > len(r.b) {
		r.short = true
		n = len(r.b)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *byteReader) skip(n int) { r.bytes(n) }

// LayerContents returns the TLS record.
func (t *TLSHello) LayerContents() []byte { return t.contents }
