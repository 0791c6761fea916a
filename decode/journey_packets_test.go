package decode

import (
	"reflect"
	"testing"

	"github.com/hooktrace/hooktrace/capture"
)

// TestJourneyPackets checks that a journey names the packets that joined
// it: each packet number is a frame whose capture step is in the journey,
// and no frame joins two journeys.
func TestJourneyPackets(t *testing.T) {
	for _, path := range []string{"../fixtures/real-vxlan.pcap", "../fixtures/real-tcp.pcap", "../fixtures/nflog.pcap", "testdata/journeys/vxlan-live.pcapng"} {
		t.Run(path, func(t *testing.T) {
			src, err := capture.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var frames []capture.Frame
			b := NewJourneyBuilder(JourneyOptions{})
			dec := NewDecoder()
			for {
				f, err := src.Next()
				if err != nil {
					break
				}
				f.Data = append([]byte(nil), f.Data...)
				frames = append(frames, f)
				b.AddPacket(dec.Decode(f))
			}
			owner := map[uint64]uint64{}
			joined := 0
			for _, j := range b.Flush() {
				for _, n := range j.Packets {
					if n >= uint64(len(frames)) {
						t.Fatalf("journey %d names packet %d of %d", j.ID, n, len(frames))
					}
					if o, dup := owner[n]; dup {
						t.Fatalf("packet %d joined journeys %d and %d", n, o, j.ID)
					}
					owner[n] = j.ID
					joined++
					f := frames[n]
					found := false
					for _, st := range j.Steps {
						if (st.Kind == StepCapture || st.Kind == StepHook || st.Kind == StepNFLOG) && st.Time.Equal(f.Time) && st.Netns == f.Netns {
							found = true
						}
					}
					if !found {
						t.Errorf("journey %d names packet %d (%v %s), which none of its steps shows", j.ID, n, f.Time, f.Iface)
					}
				}
			}
			if joined == 0 {
				t.Fatalf("no packet joined a journey in %s", path)
			}
		})
	}
}

// TestJourneyNamespaces lists each namespace once, in the order of the
// steps.
func TestJourneyNamespaces(t *testing.T) {
	j := &Journey{Steps: []Step{{Netns: "a"}, {Netns: "b"}, {Netns: "a"}, {Netns: ""}, {Netns: "c"}, {Netns: "b"}}}
	if got := j.Namespaces(); !reflect.DeepEqual(got, []string{"a", "b", "", "c"}) {
		t.Errorf("Namespaces() = %q", got)
	}
}
