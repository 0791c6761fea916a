package nflog

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/mdlayher/netlink"
)

// NFNLGRP_NFTABLES: the multicast group of nf_tables ruleset changes.
const changeGroup = 7

// nf_tables message types (enum nf_tables_msg_types), in the
// NFNL_SUBSYS_NFTABLES (10) subsystem.
const (
	nftMsgNewTable     = 0
	nftMsgDelTable     = 2
	nftMsgNewChain     = 3
	nftMsgDelChain     = 5
	nftMsgNewRule      = 6
	nftMsgDelRule      = 8
	nftMsgNewGen       = 15
	nftMsgGetGen       = 16
	nftMsgDestroyTable = 26
	nftMsgDestroyChain = 27
	nftMsgDestroyRule  = 28
	nftSubsys          = 10
)

// Attributes of tables, chains, rules, hooks and generations (enum
// nft_table_attributes, nft_chain_attributes, nft_rule_attributes,
// nft_hook_attributes, nft_gen_attributes).
const (
	nftaTableName = 1

	nftaChainTable  = 1
	nftaChainHandle = 2
	nftaChainName   = 3
	nftaChainHook   = 4
	nftaChainPolicy = 5
	nftaChainType   = 7

	nftaHookHooknum  = 1
	nftaHookPriority = 2
	nftaHookDev      = 3
	nftaHookDevs     = 4
	nftaDeviceName   = 1

	nftaRuleTable    = 1
	nftaRuleChain    = 2
	nftaRuleHandle   = 3
	nftaRulePosition = 6

	nftaGenID = 1
)

// ChangeOp is what a ruleset change did.
type ChangeOp uint8

// The changes a Ruleset follows; sets, maps, objects and flowtables do
// not change how a rule prints, so they are not reported.
const (
	ChangeNewTable ChangeOp = iota + 1
	ChangeDelTable
	ChangeNewChain
	ChangeDelChain
	ChangeNewRule
	ChangeDelRule
)

var changeOpNames = map[ChangeOp]string{
	ChangeNewTable: "new table", ChangeDelTable: "delete table",
	ChangeNewChain: "new chain", ChangeDelChain: "delete chain",
	ChangeNewRule: "new rule", ChangeDelRule: "delete rule",
}

// String names the operation ("new rule").
func (op ChangeOp) String() string {
	if s, ok := changeOpNames[op]; ok {
		return s
	}
	return fmt.Sprintf("change(%d)", uint8(op))
}

// RulesetChange is one nf_tables change notification, decoded as far as
// the ruleset cache needs it.
type RulesetChange struct {
	Op     ChangeOp
	Family string // nft family name ("inet", "ip", ...)
	Table  string
	Chain  string // chain and rule changes
	Handle uint64 // the rule's handle (rule changes) or the chain's
	// Position is the handle of the rule a new rule follows, when the
	// kernel says (NFTA_RULE_POSITION); else Append says whether it went
	// last (add rule, NLM_F_APPEND) or first (insert rule) in its chain.
	Position uint64
	Append   bool
	// Info describes a new chain: its hook, priority, type, policy and
	// devices when it is a base chain.
	Info ChainInfo
}

// ChangeBatch is the changes of one ruleset generation: the kernel sends
// the notifications of a transaction, then NFT_MSG_NEWGEN.
type ChangeBatch struct {
	Gen     uint32
	Changes []RulesetChange
	// Lost says that the socket overran (ENOBUFS) before this batch was
	// complete: changes are missing, and only a full reload is right.
	Lost bool
}

// changeMessage says what an nf_tables message is: a change the cache
// follows (op), the end of a generation (gen), or neither (ok false).
func changeMessage(msgType uint16) (op ChangeOp, gen, ok bool) {
	if msgType>>8 != nftSubsys {
		return 0, false, false
	}
	switch msgType & 0xff {
	case nftMsgNewTable:
		return ChangeNewTable, false, true
	case nftMsgDelTable, nftMsgDestroyTable:
		return ChangeDelTable, false, true
	case nftMsgNewChain:
		return ChangeNewChain, false, true
	case nftMsgDelChain, nftMsgDestroyChain:
		return ChangeDelChain, false, true
	case nftMsgNewRule:
		return ChangeNewRule, false, true
	case nftMsgDelRule, nftMsgDestroyRule:
		return ChangeDelRule, false, true
	case nftMsgNewGen:
		return 0, true, true
	}
	return 0, false, false
}

// ParseRulesetChange decodes one nf_tables notification: its header's
// type and flags, and its data (nfgenmsg, then big-endian attributes).
// ok is false for messages a ruleset cache does not follow (sets,
// objects, flowtables, traces, and NFT_MSG_NEWGEN, which ParseGeneration
// decodes).
func ParseRulesetChange(m netlink.Message) (c RulesetChange, ok bool, err error) {
	payload := m.Data
	op, _, known := changeMessage(uint16(m.Header.Type))
	if !known || op == 0 {
		return RulesetChange{}, false, nil
	}
	ad, err := changeAttributes(payload)
	if err != nil {
		return RulesetChange{}, false, fmt.Errorf("nf_tables %s: %w", op, err)
	}
	c = RulesetChange{Op: op, Family: FamilyName(payload[0]), Append: m.Header.Flags&netlink.Append != 0}
	switch op {
	case ChangeNewTable, ChangeDelTable:
		c.decodeTable(ad)
	case ChangeNewChain, ChangeDelChain:
		c.decodeChain(ad)
	default:
		c.decodeRule(ad)
	}
	if err := ad.Err(); err != nil {
		return RulesetChange{}, false, fmt.Errorf("nf_tables %s attribute %d: %w", op, ad.Type(), err)
	}
	if err := c.check(); err != nil {
		return RulesetChange{}, false, err
	}
	return c, true, nil
}

