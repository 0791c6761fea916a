package decode

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hooktrace/hooktrace/nflog"
)

// Ranks place a journey's observations within one namespace in the order
// the kernel handles a packet: arrival on a device, prerouting, the
// routing decision, input or forward, postrouting, leaving by a device;
// a packet the namespace sends is routed, then passes output and
// postrouting. Records' times cannot order them alone: trace events carry
// hooktrace's receive time, not the kernel's.
const (
	rankArrive     = 0
	rankRouteOut   = 10 // a locally made packet is routed before output
	rankPrerouting = 20
	rankOutput     = 20
	rankRouteIn    = 30
	rankRouteDrop  = 35 // reverse-path filter, no route: during routing
	rankInput      = 50
	rankForward    = 50
	rankUnknown    = 55
	rankKernelDrop = 60
	rankPost       = 80
	rankLeave      = 100
	rankReply      = 110 // the ICMP error or reset sent back
)

// Within a hook, hooktrace's first chain runs before every other, and
// its last chain after.
const (
	prioFirst = -1 << 40
	prioLast  = 1 << 40
)

func hookRank(hook string) int {
	switch hook {
	case "prerouting":
		return rankPrerouting
	case "input":
		return rankInput
	case "forward":
		return rankForward
	case "output":
		return rankOutput
	case "postrouting":
		return rankPost
	}
	return rankUnknown
}

// routingDropReasons are the kernel drop reasons the routing decision
// gives.
var routingDropReasons = map[string]bool{
	"IP_RPFILTER": true, "IP_INNOROUTES": true, "IP_OUTNOROUTES": true, "IP_INADDRERRORS": true,
	"IP_INVALID_SOURCE": true, "IP_LOCAL_SOURCE": true, "IP_INVALID_DEST": true, "IPV6_BAD_EXTHDR": false,
}

// rankOf places a step within its namespace's path: its rank, and its
// order within a hook.
func rankOf(st *stepWhat) (int, int64) {
	switch st.Kind {
	case StepCapture:
		switch st.Dir {
		case "in":
			return rankArrive, 0
		case "out":
			return rankLeave, 0
		}
		return rankUnknown, 0
	case StepHook:
		if st.First {
			return hookRank(st.Hook), prioFirst
		}
		return hookRank(st.Hook), prioLast
	case StepRule, StepPolicy:
		return hookRank(st.Hook), int64(st.Priority)
	case StepNFLOG:
		return hookRank(st.Hook), 0
	case StepDrop:
		if routingDropReasons[st.Reason] {
			return rankRouteDrop, 0
		}
		return rankKernelDrop, 0
	case StepICMPError, StepReset:
		return rankReply, 0
	}
	return rankUnknown, 0
}

// visit is a journey's passage through one namespace, as the packet
// itself or inside a tunnel packet.
type visit struct {
	netns string
	outer bool
	at    time.Time
	obs   []*obs // into the journey's observations
	n     int    // observations (while obsOrder.put counts them)
}

// obsOrder holds what putting a journey's observations in order needs,
// for the next journey to reuse.
type obsOrder struct {
	which   []int32 // the visit of each observation
	backing []visit
	ptrs    []*obs
	visits  []*visit
	// Observation slices of journeys assembled, for pool (giveBack);
	// alone: the order is for one journey (Assemble), which gives its
	// slice back at once.
	free      [][]obs
	freeBytes [][]byte
	pool      *obsPool
	keep      int
	alone     bool
}

