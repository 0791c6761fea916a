package capture

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// readBufferSize is the read-ahead of file sources. Records that fit are
// returned without a copy.
const readBufferSize = 1 << 20

// maxRecordSize bounds one packet record or pcapng block; larger lengths
// are treated as corruption rather than allocated.
const maxRecordSize = 64 << 20

// FormatError reports a capture file that cannot be read past Offset.
// Every frame before Offset was returned intact.
type FormatError struct {
	Path   string // the file, "-" for standard input
	Offset int64  // byte offset of the damage in the (uncompressed) stream
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s: byte %d: %s", e.Path, e.Offset, e.Msg)
}

// File reads a pcap or pcapng capture, optionally gzip-compressed.
type File struct {
	path    string
	closer  io.Closer // the opened file; nil for standard input
	gz      *gzip.Reader
	r       *bufio.Reader
	off     int64           // bytes consumed from the uncompressed stream
	dataOff int64           // where the last frame's bytes start in that stream
	counted *countingReader // the opened file's bytes read; nil for a reader
	size    int64           // the opened file's size; 0: unknown
	records recordReader
	buf     []byte // holds records larger than the read-ahead
	warn    func(error)
}

// recordReader is the format-specific part of a File.
type recordReader interface {
	next(f *File) (Frame, error)
	// linkTypes lists the link types declared so far.
	linkTypes() []LinkType
}

// Open opens a capture file: path "-" reads standard input. The format
// (pcap with micro- or nanosecond stamps in either byte order, pcapng, and a
// gzip layer around either) is detected from the first bytes.
func Open(path string) (*File, error) {
	var in io.Reader
	f := &File{path: path}
	if path == "-" {
		in = os.Stdin
	} else {
		osf, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open capture: %w", err)
		}
		f.closer = osf
		if st, err := osf.Stat(); err == nil && st.Mode().IsRegular() {
			f.size = st.Size()
		}
		f.counted = &countingReader{r: osf}
		in = f.counted
	}
	if err := f.init(in); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// NewReader reads a capture from r; name is used in error messages.
func NewReader(r io.Reader, name string) (*File, error) {
	f := &File{path: name}
	if err := f.init(r); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *File) init(in io.Reader) error {
	f.r = bufio.NewReaderSize(in, readBufferSize)
	if magic, _ := f.r.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(f.r)
		if err != nil {
			return fmt.Errorf("%s: read gzip header: %w", f.path, err)
		}
		gz.Multistream(true)
		f.gz = gz
		f.r = bufio.NewReaderSize(gz, readBufferSize)
	}
	magic, err := f.r.Peek(4)
	if len(magic) == 0 {
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: %w", f.path, err)
		}
		return &FormatError{Path: f.path, Msg: "empty file, no capture header"}
	}
	if len(magic) < 4 {
		return &FormatError{Path: f.path, Msg: "file ends inside the capture header"}
	}
	switch {
	case isPcapMagic(magic):
		f.records, err = newPcapReader(f)
	case isPcapngMagic(magic):
		f.records, err = newPcapngReader(f)
	default:
		return &FormatError{Path: f.path, Msg: fmt.Sprintf("not a pcap or pcapng file (starts with % x)", magic)}
	}
	return err
}

// Next returns the next frame, or io.EOF after the last one. A damaged file
// yields every complete frame before the damage, then a *FormatError.
func (f *File) Next() (Frame, error) {
	return f.records.next(f)
}

// Record is one entry of a capture file, in file order: a frame, or
// (Custom non-nil) one of hooktrace's custom records.
type Record struct {
	Frame  Frame
	Custom *CustomRecord // valid until the next read
}

// NextRecord returns the next frame or hooktrace custom record, in file
// order, or io.EOF after the last one. Custom blocks that are damaged,
// another tool's, or of a newer hooktrace version are skipped, each with
// a warning to the function OnWarning set. Like Next, a damaged file
// yields every complete record before the damage, then a *FormatError.
func (f *File) NextRecord() (Record, error) {
	if p, ok := f.records.(*pcapngReader); ok {
		fr, c, err := p.nextRecord(f, true)
		return Record{Frame: fr, Custom: c}, err
	}
	fr, err := f.records.next(f)
	return Record{Frame: fr}, err
}

// OnWarning sets the function told about what NextRecord skips (nil:
// nothing is told). Each warning is one line naming the file and byte.
func (f *File) OnWarning(fn func(error)) { f.warn = fn }

func (f *File) warnf(off int64, format string, args ...any) {
	if f.warn != nil {
		f.warn(&FormatError{Path: f.path, Offset: off, Msg: fmt.Sprintf(format, args...)})
	}
}

// LinkTypes lists the link types the file has declared so far: one for
// pcap, one per interface seen for pcapng.
func (f *File) LinkTypes() []LinkType {
	return f.records.linkTypes()
}

// FrameOffset is where the bytes of the frame Next or NextRecord
// returned last start in the (uncompressed) stream. For a file that is
// not Compressed, they can be read again from there with ReadAt.
func (f *File) FrameOffset() int64 { return f.dataOff }

// Compressed says whether the stream is gzip-compressed, so that its
// offsets are not those of the file.
func (f *File) Compressed() bool { return f.gz != nil }

// Host is the host the file's first section says it was recorded on
// (hooktrace writes it with -w); zero when the file does not say. It is
// known once the first record was read.
func (f *File) Host() Host {
	if p, ok := f.records.(*pcapngReader); ok {
		return p.host
	}
	return Host{}
}

// Progress returns how many bytes of the opened file (compressed, if it
// is) were read, and its size: (0, 0) when unknown (standard input, a
// reader, not a regular file), for a progress bar.
func (f *File) Progress() (read, total int64) {
	if f.counted == nil || f.size == 0 {
		return 0, 0
	}
	return f.counted.n.Load(), f.size
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Path is the name the file was opened with.
func (f *File) Path() string { return f.path }

// Close releases the file.
func (f *File) Close() error {
	var err error
	if f.gz != nil {
		err = f.gz.Close()
	}
	if f.closer != nil {
		if cerr := f.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// read returns the next n bytes of the stream. The slice is valid until
// the next read. A short stream gives a *FormatError naming what was being
// read; a clean end before any byte gives io.EOF.
func (f *File) read(n int, what string) ([]byte, error) {
	if n > maxRecordSize {
		return nil, f.formatError(fmt.Sprintf("%s claims %d bytes, more than the %d allowed", what, n, maxRecordSize))
	}
	if n <= readBufferSize {
		b, err := f.r.Peek(n)
		if len(b) == n {
			f.r.Discard(n)
			f.off += int64(n)
			return b, nil
		}
		return nil, f.shortRead(len(b), n, what, err)
	}
	if cap(f.buf) < n {
		f.buf = make([]byte, n)
	}
	b := f.buf[:n]
	got, err := io.ReadFull(f.r, b)
	if got == n {
		f.off += int64(n)
		return b, nil
	}
	return nil, f.shortRead(got, n, what, err)
}

func (f *File) shortRead(got, want int, what string, err error) error {
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("%s: byte %d: read %s: %w", f.path, f.off, what, err)
	}
	if got == 0 && what == recordHeaderName {
		return io.EOF
	}
	return f.formatError(fmt.Sprintf("truncated %s: %d of %d bytes present", what, got, want))
}

func (f *File) formatError(msg string) error {
	return &FormatError{Path: f.path, Offset: f.off, Msg: msg}
}

// recordHeaderName names the unit whose clean absence means end of file.
const recordHeaderName = "record header"
