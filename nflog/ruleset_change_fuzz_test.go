package nflog

import (
	"encoding/binary"
	"testing"

	"github.com/mdlayher/netlink"
)

// FuzzParseRulesetChange feeds arbitrary notifications (2 bytes of
// message type, 2 of flags, then the payload) to the change decoder and
// the batcher: they must not panic, and a change they accept has the
// names it is applied by.
func FuzzParseRulesetChange(f *testing.F) {
	for _, m := range []netlink.Message{
		ruleMsg(f, nftMsgNewRule, netlink.Append, "fw", "svc", 12, 4),
		ruleMsg(f, nftMsgDelRule, 0, "fw", "svc", 12, 0),
		genMsg(f, 7),
		nftMsg(f, nftMsgNewChain, 0, 5, func(ae *netlink.AttributeEncoder) {
			ae.String(nftaChainTable, "edge")
			ae.String(nftaChainName, "in")
			ae.Nested(nftaChainHook, func(nae *netlink.AttributeEncoder) error {
				nae.Uint32(nftaHookHooknum, 9)
				nae.Nested(nftaHookDevs, func(dae *netlink.AttributeEncoder) error {
					dae.String(nftaDeviceName, "d0")
					return nil
				})
				return nil
			})
		}),
	} {
		f.Add(append(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, uint16(m.Header.Type)), uint16(m.Header.Flags)), m.Data...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 4 {
			return
		}
		m := netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(binary.BigEndian.Uint16(b)), Flags: netlink.HeaderFlags(binary.BigEndian.Uint16(b[2:]))},
			Data:   b[4:],
		}
		c, ok, err := ParseRulesetChange(m)
		if ok && err == nil && (c.Table == "" || c.Op >= ChangeNewChain && c.Chain == "" || c.Op >= ChangeNewRule && c.Handle == 0) {
			t.Errorf("accepted a change without its names: %+v", c)
		}
		ParseGeneration(m.Data)
		var cur ChangeBatch
		addChangeMessage(&cur, m)
		rs, _ := ParseRuleset(applyBase)
		rs.Apply(ChangeBatch{Changes: cur.Changes}, func(RulesetChange) (string, bool) { return "accept", true })
	})
}

// FuzzMonitorRuleLine: no line of nft monitor output makes the line
// reader panic.
func FuzzMonitorRuleLine(f *testing.F) {
	f.Add("add rule inet bench c250 udp dport { 7, 9, 11 } counter packets 0 bytes 0 accept # handle 24502")
	f.Add(`insert rule inet "my table" "counter" handle 4 accept # handle 9`)
	f.Add("# new generation 15 by process 11041 (nft)")
	f.Fuzz(func(t *testing.T, line string) {
		monitorRuleLine(line)
		newNftMonitor().line(line)
	})
}
