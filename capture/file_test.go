package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pcapBytes builds a classic pcap in the given byte order.
func pcapBytes(order binary.ByteOrder, nano bool, linkType uint32, recs ...[]byte) []byte {
	var b bytes.Buffer
	magic := uint32(0xa1b2c3d4)
	if nano {
		magic = 0xa1b23c4d
	}
	hdr := make([]byte, 24)
	order.PutUint32(hdr, magic)
	order.PutUint16(hdr[4:], 2)
	order.PutUint16(hdr[6:], 4)
	order.PutUint32(hdr[16:], 65535)
	order.PutUint32(hdr[20:], linkType)
	b.Write(hdr)
	for i, r := range recs {
		rh := make([]byte, 16)
		order.PutUint32(rh, uint32(1767355200+i))
		order.PutUint32(rh[4:], 500)
		order.PutUint32(rh[8:], uint32(len(r)))
		order.PutUint32(rh[12:], uint32(len(r)+10))
		b.Write(rh)
		b.Write(r)
	}
	return b.Bytes()
}

// ngBuilder writes pcapng blocks by hand, little-endian.
type ngBuilder struct{ bytes.Buffer }

func (n *ngBuilder) block(typ uint32, body []byte) {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	l := uint32(12 + len(body))
	binary.Write(&n.Buffer, binary.LittleEndian, typ)
	binary.Write(&n.Buffer, binary.LittleEndian, l)
	n.Write(body)
	binary.Write(&n.Buffer, binary.LittleEndian, l)
}

func ngOption(code uint16, val []byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(val)))
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (n *ngBuilder) section() {
	body := binary.LittleEndian.AppendUint32(nil, 0x1a2b3c4d)
	body = binary.LittleEndian.AppendUint16(body, 1)
	body = binary.LittleEndian.AppendUint16(body, 0)
	body = binary.LittleEndian.AppendUint64(body, ^uint64(0))
	n.block(blockSectionHeader, body)
}

func (n *ngBuilder) iface(lt uint16, name string, tsresol byte) {
	body := binary.LittleEndian.AppendUint16(nil, lt)
	body = append(body, 0, 0)
	body = binary.LittleEndian.AppendUint32(body, 65535)
	body = append(body, ngOption(optIfName, []byte(name))...)
	if tsresol != 0 {
		body = append(body, ngOption(optIfTsresol, []byte{tsresol})...)
	}
	body = append(body, 0, 0, 0, 0)
	n.block(blockInterface, body)
}

func (n *ngBuilder) packet(ifc uint32, ts uint64, data []byte, flags uint32, comment string) {
	body := binary.LittleEndian.AppendUint32(nil, ifc)
	body = binary.LittleEndian.AppendUint32(body, uint32(ts>>32))
	body = binary.LittleEndian.AppendUint32(body, uint32(ts))
	body = binary.LittleEndian.AppendUint32(body, uint32(len(data)))
	body = binary.LittleEndian.AppendUint32(body, uint32(len(data)))
	body = append(body, data...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	if flags != 0 {
		body = append(body, ngOption(optEpbFlags, binary.LittleEndian.AppendUint32(nil, flags))...)
	}
	if comment != "" {
		body = append(body, ngOption(optComment, []byte(comment))...)
	}
	n.block(blockEnhancedPacket, body)
}

func readAll(t *testing.T, data []byte) ([]Frame, error) {
	t.Helper()
	f, err := NewReader(bytes.NewReader(data), "test.pcap")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Frame
	for {
		fr, err := f.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		fr.Data = append([]byte(nil), fr.Data...)
		out = append(out, fr)
	}
}

func TestPcapByteOrdersAndPrecision(t *testing.T) {
	rec := []byte{1, 2, 3, 4, 5}
	for _, tc := range []struct {
		name  string
		order binary.ByteOrder
		nano  bool
		want  time.Duration
	}{
		{"little micro", binary.LittleEndian, false, 500 * time.Microsecond},
		{"big micro", binary.BigEndian, false, 500 * time.Microsecond},
		{"little nano", binary.LittleEndian, true, 500 * time.Nanosecond},
		{"big nano", binary.BigEndian, true, 500 * time.Nanosecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frames, err := readAll(t, pcapBytes(tc.order, tc.nano, 1, rec, rec))
			if err != nil {
				t.Fatal(err)
			}
			if len(frames) != 2 {
				t.Fatalf("got %d frames, want 2", len(frames))
			}
			f := frames[1]
			if got := f.Time.Sub(time.Unix(1767355201, 0)); got != tc.want {
				t.Errorf("sub-second time %v, want %v", got, tc.want)
			}
			if !bytes.Equal(f.Data, rec) || f.Len != 15 || f.LinkType != LinkTypeEthernet {
				t.Errorf("frame %+v", f)
			}
		})
	}
}

