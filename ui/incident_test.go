package ui

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
)

// TestIncidentWriterRenames: an interface index whose name changes
// while recording (renamed, or its index reused) is named again, so a
// replay names the records after the change with the new name and those
// before with the old; a name written already, or none, adds no record.
func TestIncidentWriterRenames(t *testing.T) {
	var buf bytes.Buffer
	pw, err := capture.NewPcapngWriter(&buf, "hooktrace test")
	if err != nil {
		t.Fatal(err)
	}
	now := map[uint32]string{7: "veth0"} // what the index is called now, live
	iw := NewIncidentWriter(pw, func(_ string, index uint32) string { return now[index] })
	at := time.Unix(1767355200, 0)
	drop := func(index uint32) {
		t.Helper()
		if err := iw.Drop(&decode.KernelDrop{Time: at, Netns: "hxr", Ifindex: index, Reason: "NO_SOCKET", Location: "f+0x10"}); err != nil {
			t.Fatal(err)
		}
	}
	drop(7)
	drop(7)
	now[7] = "eth1"
	drop(7)
	delete(now, 7) // gone: the last name stays
	drop(7)
	if err := iw.Interface("hxr", 7, "eth1", at); err != nil {
		t.Fatal(err)
	}
	if err := pw.Flush(); err != nil {
		t.Fatal(err)
	}

	f, err := capture.NewReader(&buf, "renames.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	rec := decode.NewRecording()
	var names, dropped []string
	for {
		r, err := f.NextRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Custom == nil {
			continue
		}
		got, err := rec.TakeRecord(r.Custom)
		if err != nil {
			t.Fatal(err)
		}
		switch r.Custom.Kind {
		case capture.CustomInterface:
			names = append(names, rec.IfName("hxr", 7))
		case capture.CustomDrop:
			dropped = append(dropped, rec.IfName(got.Drop.Netns, got.Drop.Ifindex))
		}
	}
	if want := []string{"veth0", "eth1"}; !slices.Equal(names, want) {
		t.Errorf("interface records name %q, want %q", names, want)
	}
	if want := []string{"veth0", "veth0", "eth1", "eth1"}; !slices.Equal(dropped, want) {
		t.Errorf("drops replay on %q, want %q", dropped, want)
	}
}
