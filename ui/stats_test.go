package ui

import (
	"bytes"
	"testing"

	"github.com/hooktrace/hooktrace/capture"
)

func TestStatsRecords(t *testing.T) {
	ifaces := []capture.InterfaceStats{
		{Netns: "a", Iface: "eth0", LinkType: capture.LinkTypeEthernet, Received: 10, KernelDrops: 1, HooktraceDrops: 2},
		{Netns: "a", Iface: "nflog:18516", LinkType: capture.LinkTypeNFLOG, Received: 5, KernelDrops: 3},
	}
	traces := []TraceCounts{{Netns: "a", Received: 40, Lost: 1}, {Netns: "b", Received: 2, Unread: 3}}
	for _, tc := range []struct {
		name       string
		traces     []TraceCounts
		json, text string
	}{
		{
			name: "capture only",
			json: `{"type":"stats","received":15,"kernel_drops":4,"hooktrace_drops":2,"interfaces":[{"netns":"a","iface":"eth0","received":10,"kernel_drops":1,"hooktrace_drops":2},{"netns":"a","iface":"nflog:18516","received":5,"kernel_drops":3,"hooktrace_drops":0}]}` + "\n",
			text: "15 packets captured\n4 packets dropped by kernel\n2 packets dropped by hooktrace\n" +
				"  a/eth0                   10 captured, 1 dropped by kernel, 2 dropped by hooktrace\n" +
				"  a/nflog:18516            5 captured, 3 dropped by kernel, 0 dropped by hooktrace\n",
		},
		{
			name:   "tracing",
			traces: traces,
			json:   `{"type":"stats","received":15,"kernel_drops":4,"hooktrace_drops":2,"interfaces":[{"netns":"a","iface":"eth0","received":10,"kernel_drops":1,"hooktrace_drops":2},{"netns":"a","iface":"nflog:18516","received":5,"kernel_drops":3,"hooktrace_drops":0}],"trace_events":42,"trace_enobufs":1,"trace_unread":3,"traces":[{"netns":"a","events":40,"enobufs":1,"unread":0},{"netns":"b","events":2,"enobufs":0,"unread":3}]}` + "\n",
			text: "15 packets captured\n4 packets dropped by kernel\n2 packets dropped by hooktrace\n" +
				"  a/eth0                   10 captured, 1 dropped by kernel, 2 dropped by hooktrace\n" +
				"  a/nflog:18516            5 captured, 3 dropped by kernel, 0 dropped by hooktrace\n" +
				"42 trace events received\n1 times the kernel reported trace events lost (ENOBUFS)\n3 trace events left unread at exit\n" +
				"  a                        40 trace events, 1 ENOBUFS, 0 unread\n" +
				"  b                        2 trace events, 0 ENOBUFS, 3 unread\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var j, txt bytes.Buffer
			if err := NewNDJSON(&j).Stats(ifaces, tc.traces); err != nil {
				t.Fatal(err)
			}
			if j.String() != tc.json {
				t.Errorf("json:\n got %s\nwant %s", j.String(), tc.json)
			}
			WriteStatsText(&txt, ifaces, tc.traces)
			if txt.String() != tc.text {
				t.Errorf("text:\n got %q\nwant %q", txt.String(), tc.text)
			}
		})
	}
}
