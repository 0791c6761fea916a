package filter_test

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/hooktrace/hooktrace/capture/filter"
)

// synTo443 is an Ethernet frame holding a TCP SYN from 192.168.1.10:51000 to
// 10.0.0.2:443 (checksums left zero).
var synTo443, _ = hex.DecodeString("020000000002020000000001" + "0800" +
	"450000280001000040060000c0a8010a0a000002" +
	"c73801bb000000000000000050020fff00000000")

func ExampleCompile() {
	const linkTypeEthernet = 1
	for _, expr := range []string{"tcp dst port 443", "tcp[tcpflags] & tcp-syn != 0 and not net 10.0.0.0/8", "udp"} {
		p, err := filter.Compile(expr, linkTypeEthernet, 0)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: %v\n", expr, p.Match(synTo443, len(synTo443)))
	}
	// Output:
	// tcp dst port 443: true
	// tcp[tcpflags] & tcp-syn != 0 and not net 10.0.0.0/8: false
	// udp: false
}

func ExampleSyntaxError() {
	_, err := filter.Compile("tcp prot 80", 1, 0)
	// err reads: filter expression "tcp prot 80": can't parse filter expression: syntax error
	var se *filter.SyntaxError
	if errors.As(err, &se) {
		fmt.Printf("bad expression %q\n", se.Expr)
	}
	// Output:
	// bad expression "tcp prot 80"
}

func ExampleSet() {
	s, err := filter.NewSet("host 10.0.0.2", 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	const linkTypeEthernet, linkTypeRaw = 1, 101
	ok, err := s.Match(linkTypeEthernet, synTo443, len(synTo443))
	fmt.Println(ok, err)
	ip := synTo443[14:] // the same packet without its Ethernet header
	ok, err = s.Match(linkTypeRaw, ip, len(ip))
	fmt.Println(ok, err)
	// Output:
	// true <nil>
	// true <nil>
}
