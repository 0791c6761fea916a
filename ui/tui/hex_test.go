package tui

import (
	"regexp"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/hooktrace/hooktrace/decode"
)

// sgr matches a Select Graphic Rendition sequence.
var sgr = regexp.MustCompile("\x1b\\[([0-9;]*)m")

// markedScreen is the view with reverse video shown as «…» and every
// other style dropped: with colour off, that is how the hex pane marks
// the selected bytes.
func markedScreen(m *Model) string {
	var b strings.Builder
	for _, line := range strings.Split(m.View().Content, "\n") {
		rev, closing := false, false // closing: "»" is due before more text
		text := func(s string) {
			if s = ansi.Strip(s); s == "" {
				return
			}
			if closing {
				b.WriteString("»")
				closing = false
			}
			b.WriteString(s)
		}
		last := 0
		for _, loc := range sgr.FindAllStringSubmatchIndex(line, -1) {
			text(line[last:loc[0]])
			last = loc[1]
			on := rev
			for _, p := range strings.Split(line[loc[2]:loc[3]], ";") {
				switch p {
				case "", "0", "27":
					on = false
				case "7":
					on = true
				}
			}
			switch {
			case on && !rev && closing: // adjacent runs read as one
				closing = false
			case on && !rev:
				b.WriteString("«")
			case !on && rev:
				closing = true
			}
			rev = on
		}
		text(line[last:])
		if rev || closing {
			b.WriteString("»")
		}
		b.WriteString("\n")
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.Join(lines, "\n") + "\n"
}

// selectField moves the layers pane's cursor to a field of the first
// layer of a protocol.
func selectField(t *testing.T, m *Model, proto decode.Proto, path string) {
	t.Helper()
	keys(m, "home")
	for range 200 {
		d := m.ensureDetail()
		if n := d.selectedNode(); n != nil && n.path == path && n.layer >= 0 && d.pkt.Layers[n.layer].Proto == proto {
			return
		}
		keys(m, "down")
	}
	t.Fatalf("no field %s in a %s layer", path, proto)
}

// TestFieldHighlight selects fields in the layers pane and checks the
// bytes the hex pane highlights.
func TestFieldHighlight(t *testing.T) {
	m := loadFile(t, "../../fixtures/vxlan.pcap", 140, 30)
	keys(m, "j", "j", "tab", "e")
	for _, tc := range []struct {
		proto  decode.Proto
		path   string
		off, n int
	}{
		{decode.ProtoEth, "src", 6, 6},
		{decode.ProtoIPv4, "df", 20, 1},             // a flag: the byte that holds it
		{decode.ProtoVXLAN, "vni", 46, 3},           // 24 bits
		{decode.ProtoTCP, "options", 104, 12},       // the list: every option
		{decode.ProtoTCP, "options[0].ecr", 112, 4}, // NOP, NOP, then timestamps
		{decode.ProtoTCP, "payload", 0, 0},          // a length: no bytes of its own
	} {
		selectField(t, m, tc.proto, tc.path)
		if off, n := m.detail.span(); off != tc.off || n != tc.n {
			t.Errorf("%s %s: bytes %d+%d, want %d+%d", tc.proto, tc.path, off, n, tc.off, tc.n)
		}
	}
	// A layer's line still selects its whole header.
	selectField(t, m, decode.ProtoVXLAN, "vni")
	keys(m, "up")
	if off, n := m.detail.span(); off != 42 || n != 8 {
		t.Errorf("VXLAN layer: bytes %d+%d, want 42+8", off, n)
	}
	// On screen: the layers on the left, the field's bytes in reverse
	// video in the hex pane on the right, as one run on a line.
	selectField(t, m, decode.ProtoIPv4, "src")
	keys(m, "tab")
	if s := markedScreen(m); !strings.Contains(s, "«c0 00 02 01»") || !strings.Contains(s, "8«....»..") {
		t.Errorf("the outer source address is not highlighted as one run:\n%s", s)
	}
	keys(m, "shift+tab")
	selectField(t, m, decode.ProtoVXLAN, "vni")
	keys(m, "tab")
	checkGolden(t, "vxlan-field-vni-140x30", markedScreen(m))
}
