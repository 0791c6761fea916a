package decode

import (
	"testing"

	"github.com/gopacket/gopacket"
)

// FuzzAppLayers feeds arbitrary bytes straight to hooktrace's own
// decoders (NFLOG, WireGuard, TLS ClientHello, HTTP), past the dispatch
// heuristics that FuzzDecode must first satisfy.
func FuzzAppLayers(f *testing.F) {
	f.Add(uint8(0), []byte{2, 0, 0, 5, 8, 0, 1, 0, 8, 0, 1, 0, 12, 0, 10, 0, 'h', 'x', 0, 0})
	f.Add(uint8(1), append([]byte{1, 0, 0, 0}, make([]byte, 144)...))
	f.Add(uint8(2), clientHello("example.com"))
	f.Add(uint8(3), []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add(uint8(3), []byte("HTTP/1.1 404 Not Found\r\n"))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		var n NFLOG
		var w WireGuard
		var h TLSHello
		var hp HTTP
		dls := []gopacket.DecodingLayer{&n, &w, &h, &hp}
		dl := dls[int(which)%len(dls)]
		if err := dl.DecodeFromBytes(data, gopacket.NilDecodeFeedback); err != nil {
			return
		}
		l := Layer{Proto: protoOf(dl.NextLayerType()), dl: dl}
		var fw discardFields
		l.WriteFields(&fw)
		if p := dl.LayerPayload(); len(p) > len(data) {
			t.Fatalf("payload of %d bytes from %d", len(p), len(data))
		}
	})
}
