package filter

import (
	"errors"
	"strings"
	"testing"
)

func TestNewSetRefusesBadExpression(t *testing.T) {
	_, err := NewSet("tcp prot 80", 0)
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("NewSet error %v is not a *SyntaxError", err)
	}
}

func TestSetMatchesPerLinkType(t *testing.T) {
	eth, raw, sll2 := ethernetCorpus(t), rawIPCorpus(t), sll2Corpus(t)
	s, err := NewSet("tcp port 443", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		linkType int
		pkts     []testPacket
	}{{1, eth}, {101, raw}, {276, sll2}, {1, eth}} {
		p, err := Compile("tcp port 443", c.linkType, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, pkt := range c.pkts {
			got, err := s.Match(c.linkType, pkt.data, pkt.wireLen)
			if err != nil {
				t.Fatalf("link type %d packet %d: %v", c.linkType, i, err)
			}
			if want := p.Match(pkt.data, pkt.wireLen); got != want {
				t.Errorf("link type %d packet %d (%s): Set.Match = %v, Program.Match = %v", c.linkType, i, pkt.name, got, want)
			}
		}
	}
	if len(s.progs) != 3 {
		t.Errorf("set holds %d programs, want 3", len(s.progs))
	}
}

// TestSetRefusedLinkType checks that a link type libpcap refuses the
// expression for reports the error once and then rejects every packet.
func TestSetRefusedLinkType(t *testing.T) {
	s, err := NewSet("ether broadcast", 0)
	if err != nil {
		t.Fatal(err)
	}
	pkts := sll2Corpus(t)
	ok, err := s.Match(276, pkts[0].data, pkts[0].wireLen)
	var se *SyntaxError
	if ok || !errors.As(err, &se) {
		t.Fatalf("first SLL2 packet: Match = %v, %v; want false and a *SyntaxError", ok, err)
	}
	if want := `compile filter for link type 276: filter expression "ether broadcast": `; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
	for _, pkt := range pkts {
		if ok, err := s.Match(276, pkt.data, pkt.wireLen); ok || err != nil {
			t.Fatalf("later SLL2 packet: Match = %v, %v; want false, nil", ok, err)
		}
	}
	bcast := 0
	for _, pkt := range ethernetCorpus(t) {
		ok, err := s.Match(1, pkt.data, pkt.wireLen)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			bcast++
		}
	}
	if bcast == 0 {
		t.Error("no Ethernet broadcast matched after SLL2 was refused")
	}
}

func TestSetEmptyExpression(t *testing.T) {
	s, err := NewSet("", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, linkType := range []int{1, 101, 276, 12345} {
		if ok, err := s.Match(linkType, []byte{1, 2, 3}, 3); !ok || err != nil {
			t.Errorf("link type %d: Match = %v, %v; want true, nil", linkType, ok, err)
		}
	}
}

func TestSetMatchDoesNotAllocate(t *testing.T) {
	s, err := NewSet("tcp port 443 and not host 10.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	pkt := benchPacket(t)
	raw := pkt[14:]
	for _, lt := range []int{1, 101, 276, 1} { // first packet of each link type compiles
		if _, err := s.Match(lt, raw, len(raw)); err != nil {
			t.Fatal(err)
		}
	}
	n := testing.AllocsPerRun(1000, func() {
		s.Match(1, pkt, len(pkt))
		s.Match(101, raw, len(raw))
		s.Match(276, raw, len(raw))
	})
	if n != 0 {
		t.Errorf("Set.Match allocates %v times per run", n)
	}
}
