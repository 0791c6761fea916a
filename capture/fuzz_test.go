package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// FuzzFile feeds arbitrary bytes to the capture reader: it must return
// frames or an error, never panic, and never loop without progress.
func FuzzFile(f *testing.F) {
	f.Add(pcapBytes(binary.LittleEndian, false, 1, []byte{1, 2, 3}))
	f.Add(pcapBytes(binary.BigEndian, true, 276, make([]byte, 20)))
	var n ngBuilder
	n.section()
	n.iface(1, "eth0", 9)
	n.packet(0, 12345, []byte{1, 2, 3, 4, 5}, 1, "c")
	f.Add(n.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		defer r.Close()
		for i := 0; i <= len(data); i++ {
			fr, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && err.Error() == "" {
					t.Fatal("empty error text")
				}
				return
			}
			if len(fr.Data) > len(data) {
				t.Fatalf("frame of %d bytes from %d input bytes", len(fr.Data), len(data))
			}
		}
		t.Fatalf("more frames than input bytes")
	})
}