// put groups observations into visits, ordered by the kernel's times
// where there are some, and puts each visit in path order. The visits
// are in ord's arrays, valid until the next put or forget.
func (ord *obsOrder) put(all []obs) []*visit {
	// Which visit each observation is of (a journey crosses few
	// namespaces), then each visit's observations, all in one array.
	which := slices.Grow(ord.which[:0], len(all))[:len(all)]
	backing := ord.backing[:0]
	for i := range all {
		o := &all[i]
		k := 0
		for k < len(backing) && (backing[k].netns != o.netns || backing[k].outer != o.outer) {
			k++
		}
		if k == len(backing) {
			backing = append(backing, visit{netns: o.netns, outer: o.outer})
		}
		which[i] = int32(k)
		backing[k].n++
	}
	ptrs := slices.Grow(ord.ptrs[:0], len(all))[:len(all)]
	visits := slices.Grow(ord.visits[:0], len(backing))[:len(backing)]
	ord.which, ord.backing, ord.ptrs, ord.visits = which, backing, ptrs, visits
	at := 0
	for k := range backing {
		v := &backing[k]
		v.obs = ptrs[at : at : at+v.n] // its own capacity: a route step added grows a copy
		at += v.n
		visits[k] = v
	}
	for i := range all {
		v := &backing[which[i]]
		v.obs = append(v.obs, &all[i])
	}
	for _, v := range visits {
		var kt, any time.Time
		for _, o := range v.obs {
			if any.IsZero() || o.at.Before(any) {
				any = o.at
			}
			if o.kernelTime() && o.step.Kind != StepICMPError && o.step.Kind != StepReset && (kt.IsZero() || o.at.Before(kt)) {
				kt = o.at
			}
		}
		v.at = kt
		if kt.IsZero() {
			v.at = any
		}
		slices.SortStableFunc(v.obs, func(a, b *obs) int {
			if a.step.rank != b.step.rank {
				return cmp.Compare(a.step.rank, b.step.rank)
			}
			if a.step.prio != b.step.prio {
				return cmp.Compare(a.step.prio, b.step.prio)
			}
			return 0 // in arrival order: the order of the journey's list (a stable sort)
		})
	}
	slices.SortStableFunc(visits, func(a, b *visit) int { return a.at.Compare(b.at) })
	return visits
}

// forget lets go of the last journey's observations (the pool reuses
// them) and namespace names.
func (ord *obsOrder) forget() {
	clear(ord.backing)
	clear(ord.ptrs)
	clear(ord.visits)
}

// arrived says whether the packet came into the visit's namespace (from
// a device) rather than being made there.
func (v *visit) arrived() bool {
	for _, o := range v.obs {
		switch {
		case o.step.Kind == StepCapture && o.step.Dir == "in":
			return true
		case o.step.Hook == "prerouting" && o.step.Kind != StepDrop:
			return true
		}
	}
	return false
}

// madeHere says whether the visit's namespace sent the packet: it
// passes output, and did not arrive.
func (v *visit) madeHere() bool {
	if v.arrived() {
		return false
	}
	for _, o := range v.obs {
		if o.step.Hook == "output" {
			return true
		}
	}
	return false
}

// addRoutes asks, for each visit, how the kernel routed the packet there,
// with the addresses it had at that point (after prerouting's DNAT), its
// input device and mark, and adds the answer as a route step.
func addRoutes(visits []*visit, route func(string, nflog.RouteQuery) (nflog.RouteDecision, bool)) {
	for _, v := range visits {
		if v.outer {
			continue // the tunnel packet's route is the tunnel device's business
		}
		arrived := v.arrived()
		if !arrived && !v.madeHere() {
			continue
		}
		var q nflog.RouteQuery
		var at time.Time
		have := false
		for _, o := range v.obs {
			if o.mark != 0 {
				q.Mark = o.mark
			}
			if arrived && o.step.rank > rankPrerouting || !arrived && o.step.rank > rankOutput {
				continue
			}
			if o.ep != nil && (!have || arrived) {
				q.Src, q.Dst = o.ep.Src.Addr(), o.ep.Dst.Addr()
				q.SPort, q.DPort, q.Proto = o.ep.Src.Port(), o.ep.Dst.Port(), o.proto
				have = true
			}
			if arrived && q.IIF == "" && o.iface != "" && (o.step.Kind == StepCapture || o.step.Hook == "prerouting") {
				q.IIF = o.iface
			}
			if at.IsZero() || o.at.After(at) {
				at = o.at
			}
		}
		if arrived {
			// The route is decided after prerouting's DNAT: the first
			// view of the packet past routing (input or forward) has the
			// addresses it was routed with, when prerouting's last chain
			// did not show them.
			for _, o := range v.obs {
				if o.step.rank > rankRouteIn && o.step.rank < rankKernelDrop && o.ep != nil {
					q.Src, q.Dst = o.ep.Src.Addr(), o.ep.Dst.Addr()
					q.SPort, q.DPort = o.ep.Src.Port(), o.ep.Dst.Port()
					break
				}
			}
		}
		if !have || arrived && q.IIF == "" {
			continue // the input device is needed for an arriving packet's route
		}
		d, ok := route(v.netns, q)
		if !ok {
			continue
		}
		rank := rankRouteOut
		if arrived {
			rank = rankRouteIn
		}
		if !arrived && len(v.obs) > 0 {
			at = v.obs[0].at
		}
		o := &obs{at: at, netns: v.netns, step: &stepWhat{Kind: StepRoute, Route: &d, rank: rank}}
		i := sort.Search(len(v.obs), func(i int) bool { return v.obs[i].step.rank > rank })
		v.obs = append(v.obs[:i], append([]*obs{o}, v.obs[i:]...)...)
	}
}

