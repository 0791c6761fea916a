package filter

import "fmt"

// Set holds one expression compiled for each link type met so far, for
// capture files (pcapng) whose packets come from interfaces of several link
// types. A Set is not safe for concurrent use.
type Set struct {
	expr    string
	snaplen int
	progs   []linkProgram // a handful at most: scanned linearly
}

// linkProgram is the expression compiled for one link type; prog is nil when
// libpcap refused it, and that link type then rejects every packet.
type linkProgram struct {
	linkType int
	prog     *Program
}

// NewSet returns a Set for expr. It compiles expr for Ethernet
// (LINKTYPE_ETHERNET) at once, so that a bad expression fails here with a
// *SyntaxError; other link types are compiled on their first packet. snaplen
// is as for Compile.
func NewSet(expr string, snaplen int) (*Set, error) {
	const linkTypeEthernet = 1
	p, err := Compile(expr, linkTypeEthernet, snaplen)
	if err != nil {
		return nil, err
	}
	s := &Set{expr: expr, snaplen: snaplen}
	s.progs = append(s.progs, linkProgram{linkType: linkTypeEthernet, prog: p})
	return s, nil
}

// Match reports whether the expression accepts a packet of the given link
// type; data and wireLen are as for Program.Match. The first packet of a
// link type compiles the expression for it. If libpcap refuses the
// expression for that link type, that first call returns the error (wrapping
// a *SyntaxError) and every packet of the link type is then rejected without
// error. After the first packet of a link type, Match does not allocate.
func (s *Set) Match(linkType int, data []byte, wireLen int) (bool, error) {
	for i := range s.progs {
		if s.progs[i].linkType == linkType {
			return s.progs[i].match(data, wireLen), nil
		}
	}
	p, err := Compile(s.expr, linkType, s.snaplen)
	s.progs = append(s.progs, linkProgram{linkType: linkType, prog: p})
	if err != nil {
		return false, fmt.Errorf("compile filter for link type %d: %w", linkType, err)
	}
	return p.Match(data, wireLen), nil
}

// match runs the program, rejecting everything when there is none.
func (lp *linkProgram) match(data []byte, wireLen int) bool {
	return lp.prog != nil && lp.prog.Match(data, wireLen)
}
