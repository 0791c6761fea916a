package nflog

import (
	"github.com/cilium/ebpf/asm"
)

// The record the drop program writes into the ring buffer, in host byte
// order except the protocol, which is the skb's own (network order).
const (
	recTime     = 0  // u64 CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns)
	recLocation = 8  // u64 the address that freed the skb
	recReason   = 16 // u32 enum skb_drop_reason
	recInum     = 20 // u32 netns inode, 0 when unknown
	recIfindex  = 24 // u32 skb->dev->ifindex, 0 without a device
	recProtocol = 28 // u16 skb->protocol, network order
	recLen      = 30 // u16 bytes of recData that hold the packet
	recData     = 32 // the packet from its network header on
	// DropHeaderBytes is how much of a dropped packet the BPF probe
	// copies, from its network header on.
	DropHeaderBytes = 128
	recSize         = recData + DropHeaderBytes
)

// Stack slots of the drop program, below the frame pointer.
const (
	stSkb     = -8
	stLoc     = -16
	stReason  = -24
	stRxSk    = -32
	stInum    = -40 // u32; the allowed-netns map's key
	stIfindex = -36 // u32
	stPtr     = -48 // scratch pointer: dev, sk, head; the lost map's key
	stNet     = -56 // struct net *
	stNh      = -64 // u16 network_header
	stTail    = -60 // u32 tail
)

// dropProgramConfig is what the program is assembled with: the kernel's
// layout, the maps' descriptors, and the filters, which become constants
// and branches rather than lookups.
type dropProgramConfig struct {
	layout    *kernelLayout
	ringFD    int
	lostFD    int
	allowFD   int      // -1: every namespace
	skipValue []uint32 // reasons never reported
}

// dropProgram assembles the raw tracepoint program for skb:kfree_skb.
// In C it would read:
//
//	reason = args[reason]; if reason in skip: return
//	dev = skb->dev
//	if dev: ifindex = dev->ifindex; net = dev->nd_net.net
//	else: sk = skb->sk ?: rx_sk; if sk: net = sk->skc_net.net
//	inum = net ? net->ns.inum : 0
//	if filtering and !allowed[inum]: return
//	r = ringbuf_reserve(sizeof *r) or lost[0]++ and return
//	fill r; copy min(128, tail - network_header) bytes from head + network_header
//	ringbuf_submit(r)
//
// Every kernel read goes through bpf_probe_read_kernel, which zeroes the
// destination when it fails.
func dropProgram(c dropProgramConfig) asm.Instructions {
	l := c.layout
	ins := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, int16(8*l.argSkb), asm.DWord),
		asm.StoreMem(asm.RFP, stSkb, asm.R2, asm.DWord),
		asm.LoadMem(asm.R2, asm.R1, int16(8*l.argLocation), asm.DWord),
		asm.StoreMem(asm.RFP, stLoc, asm.R2, asm.DWord),
		asm.LoadMem(asm.R2, asm.R1, int16(8*l.argReason), asm.DWord),
		asm.StoreMem(asm.RFP, stReason, asm.R2, asm.DWord),
	}
	ins = append(ins, zero64(stRxSk)...)
	if l.argRxSk >= 0 {
		ins = append(ins,
			asm.LoadMem(asm.R2, asm.R1, int16(8*l.argRxSk), asm.DWord),
			asm.StoreMem(asm.RFP, stRxSk, asm.R2, asm.DWord))
	}
	ins = append(ins, asm.LoadMem(asm.R2, asm.RFP, stReason, asm.Word))
	for _, v := range c.skipValue {
		ins = append(ins, asm.JEq.Imm32(asm.R2, int32(v), "exit"))
	}
	for _, slot := range []int16{stInum, stPtr, stNet, stNh} {
		ins = append(ins, zero64(slot)...)
	}
	ins = append(ins, asm.LoadMem(asm.R6, asm.RFP, stSkb, asm.DWord))
	ins = append(ins, netnsOf(l)...)
	if c.allowFD >= 0 {
		ins = append(ins,
			asm.LoadMapPtr(asm.R1, c.allowFD),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, stInum),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "exit"))
	}
	ins = append(ins, reserve(c)...)
	ins = append(ins, fillRecord(l)...)
	return append(ins,
		asm.Mov.Reg(asm.R1, asm.R7).WithSymbol("submit"),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRingbufSubmit.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return())
}

// probeRead emits bpf_probe_read_kernel(fp+slot, size, base+off).
func probeRead(slot int16, size int32, base asm.Register, off int16) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, int32(slot)),
		asm.Mov.Imm(asm.R2, size),
		asm.Mov.Reg(asm.R3, base),
		asm.Add.Imm(asm.R3, int32(off)),
		asm.FnProbeReadKernel.Call(),
	}
}

