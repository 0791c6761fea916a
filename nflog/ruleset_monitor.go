package nflog

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// nftMonitor reads `nft -a monitor ruleset`, run inside a namespace,
// and keeps the text of each new rule by handle until the Ruleset takes
// it. nft prints a new rule with the same code as a listing, and its
// cache holds the anonymous sets of the rule's transaction, so the text
// is the listing's, at a cost in proportion to the change: no set of the
// table is fetched again. nft loads its full cache once, at start;
// generations committed before it joined the change group are not
// printed: since tells them apart. It monitors the ruleset only, not
// trace events, so a traced flood costs it nothing.
type nftMonitor struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the reader has seen nft's output end

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at each rule line or state change
	since   uint32        // generations after this one are all printed
	ready   bool          // since is known
	texts   map[monitorKey]monitorText
}

type monitorKey struct {
	family, table string
	handle        uint64
}

type monitorText struct {
	chain, text string
	at          time.Time // when nft printed it
}

// monitorTextAge is how long a text nobody took is kept: a rule whose
// change the watch handled without it (a chain reload) leaves one.
const monitorTextAge = 30 * time.Second

// startNftMonitor starts `nft -a monitor ruleset` in the namespace at
// nsPath; only its rule lines are used. It runs under `stdbuf -oL` when
// coreutils has it, since nft's output to a pipe is otherwise
// block-buffered (a transaction's rules would then wait for the next few
// kilobytes of output, and be reloaded instead). nft dies with hooktrace (SIGKILL on the parent's
// death) and is killed by close.
func startNftMonitor(nsPath string) (*nftMonitor, error) {
	bin, err := exec.LookPath("nft")
	if err != nil {
		return nil, &rulesetError{"nft command not found: " + nftInstallHint, exec.ErrNotFound}
	}
	args := []string{bin, "-a", "monitor", "ruleset"}
	if stdbuf, err := exec.LookPath("stdbuf"); err == nil {
		args = append([]string{stdbuf, "-oL"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start nft monitor: %w", err)
	}
	if err := startInNamespace(nsPath, cmd); err != nil {
		return nil, fmt.Errorf("start nft monitor in %s: %w", namespaceLabel(nsPath), err)
	}
	m := newNftMonitor()
	m.cmd = cmd
	go m.read(out)
	return m, nil
}

func newNftMonitor() *nftMonitor {
	return &nftMonitor{done: make(chan struct{}), changed: make(chan struct{}), texts: map[monitorKey]monitorText{}}
}

// read takes nft's lines until its output ends.
func (m *nftMonitor) read(r io.Reader) {
	defer close(m.done)
	defer m.notify()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		m.line(sc.Text())
	}
}

// line takes one line of `nft -a monitor ruleset`:
//
//	add rule inet bench c250 udp dport { 7, 9 } accept # handle 24502
//	insert rule inet t c tcp dport 2 accept # handle 3
func (m *nftMonitor) line(l string) {
	k, t, ok := monitorRuleLine(l)
	if !ok {
		return
	}
	t.at = time.Now()
	m.mu.Lock()
	m.texts[k] = t
	m.mu.Unlock()
	m.notify()
}

// monitorRuleLine reads an "add rule" or "insert rule" line.
func monitorRuleLine(l string) (monitorKey, monitorText, bool) {
	rest, ok := strings.CutPrefix(l, "add rule ")
	if !ok {
		if rest, ok = strings.CutPrefix(l, "insert rule "); !ok {
			return monitorKey{}, monitorText{}, false
		}
	}
	var names [3]string
	for i := range names {
		if names[i], rest, ok = nextName(rest); !ok {
			return monitorKey{}, monitorText{}, false
		}
	}
	h, text, ok := cutRuleHandle(rest)
	if !ok {
		return monitorKey{}, monitorText{}, false
	}
	text = cutPosition(text)
	return monitorKey{names[0], names[1], h}, monitorText{chain: names[2], text: text}, true
}

// cutPosition drops the "handle N " nft monitor puts before the text of
// a rule whose notification names its position (the rule before it): no
// rule statement starts with the word handle.
func cutPosition(text string) string {
	rest, ok := strings.CutPrefix(text, "handle ")
	if !ok {
		return text
	}
	n, rest, _ := strings.Cut(rest, " ")
	if _, err := strconv.ParseUint(n, 10, 64); err != nil {
		return text
	}
	return rest
}

// nextName splits off the first word of s, a name nft may have quoted.
func nextName(s string) (name, rest string, ok bool) {
	if strings.HasPrefix(s, `"`) {
		end := strings.Index(s[1:], `"`)
		if end < 0 {
			return "", "", false
		}
		return s[1 : end+1], strings.TrimPrefix(s[end+2:], " "), true
	}
	name, rest, ok = strings.Cut(s, " ")
	return name, rest, ok && name != ""
}

// notify wakes the waiters of waitGen.
func (m *nftMonitor) notify() {
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// setSince records that every generation after g is printed.
func (m *nftMonitor) setSince(g uint32) {
	m.mu.Lock()
	m.since, m.ready = g, true
	m.mu.Unlock()
	m.notify()
}

// waitRules waits until nft has printed the rules of keys, which
// generation g added, and says whether their texts are worth taking:
// false when nft was not listening yet at g or is gone. After timeout it
// says true if nft printed some of them (the rest are reloaded).
func (m *nftMonitor) waitRules(g uint32, keys []monitorKey, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		ready, after := m.ready, genAfter(g, m.since)
		have := 0
		for _, k := range keys {
			if _, ok := m.texts[k]; ok {
				have++
			}
		}
		ch := m.changed
		m.mu.Unlock()
		switch {
		case !ready || !after:
			return false
		case have == len(keys):
			return true
		}
		select {
		case <-ch:
		case <-m.done:
			return have > 0
		case <-deadline.C:
			return have > 0
		}
	}
}

// waitReady waits until nft has subscribed (and setSince ran), nft is
// gone, or timeout passes.
func (m *nftMonitor) waitReady(timeout time.Duration) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		ready, ch := m.ready, m.changed
		m.mu.Unlock()
		if ready {
			return
		}
		select {
		case <-ch:
		case <-m.done:
			return
		case <-deadline.C:
			return
		}
	}
}

