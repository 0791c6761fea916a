package ui

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
)

// TestJourneyWithPacket: a journey written around a packet member made
// ahead (PacketMember, as a replay's finishers do), or appended to a
// buffer (AppendJourneyWithPacket), is the record Journey writes, for
// every frame of the fixtures (tunnels, ICMP errors, broken packets) and
// for a journey with no frame.
func TestJourneyWithPacket(t *testing.T) {
	var frames []capture.Frame
	for _, name := range []string{"vxlan.pcap", "icmp.pcap", "deep-encap.pcap", "gre.pcap", "malformed.pcap", "truncated-file.pcap", "eth-tcp.pcap"} {
		f, err := capture.Open("../fixtures/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for {
			fr, err := f.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Logf("%s: %v (the frames before are used)", name, err)
				}
				break
			}
			fr.Data = bytes.Clone(fr.Data)
			frames = append(frames, fr)
		}
		f.Close()
	}
	if len(frames) < 20 {
		t.Fatalf("%d frames from the fixtures", len(frames))
	}
	frames = append(frames, capture.Frame{}) // no first sighting: no packet member
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var want, got bytes.Buffer
	whole, ahead := NewNDJSON(&want), NewNDJSON(&got)
	appended := []byte("earlier text\n") // what a buffer held before: kept
	packets := []byte("earlier packets")
	var ends []int
	for _, fr := range frames {
		if len(fr.Data) > 0 {
			packets = ahead.PacketMember(packets, fr)
		}
		ends = append(ends, len(packets))
	}
	from := len("earlier packets")
	for i, fr := range frames {
		j := &decode.Journey{ID: uint64(i + 1), First: at, Last: at, Frame: fr, Outcome: decode.OutcomeDelivered,
			Steps: []decode.Step{{Time: at, Netns: "a", Kind: decode.StepCapture, Iface: "eth0", Dir: "in"}}}
		if err := whole.Journey(j); err != nil {
			t.Fatal(err)
		}
		var packet []byte
		if ends[i] > from {
			packet, from = packets[from:ends[i]], ends[i]
		}
		if err := ahead.JourneyWithPacket(j, packet); err != nil {
			t.Fatal(err)
		}
		appended = ahead.AppendJourneyWithPacket(appended, j, packet)
	}
	if got.String() != want.String() {
		t.Errorf("journeys written around packets made ahead differ:\n%s\nwant:\n%s", got.String(), want.String())
	}
	if string(appended) != "earlier text\n"+want.String() {
		t.Errorf("journeys appended to a buffer differ:\n%s\nwant:\n%s", appended, "earlier text\n"+want.String())
	}
	withData := 0
	for _, fr := range frames {
		if len(fr.Data) > 0 {
			withData++
		}
	}
	if n := bytes.Count(want.Bytes(), []byte(`"packet":`)); !bytes.Contains(want.Bytes(), []byte(`"vxlan"`)) || n != withData || withData < 20 {
		t.Errorf("%d journeys show a packet, of %d frames with bytes: the test shows too little", n, withData)
	}
}