// netnsOf fills stIfindex and stInum from the skb in R6: the device's
// namespace, or the socket's when the skb has no device.
func netnsOf(l *kernelLayout) asm.Instructions {
	var ins asm.Instructions
	ins = append(ins, probeRead(stPtr, 8, asm.R6, l.skbDev)...)
	ins = append(ins,
		asm.LoadMem(asm.R7, asm.RFP, stPtr, asm.DWord),
		asm.JEq.Imm(asm.R7, 0, "nodev"))
	ins = append(ins, probeRead(stIfindex, 4, asm.R7, l.devIfindex)...)
	ins = append(ins, probeRead(stNet, 8, asm.R7, l.devNet)...)
	ins = append(ins, asm.Ja.Label("havenet"))
	nodev := probeRead(stPtr, 8, asm.R6, l.skbSk)
	nodev[0] = nodev[0].WithSymbol("nodev")
	ins = append(ins, nodev...)
	ins = append(ins,
		asm.LoadMem(asm.R7, asm.RFP, stPtr, asm.DWord),
		asm.JNE.Imm(asm.R7, 0, "havesk"),
		asm.LoadMem(asm.R7, asm.RFP, stRxSk, asm.DWord),
		asm.JEq.Imm(asm.R7, 0, "nonet"))
	havesk := probeRead(stNet, 8, asm.R7, l.skNet)
	havesk[0] = havesk[0].WithSymbol("havesk")
	ins = append(ins, havesk...)
	ins = append(ins,
		asm.LoadMem(asm.R7, asm.RFP, stNet, asm.DWord).WithSymbol("havenet"),
		asm.JEq.Imm(asm.R7, 0, "nonet"))
	ins = append(ins, probeRead(stInum, 4, asm.R7, l.netInum)...)
	return append(ins, asm.Mov.Imm(asm.R0, 0).WithSymbol("nonet"))
}

// reserve takes a record from the ring into R7, or counts a lost event
// (lost[0] += 1) and exits.
func reserve(c dropProgramConfig) asm.Instructions {
	return asm.Instructions{
		asm.LoadMapPtr(asm.R1, c.ringFD),
		asm.Mov.Imm(asm.R2, recSize),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnRingbufReserve.Call(),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.JNE.Imm(asm.R7, 0, "reserved"),
		asm.StoreImm(asm.RFP, stPtr, 0, asm.Word), // the lost map's key
		asm.LoadMapPtr(asm.R1, c.lostFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stPtr),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Ja.Label("exit"),
	}
}

// fillRecord writes the record in R7 from the stack slots and the skb in
// R6, ending with the packet bytes.
func fillRecord(l *kernelLayout) asm.Instructions {
	ins := asm.Instructions{
		asm.FnKtimeGetNs.Call().WithSymbol("reserved"),
		asm.StoreMem(asm.R7, recTime, asm.R0, asm.DWord),
		asm.LoadMem(asm.R1, asm.RFP, stLoc, asm.DWord),
		asm.StoreMem(asm.R7, recLocation, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.RFP, stReason, asm.Word),
		asm.StoreMem(asm.R7, recReason, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, stInum, asm.Word),
		asm.StoreMem(asm.R7, recInum, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, stIfindex, asm.Word),
		asm.StoreMem(asm.R7, recIfindex, asm.R1, asm.Word),
		asm.StoreImm(asm.R7, recLen, 0, asm.Half),
		// protocol straight into the record
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, recProtocol),
		asm.Mov.Imm(asm.R2, 2),
		asm.Mov.Reg(asm.R3, asm.R6),
		asm.Add.Imm(asm.R3, int32(l.skbProtocol)),
		asm.FnProbeReadKernel.Call(),
	}
	ins = append(ins, probeRead(stPtr, 8, asm.R6, l.skbHead)...)
	ins = append(ins, probeRead(stNh, 2, asm.R6, l.skbNetworkHeader)...)
	ins = append(ins, probeRead(stTail, 4, asm.R6, l.skbTail)...)
	return append(ins,
		asm.LoadMem(asm.R8, asm.RFP, stPtr, asm.DWord),
		asm.JEq.Imm(asm.R8, 0, "submit"),
		asm.LoadMem(asm.R1, asm.RFP, stNh, asm.Half),
		asm.LoadMem(asm.R2, asm.RFP, stTail, asm.Word),
		asm.JEq.Imm(asm.R1, 0xffff, "submit"), // network header not set
		asm.JGE.Reg(asm.R1, asm.R2, "submit"),
		asm.Sub.Reg(asm.R2, asm.R1),
		asm.JLE.Imm(asm.R2, DropHeaderBytes, "sized"),
		asm.Mov.Imm(asm.R2, DropHeaderBytes),
		asm.StoreMem(asm.R7, recLen, asm.R2, asm.Half).WithSymbol("sized"),
		asm.Mov.Reg(asm.R3, asm.R8),
		asm.Add.Reg(asm.R3, asm.R1),
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, recData),
		asm.FnProbeReadKernel.Call(),
		asm.JEq.Imm(asm.R0, 0, "submit"),
		asm.StoreImm(asm.R7, recLen, 0, asm.Half),
	)
}

// zero64 clears an eight-byte stack slot: cilium/ebpf has no 64-bit
// store of an immediate, so it stores a zero register (R0, set here).
func zero64(slot int16) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Imm(asm.R0, 0),
		asm.StoreMem(asm.RFP, slot, asm.R0, asm.DWord),
	}
}