func TestCookedHeadersGiveDirection(t *testing.T) {
	sll := []byte{0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 8, 0}
	sll2 := []byte{8, 0, 0, 0, 0, 0, 0, 7, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0}
	frames, err := readAll(t, pcapBytes(binary.LittleEndian, false, uint32(LinkTypeLinuxSLL), sll))
	if err != nil || frames[0].Dir != DirOut {
		t.Fatalf("SLL outgoing: %v %+v", err, frames)
	}
	frames, err = readAll(t, pcapBytes(binary.LittleEndian, false, uint32(LinkTypeLinuxSLL2), sll2))
	if err != nil || frames[0].Dir != DirIn || frames[0].Ifindex != 7 {
		t.Fatalf("SLL2 host ifindex 7: %v %+v", err, frames)
	}
}

func TestPcapng(t *testing.T) {
	var n ngBuilder
	n.section()
	n.iface(1, "eth0", 0)
	n.iface(101, "hxs/v1", 9)
	n.packet(0, 1767355200_000001, []byte{0xaa, 0xbb}, 1, "first")
	n.packet(1, 1767355200_000000002, []byte{0x45}, 2, "")
	n.block(5, make([]byte, 12))      // interface statistics: skipped
	n.block(0x40000bad, []byte{1, 2}) // custom block: skipped
	frames, err := readAll(t, n.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 2 {
		t.Fatalf("got %d frames", len(frames))
	}
	a, b := frames[0], frames[1]
	if a.Iface != "eth0" || a.Dir != DirIn || a.Comment != "first" || a.LinkType != 1 ||
		!a.Time.Equal(time.Unix(1767355200, 1000)) {
		t.Errorf("first frame %+v", a)
	}
	if b.Iface != "hxs/v1" || b.Dir != DirOut || b.LinkType != 101 || !b.Time.Equal(time.Unix(1767355200, 2)) {
		t.Errorf("second frame %+v", b)
	}
}

func TestPcapngPowerOfTwoResolution(t *testing.T) {
	ifc := ngInterface{exp: 10, pow2: true}
	if got := ifc.time(5<<10 | 512); !got.Equal(time.Unix(5, 500_000_000)) {
		t.Errorf("2^-10 units: %v", got)
	}
}

func TestGzipAndFile(t *testing.T) {
	raw := pcapBytes(binary.LittleEndian, false, 1, []byte{1, 2, 3})
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(raw)
	zw.Close()
	path := filepath.Join(t.TempDir(), "x.pcap.gz")
	if err := os.WriteFile(path, z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fr, err := f.Next()
	if err != nil || !bytes.Equal(fr.Data, []byte{1, 2, 3}) {
		t.Fatalf("gzip frame %v %+v", err, fr)
	}
	if _, err := f.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestBadInput(t *testing.T) {
	good := pcapBytes(binary.LittleEndian, false, 1, []byte{1, 2, 3, 4}, make([]byte, 100))
	var ng ngBuilder
	ng.section()
	ng.iface(1, "e", 0)
	ng.packet(0, 1, []byte{1}, 0, "")
	okLen := ng.Len()
	ng.Write([]byte{6, 0, 0, 0, 7, 0, 0, 0}) // block length 7
	for _, tc := range []struct {
		name       string
		data       []byte
		wantFrames int
		wantErr    string
		wantOffset int64
	}{
		{"empty", nil, 0, "empty file", 0},
		{"text", []byte("hello, this is not a capture"), 0, "not a pcap or pcapng file", 0},
		{"header cut", good[:10], 0, "truncated pcap file header", 0},
		{"record cut", good[:len(good)-60], 1, "truncated packet record: 40 of 100 bytes present", 24 + 16 + 4 + 16},
		{"record header cut", good[:24+16+4+5], 1, "truncated record header: 5 of 16 bytes", 24 + 16 + 4},
		{"pcapng bad block length", ng.Bytes(), 1, "invalid length 7", int64(okLen)},
		{"huge record", pcapBytes(binary.LittleEndian, false, 1)[:24:24], 0, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data
			if tc.name == "huge record" {
				data = append(data, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0)
				tc.wantErr = "claims 2147483647 captured bytes"
				tc.wantOffset = 24
			}
			frames, err := readAll(t, data)
			if len(frames) != tc.wantFrames {
				t.Errorf("got %d frames before the error, want %d", len(frames), tc.wantFrames)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("want a *FormatError, got %v", err)
			}
			if !strings.Contains(fe.Msg, tc.wantErr) || fe.Offset != tc.wantOffset {
				t.Errorf("error %q, want %q at byte %d", err, tc.wantErr, tc.wantOffset)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestOpenMissingFile(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "nope.pcap"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("want not-exist error, got %v", err)
	}
}

// TestFrameOffset reads every frame of the shipped captures again at the
// offset the reader gives for it.
func TestFrameOffset(t *testing.T) {
	paths, err := filepath.Glob("../fixtures/*.pcap*")
	if err != nil {
		t.Fatal(err)
	}
	frames := 0
	for _, path := range paths {
		f, err := Open(path)
		if err != nil {
			continue // the broken fixtures
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for {
			fr, err := f.Next()
			if err != nil {
				break
			}
			frames++
			if f.Compressed() {
				continue
			}
			off := f.FrameOffset()
			if off < 0 || off+int64(len(fr.Data)) > int64(len(raw)) || !bytes.Equal(raw[off:off+int64(len(fr.Data))], fr.Data) {
				t.Errorf("%s: frame at offset %d: bytes there differ from the frame's", path, off)
				break
			}
		}
		if strings.HasSuffix(path, ".gz") != f.Compressed() {
			t.Errorf("%s: Compressed() = %v", path, f.Compressed())
		}
		f.Close()
	}
	if frames < 100 {
		t.Fatalf("only %d frames checked", frames)
	}
}

// TestProgress counts the bytes of the file read, compressed or not.
func TestProgress(t *testing.T) {
	for _, path := range []string{"../fixtures/multi.pcapng", "../fixtures/multi.pcapng.gz"} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if read, total := f.Progress(); total != st.Size() || read <= 0 || read > total {
			t.Errorf("%s opened: progress %d of %d, want some of %d", path, read, total, st.Size())
		}
		for {
			if _, err := f.Next(); err != nil {
				break
			}
		}
		if read, total := f.Progress(); read != total || total != st.Size() {
			t.Errorf("%s read: progress %d of %d, want all of %d", path, read, total, st.Size())
		}
		f.Close()
	}
	data, err := os.ReadFile("../fixtures/multi.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(data), "x")
	if err != nil {
		t.Fatal(err)
	}
	if read, total := r.Progress(); read != 0 || total != 0 {
		t.Errorf("a reader: progress %d of %d, want unknown", read, total)
	}
}