// epAt returns an observation's endpoints at one level of encapsulation:
// the packet's own (inner) or its tunnel packet's (outer).
func (o *obs) epAt(outer bool) (Endpoints, bool) {
	switch {
	case o.ep == nil:
		return Endpoints{}, false
	case o.tun() != nil: // a captured tunnel packet: both are known
		if outer {
			return o.tun().outer, true
		}
		return *o.ep, true
	case o.outer == outer:
		return *o.ep, true
	}
	return Endpoints{}, false
}

// pathSteps flattens the visits into the journey's steps, adding a NAT
// step where the packet's addresses or ports change, and encap and decap
// steps where it goes into or out of a tunnel packet.
func pathSteps(visits []*visit, steps []Step) []Step {
	n := 0
	for _, v := range visits {
		n += len(v.obs)
	}
	steps = slices.Grow(steps[:0], n) // encap and decap steps, rare, grow it
	var last [2]Endpoints             // last endpoints seen, inner and outer
	var have [2]bool
	level := -1 // 0 inner, 1 outer; -1 before the first observation
	tunnel, vni := "", uint32(0)
	for _, v := range visits {
		for _, o := range v.obs {
			if t := o.tun(); t != nil && tunnel == "" {
				tunnel, vni = t.name, t.vni
			}
		}
	}
	if tunnel == "" {
		tunnel = "tunnel"
	}
	for _, v := range visits {
		for _, o := range v.obs {
			if o.step.Kind == StepICMPError || o.step.Kind == StepReset || o.step.Kind == StepRoute {
				steps = append(steps, o.fullStep())
				continue
			}
			cur := 0
			if o.outer {
				cur = 1
			}
			if level >= 0 && cur != level {
				st := Step{Time: o.at, Netns: o.netns, Kind: StepEncap, Tunnel: tunnel, VNI: vni}
				if cur == 0 {
					st.Kind = StepDecap
				}
				before, after := last[0], last[1]
				if ep, ok := o.epAt(true); ok {
					after = ep
				}
				st.Before, st.After = &before, &after
				steps = append(steps, st)
			}
			level = cur
			for lv := 0; lv < 2; lv++ {
				ep, ok := o.epAt(lv == 1)
				if !ok {
					continue
				}
				if have[lv] && ep != last[lv] && lv == cur {
					steps = insertNAT(steps, natStep(o, last[lv], ep))
				}
				last[lv], have[lv] = ep, true
			}
			steps = append(steps, o.fullStep())
		}
	}
	return steps
}

// natStep describes a rewrite seen between two observations.
func natStep(o *obs, before, after Endpoints) Step {
	st := Step{Time: o.at, Netns: o.netns, Kind: StepNAT, Hook: o.step.Hook, Before: &before, After: &after}
	switch {
	case before.Dst != after.Dst && before.Src != after.Src:
		st.Detail = "source and destination rewritten"
	case before.Dst != after.Dst:
		st.Detail = "destination rewritten (DNAT)"
	default:
		st.Detail = "source rewritten (SNAT or masquerade)"
	}
	return st
}

// insertNAT places a NAT step right after the rule that rewrote the
// packet (a dnat, snat, masquerade or redirect rule seen since the last
// view of its addresses), or else where the change was first seen. The
// route step, decided after DNAT, moves after it.
func insertNAT(steps []Step, nat Step) []Step {
	for i := len(steps) - 1; i >= 0; i-- {
		st := &steps[i]
		if st.Kind == StepCapture || st.Kind == StepHook || st.Kind == StepNAT || st.Netns != nat.Netns {
			break
		}
		if st.Kind == StepRule && isNATRule(st.Rule) {
			nat.Hook, nat.Time = st.Hook, st.Time
			out := append(steps[:i+1:i+1], nat)
			for _, later := range steps[i+1:] {
				out = append(out, later)
			}
			return out
		}
	}
	return append(steps, nat)
}

// isNATRule says whether a rule rewrites addresses (nft or iptables).
func isNATRule(rule string) bool {
	for _, w := range []string{"dnat", "snat", "masquerade", "redirect", "DNAT", "SNAT", "MASQUERADE", "REDIRECT"} {
		if strings.Contains(rule, w) {
			return true
		}
	}
	return false
}
