package nflog

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
)

// maxSymbolOffset bounds how far past a symbol's start an address may be
// and still be named after it. The kernel's largest functions are a few
// tens of KiB; an address further than this from the nearest symbol below
// it lies outside every function kallsyms listed (a module loaded since).
const maxSymbolOffset = 1 << 20

// kernelSymbols resolves kernel text addresses to symbol+offset, as %pS
// prints them without the size. It holds only text symbols, in one
// string, sorted by address.
type kernelSymbols struct {
	addrs []uint64
	ends  []uint32 // ends[i] is where symbol i's name ends in names
	names string
}

// loadKernelSymbols reads /proc/kallsyms. It needs root (kptr_restrict):
// without it every address reads as zero, which is an error here.
func loadKernelSymbols() (*kernelSymbols, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("read kernel symbols: %w", err)
	}
	defer f.Close()
	syms, err := parseKallsyms(f)
	if err != nil {
		return nil, fmt.Errorf("read kernel symbols: %w", err)
	}
	return syms, nil
}

// parseKallsyms reads kallsyms lines ("ffffffff81000000 T _text", with an
// optional "[module]" after the name) and keeps the text symbols (t, T,
// w, W). Malformed lines are skipped; a file without one usable address
// is an error.
func parseKallsyms(r io.Reader) (*kernelSymbols, error) {
	type sym struct {
		addr uint64
		name string
	}
	var all []sym
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	for sc.Scan() {
		addr, name, ok := kallsymsLine(sc.Bytes())
		if ok {
			all = append(all, sym{addr, name})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no text symbol with an address (kptr_restrict hides them from non-root)")
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].addr < all[j].addr })
	ks := &kernelSymbols{addrs: make([]uint64, len(all)), ends: make([]uint32, len(all))}
	var names bytes.Buffer
	for i, s := range all {
		ks.addrs[i] = s.addr
		names.WriteString(s.name)
		ks.ends[i] = uint32(names.Len())
	}
	ks.names = names.String()
	return ks, nil
}

// kallsymsLine splits one kallsyms line. Zero addresses (hidden by
// kptr_restrict) and non-text symbols are refused.
func kallsymsLine(line []byte) (uint64, string, bool) {
	f := bytes.Fields(line)
	if len(f) < 3 || len(f[1]) != 1 {
		return 0, "", false
	}
	switch f[1][0] {
	case 't', 'T', 'w', 'W':
	default:
		return 0, "", false
	}
	addr, err := strconv.ParseUint(string(f[0]), 16, 64)
	if err != nil || addr == 0 {
		return 0, "", false
	}
	return addr, string(f[2]), true
}

// name returns symbol i's name.
func (k *kernelSymbols) name(i int) string {
	start := uint32(0)
	if i > 0 {
		start = k.ends[i-1]
	}
	return k.names[start:k.ends[i]]
}

// Resolve names addr as "symbol+0xoff". An address below every symbol,
// or too far past the nearest one, is returned as "0x..." with ok false.
// Where several symbols share an address, the first one listed wins, as
// in the kernel's own lookup (kallsyms lists in its table's order).
func (k *kernelSymbols) Resolve(addr uint64) (string, bool) {
	i := sort.Search(len(k.addrs), func(i int) bool { return k.addrs[i] > addr }) - 1
	if i < 0 || addr-k.addrs[i] > maxSymbolOffset {
		return "0x" + strconv.FormatUint(addr, 16), false
	}
	for i > 0 && k.addrs[i-1] == k.addrs[i] {
		i--
	}
	return k.name(i) + "+0x" + strconv.FormatUint(addr-k.addrs[i], 16), true
}
