package decode

import (
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// maxTags bounds the VLAN tags or MPLS labels kept per depth; deeper
// stacks are decoded, but show the last kept value.
const maxTags = 8

// tagStack keeps a copy of each VLAN tag or MPLS label of one depth. A
// parser holds one struct per layer type, so the second tag of a QinQ
// frame overwrites the first: the copies keep them apart.
type tagStack[T any] struct {
	saved [maxTags]T
	n     int
}

func (s *tagStack[T]) push(v *T) {
	if s.n < maxTags {
		s.saved[s.n] = *v
		s.n++
	}
}

// at returns the i-th tag pushed since the last reset.
func (s *tagStack[T]) at(i int) *T {
	if i >= s.n {
		i = s.n - 1
	}
	return &s.saved[i]
}

// vlanLayer is an 802.1Q or 802.1ad tag.
type vlanLayer struct {
	layers.Dot1Q
	stack tagStack[layers.Dot1Q]
}

func (v *vlanLayer) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if err := v.Dot1Q.DecodeFromBytes(data, df); err != nil {
		return err
	}
	v.stack.push(&v.Dot1Q)
	return nil
}
