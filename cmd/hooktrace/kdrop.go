package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/nflog"
)

// dropProbe follows the kernel's packet drops in the traced namespaces
// and hands them to the journeys.
type dropProbe struct {
	p     *nflog.DropProbe
	names map[uint64]string // namespace inode -> name
	wg    sync.WaitGroup
}

// dropSink takes the kernel's drops: the journeys, or the terminal UI.
type dropSink interface {
	drop(nflog.KernelDrop)
}

// startDropProbe starts the kernel drop probe for the namespaces. It
// never fails the run: without it, journeys only lack kernel drops, and
// stderr says why.
func startDropProbe(nss []capture.Namespace, j dropSink, stderr io.Writer) *dropProbe {
	d := &dropProbe{names: map[uint64]string{}}
	var inodes []uint64
	for _, ns := range nss {
		d.names[ns.Inode] = ns.Name
		inodes = append(inodes, ns.Inode)
	}
	p, err := nflog.StartDropProbe(nflog.DropProbeOptions{NetnsInodes: inodes})
	if err != nil {
		fmt.Fprintf(stderr, "hooktrace: warning: kernel drops are not followed: %v\n", err)
		return nil
	}
	if note := p.Note(); note != "" {
		fmt.Fprintf(stderr, "hooktrace: warning: %s\n", note)
	}
	d.p = p
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			kd, err := p.Next()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				fmt.Fprintf(stderr, "hooktrace: warning: kernel drop probe: %v\n", err)
				return
			}
			name, ok := d.names[kd.NetnsInode]
			if !ok && kd.NetnsInode != 0 {
				continue // another namespace's drop (the fallback cannot filter)
			}
			kd.Netns = name
			j.drop(kd)
		}
	}()
	return d
}

// close stops the probe and returns its counters.
func (d *dropProbe) close() nflog.DropProbeStats {
	if d == nil {
		return nflog.DropProbeStats{}
	}
	d.p.Close()
	d.wg.Wait()
	return d.p.Stats()
}
