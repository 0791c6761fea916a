package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
	"github.com/hooktrace/hooktrace/ui"
)

// version names this build in the files it writes.
const version = "hooktrace 0.2"

// output is where packets go: a printer on stdout, a pcapng file, or both.
type output struct {
	out     *bufio.Writer
	printer ui.PacketPrinter
	stats   *ui.NDJSON // writes the stats record in --json mode
	file    *os.File
	fileBuf *bufio.Writer
	pcapng  *capture.PcapngWriter
}

// openOutput sets up what the options ask for. Without -w, packets are
// printed as text unless --json; with -w, only when asked.
func openOutput(o *options, stdout io.Writer) (*output, error) {
	out := &output{out: bufio.NewWriterSize(stdout, 256<<10)}
	switch {
	case o.json:
		j := ui.NewNDJSON(out.out)
		out.printer, out.stats = j, j
	case o.print || o.writeFile == "":
		out.printer = ui.NewText(out.out, time.Local)
	}
	if o.writeFile != "" {
		f, err := os.Create(o.writeFile)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", o.writeFile, err)
		}
		out.file = f
		out.fileBuf = bufio.NewWriterSize(f, 1<<20)
		out.pcapng, err = capture.NewPcapngWriter(out.fileBuf, version)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("write %s: %w", o.writeFile, err)
		}
	}
	return out, nil
}

// packet prints and/or writes one packet.
func (o *output) packet(n uint64, f capture.Frame, dec *decode.Decoder) error {
	if o.pcapng != nil {
		if err := o.pcapng.WritePacket(f); err != nil {
			return fmt.Errorf("write pcapng: %w", err)
		}
	}
	if o.printer != nil {
		if err := o.printer.Packet(n, dec.Decode(f)); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	return nil
}

// close flushes everything; the first error wins.
func (o *output) close() error {
	err := o.out.Flush()
	if err != nil {
		err = fmt.Errorf("write output: %w", err)
	}
	if o.file != nil {
		if ferr := o.fileBuf.Flush(); ferr != nil && err == nil {
			err = fmt.Errorf("write %s: %w", o.file.Name(), ferr)
		}
		if cerr := o.file.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", o.file.Name(), cerr)
		}
	}
	return err
}
