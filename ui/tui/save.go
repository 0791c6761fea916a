package tui

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hooktrace/hooktrace/capture"
)

// saveName proposes a file name for saving.
func (m *Model) saveName() string {
	name := "hooktrace-" + m.opt.Now().Format("20060102-150405") + ".pcapng"
	if m.opt.SaveDir != "" {
		name = filepath.Join(m.opt.SaveDir, name)
	}
	return name
}

// save writes the packets the list shows to path as pcapng.
func (m *Model) save(path string) {
	n, err := m.writePcapng(path)
	if err != nil {
		m.setMessage("save failed: %v", err)
		return
	}
	m.setMessage("%d packets written to %s", n, path)
}

func (m *Model) writePcapng(path string) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := capture.NewPcapngWriter(bw, "hooktrace")
	if err != nil {
		f.Close()
		return 0, err
	}
	n := m.viewLen()
	for i := 0; i < n; i++ {
		if err := w.WritePacket(m.st.frame(m.rowAt(i))); err != nil {
			f.Close()
			return i, fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return n, fmt.Errorf("write %s: %w", path, err)
	}
	return n, f.Close()
}