// genAfter says whether generation a comes after b (ids wrap around).
func genAfter(a, b uint32) bool { return int32(a-b) > 0 }

// take returns and forgets the text nft printed for a new rule.
func (m *nftMonitor) take(c RulesetChange) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := monitorKey{c.Family, c.Table, c.Handle}
	t, ok := m.texts[k]
	if !ok || t.chain != c.Chain {
		return "", false
	}
	delete(m.texts, k)
	return t.text, true
}

// forget drops the texts nobody took for monitorTextAge.
func (m *nftMonitor) forget() {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := time.Now().Add(-monitorTextAge)
	for k, t := range m.texts {
		if t.at.Before(old) {
			delete(m.texts, k)
		}
	}
}

// subscribed says whether nft (process pid) has joined NFNLGRP_NFTABLES,
// from /proc/PID/net/netlink, which shows nft's own namespace: a socket
// of protocol 12 (NETLINK_NETFILTER) with port id pid and group 7 (bit 6
// of the first groups word).
func subscribed(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/netlink", pid))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || f[1] != "12" || f[2] != strconv.Itoa(pid) {
			continue
		}
		groups, err := strconv.ParseUint(f[3], 16, 64)
		if err == nil && groups&(1<<(changeGroup-1)) != 0 {
			return true
		}
	}
	return false
}

// awaitSubscription polls until nft joined the change group, then asks
// gen for the current generation: every later one is printed. It gives
// up when nft exits or stop is closed.
func (m *nftMonitor) awaitSubscription(gen func() (uint32, error), stop <-chan struct{}) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !subscribed(m.cmd.Process.Pid) {
		select {
		case <-tick.C:
		case <-m.done:
			return
		case <-stop:
			return
		}
	}
	if g, err := gen(); err == nil {
		m.setSince(g)
	}
}

// close kills nft and waits for it.
func (m *nftMonitor) close() {
	m.cmd.Process.Kill()
	<-m.done // nft's output ends with it; Wait closes the pipe
	m.cmd.Wait()
}