// ParseGeneration decodes the generation id of a NFT_MSG_NEWGEN payload.
func ParseGeneration(payload []byte) (uint32, error) {
	ad, err := changeAttributes(payload)
	if err != nil {
		return 0, fmt.Errorf("nf_tables generation: %w", err)
	}
	var gen uint32
	found := false
	for ad.Next() {
		if ad.Type() == nftaGenID {
			gen, found = ad.Uint32(), true
		}
	}
	if err := ad.Err(); err != nil {
		return 0, fmt.Errorf("nf_tables generation: %w", err)
	}
	if !found {
		return 0, fmt.Errorf("nf_tables generation: no NFTA_GEN_ID")
	}
	return gen, nil
}

// changeAttributes checks the nfgenmsg and returns a big-endian decoder
// of the attributes after it.
func changeAttributes(payload []byte) (*netlink.AttributeDecoder, error) {
	if len(payload) < traceNfgenmsgLen {
		return nil, fmt.Errorf("%d bytes, shorter than the 4-byte nfgenmsg header", len(payload))
	}
	ad, err := netlink.NewAttributeDecoder(payload[traceNfgenmsgLen:])
	if err != nil {
		return nil, err
	}
	ad.ByteOrder = binary.BigEndian
	return ad, nil
}

func (c *RulesetChange) decodeTable(ad *netlink.AttributeDecoder) {
	for ad.Next() {
		if ad.Type() == nftaTableName {
			c.Table = ad.String()
		}
	}
}

func (c *RulesetChange) decodeChain(ad *netlink.AttributeDecoder) {
	c.Info.Family = c.Family
	for ad.Next() {
		switch ad.Type() {
		case nftaChainTable:
			c.Table = ad.String()
		case nftaChainName:
			c.Chain = ad.String()
		case nftaChainHandle:
			c.Handle = ad.Uint64()
		case nftaChainType:
			c.Info.Type = ad.String()
		case nftaChainPolicy:
			c.Info.Policy = policyName(ad.Uint32())
		case nftaChainHook:
			c.Info.Base = true
			ad.Nested(c.decodeHook)
		}
	}
	c.Info.Table, c.Info.Name, c.Info.Handle = c.Table, c.Chain, c.Handle
	if !c.Info.Base {
		c.Info.Type, c.Info.Policy = "", ""
	}
}

func (c *RulesetChange) decodeHook(ad *netlink.AttributeDecoder) error {
	for ad.Next() {
		switch ad.Type() {
		case nftaHookHooknum:
			c.Info.Hook = hookName(c.Family, ad.Uint32())
		case nftaHookPriority:
			c.Info.Priority = int(int32(ad.Uint32()))
		case nftaHookDev:
			c.addDevice(ad.String())
		case nftaHookDevs:
			ad.Nested(c.decodeDevices)
		}
	}
	return nil
}

func (c *RulesetChange) decodeDevices(ad *netlink.AttributeDecoder) error {
	for ad.Next() {
		if ad.Type() == nftaDeviceName {
			c.addDevice(ad.String())
		}
	}
	return nil
}

// addDevice notes a hook device once: the kernel names a single device
// both in NFTA_HOOK_DEV and in NFTA_HOOK_DEVS.
func (c *RulesetChange) addDevice(name string) {
	if !slices.Contains(c.Info.Devices, name) {
		c.Info.Devices = append(c.Info.Devices, name)
	}
}

func (c *RulesetChange) decodeRule(ad *netlink.AttributeDecoder) {
	for ad.Next() {
		switch ad.Type() {
		case nftaRuleTable:
			c.Table = ad.String()
		case nftaRuleChain:
			c.Chain = ad.String()
		case nftaRuleHandle:
			c.Handle = ad.Uint64()
		case nftaRulePosition:
			c.Position = ad.Uint64()
		}
	}
}

// check refuses a change that lacks the names it is applied by.
func (c *RulesetChange) check() error {
	switch {
	case c.Table == "":
		return fmt.Errorf("nf_tables %s: no table name", c.Op)
	case c.Op >= ChangeNewChain && c.Chain == "":
		return fmt.Errorf("nf_tables %s in table %s: no chain name", c.Op, c.Table)
	case c.Op >= ChangeNewRule && c.Handle == 0:
		return fmt.Errorf("nf_tables %s in %s %s: no rule handle", c.Op, c.Table, c.Chain)
	}
	return nil
}

// policyName names a base chain policy verdict as nft prints it.
func policyName(v uint32) string {
	switch v {
	case 0:
		return "drop"
	case 1:
		return "accept"
	}
	return fmt.Sprintf("policy(%d)", v)
}

// hookName names a hook number as nft does for a table family: netdev
// has ingress and egress; arp input, output and forward; the others
// (ip, ip6, inet, bridge) prerouting to postrouting, and inet ingress.
func hookName(family string, n uint32) string {
	var names []string
	switch family {
	case "netdev":
		names = []string{"ingress", "egress"}
	case "arp":
		names = []string{"input", "output", "forward"}
	default:
		names = []string{"prerouting", "input", "forward", "output", "postrouting", "ingress"}
	}
	if int(n) < len(names) {
		return names[n]
	}
	return fmt.Sprintf("hook(%d)", n)
}
