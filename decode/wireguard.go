package decode

import (
	"encoding/binary"
	"fmt"

	"github.com/gopacket/gopacket"
)

// WireGuard message types.
const (
	wgInitiation = 1
	wgResponse   = 2
	wgCookie     = 3
	wgData       = 4
)

// wgSizes are the fixed sizes of the handshake messages.
var wgSizes = [...]int{wgInitiation: 148, wgResponse: 92, wgCookie: 64}

// WireGuard is the header of one WireGuard message: the type, and the
// sender/receiver indexes and counter that identify a session.
type WireGuard struct {
	Type     uint8
	Sender   uint32 // initiation and response
	Receiver uint32 // response, cookie and data
	Counter  uint64 // data
	contents []byte
	payload  []byte
}

// looksLikeWireGuard is the heuristic for UDP ports other than 51820: a
// known type, three zero bytes, and the exact size of that message.
func looksLikeWireGuard(b []byte) bool {
	if len(b) < 4 || b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return false
	}
	switch b[0] {
	case wgInitiation, wgResponse, wgCookie:
		return len(b) == wgSizes[b[0]]
	}
	return false
}

// TypeName names the message type.
func (w *WireGuard) TypeName() string {
	switch w.Type {
	case wgInitiation:
		return "handshake initiation"
	case wgResponse:
		return "handshake response"
	case wgCookie:
		return "cookie reply"
	case wgData:
		return "transport data"
	}
	return "unknown"
}

// DecodeFromBytes decodes a WireGuard message header.
func (w *WireGuard) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	*w = WireGuard{}
	if len(data) < 4 {
		df.SetTruncated()
		return fmt.Errorf("WireGuard header needs 4 bytes, %d present", len(data))
	}
	w.Type = data[0]
	if data[1]|data[2]|data[3] != 0 {
		return fmt.Errorf("WireGuard reserved bytes are not zero")
	}
	need := 0
	switch w.Type {
	case wgInitiation, wgResponse, wgCookie:
		need = wgSizes[w.Type]
	case wgData:
		need = 16
	default:
		return fmt.Errorf("WireGuard message type %d unknown", w.Type)
	}
	if len(data) < need {
		df.SetTruncated()
		return fmt.Errorf("WireGuard %s needs %d bytes, %d present", w.TypeName(), need, len(data))
	}
	le := binary.LittleEndian
	switch w.Type {
	case wgInitiation:
		w.Sender = le.Uint32(data[4:])
	case wgResponse:
		w.Sender = le.Uint32(data[4:])
		w.Receiver = le.Uint32(data[8:])
	case wgCookie:
		w.Receiver = le.Uint32(data[4:])
	case wgData:
		w.Receiver = le.Uint32(data[4:])
		w.Counter = le.Uint64(data[8:])
	}
	w.contents, w.payload = data[:need], data[need:]
	if w.Type != wgData {
		w.contents, w.payload = data, nil
	}
	return nil
}

// CanDecode reports the WireGuard layer type.
func (w *WireGuard) CanDecode() gopacket.LayerClass { return layerTypeWireGuard }

// LayerType returns the WireGuard layer type.
func (w *WireGuard) LayerType() gopacket.LayerType { return layerTypeWireGuard }

// NextLayerType is zero: the payload is encrypted.
func (w *WireGuard) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }

// LayerPayload returns the encrypted payload of a data message.
func (w *WireGuard) LayerPayload() []byte { return w.payload }

// LayerContents returns the message header.
func (w *WireGuard) LayerContents() []byte { return w.contents }
