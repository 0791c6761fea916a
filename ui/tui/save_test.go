package tui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// TestSaveJourney: W writes the selected packet's journey: its packets
// (not the other journey's) as pcapng and the Markdown summary beside.
func TestSaveJourney(t *testing.T) {
	syn := ipv4("10.77.0.1", "10.77.0.2", 100, 6, tcpSYN(51234, 2222, 1000))
	other := ipv4("10.77.0.3", "10.77.0.2", 101, 6, tcpSYN(40000, 80, 7))
	f := newJourneyFeed()
	f.capture(1, "cli", "c0", capture.DirOut, ether(syn))
	f.capture(2, "srv", "s0", capture.DirIn, ether(syn))
	f.capture(3, "srv", "s0", capture.DirIn, ether(other))
	f.rule(40, "srv", "hxfilter", "input", 2, "tcp dport 2222 drop", nflog.VerdictDrop, syn)
	b := f.batch()
	for i := range b.Journeys { // rows by the journey's own packets
		b.Journeys[i].Rows = nil
		for _, n := range b.Journeys[i].Journey.Packets {
			b.Journeys[i].Rows = append(b.Journeys[i].Rows, uint32(n))
		}
	}
	m := showJourney(t, b)
	keys(m, "esc", "shift+tab", "shift+tab", "shift+tab", "home") // the list, the first packet
	path := filepath.Join(t.TempDir(), "journey.pcapng")
	keys(m, "W")
	if m.mode != inputSaveJourney {
		t.Fatalf("W opens no prompt: %q", m.message)
	}
	m.input.SetValue(path)
	keys(m, "enter")
	if !strings.Contains(m.message, "2 packets, 0 trace events, 0 kernel drops written to "+path) {
		t.Errorf("message %q", m.message)
	}
	src, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var ifaces []string
	for {
		fr, err := src.Next()
		if err != nil {
			break
		}
		ifaces = append(ifaces, fr.Netns+"/"+fr.Iface)
	}
	if strings.Join(ifaces, " ") != "cli/c0 srv/s0" {
		t.Errorf("saved packets seen on %v, want cli/c0 srv/s0", ifaces)
	}
	md, err := os.ReadFile(filepath.Join(filepath.Dir(path), "journey.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"| **Outcome** | dropped |", "tcp dport 2222 drop", "`hooktrace -r journey.pcapng --print`"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("summary lacks %q:\n%s", s, md)
		}
	}
}
