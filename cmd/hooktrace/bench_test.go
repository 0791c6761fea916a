package main

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	nstest "github.com/hooktrace/hooktrace/fixtures/netns"
)

// BenchmarkReplayNDJSON replays $HOOKTRACE_BENCH_PCAP (make one with
// `go run ./fixtures/gen -large 200000 -o /tmp/bench.pcap`) to NDJSON and
// reports packets per second.
func BenchmarkReplayNDJSON(b *testing.B) { benchReplay(b, "--json") }

// BenchmarkReplayText does the same for the text printer.
func BenchmarkReplayText(b *testing.B) { benchReplay(b, "--print") }

// BenchmarkReplayJourneys replays it printing only the journeys, as
// NDJSON (a recorded incident: make one with `go run ./fixtures/gen
// -incident 1000000 -o /tmp/incident.pcapng`).
func BenchmarkReplayJourneys(b *testing.B) { benchReplay(b, "--journeys", "--json") }

func benchReplay(b *testing.B, mode ...string) {
	path := os.Getenv("HOOKTRACE_BENCH_PCAP")
	if path == "" {
		b.Skip("set HOOKTRACE_BENCH_PCAP to a capture file")
	}
	for b.Loop() {
		if code := run(context.Background(), append(mode, "-r", path), io.Discard, io.Discard); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}

// BenchmarkTracingCost measures what tracing adds to each packet of a
// traced flow: one op is a UDP request and its reply between two
// namespaces, with no hooktrace running, with `hooktrace --trace` tracing
// another flow (its tables installed, the packets not selected), and with
// it tracing this flow (trace events, NFLOG at every hook, all printed as
// NDJSON to /dev/null).
func BenchmarkTracingCost(b *testing.B) {
	nstest.RequireRoot(b)
	a, s := nstest.New(b, "hxbca"), nstest.New(b, "hxbcs")
	nstest.Veth(b, a, "ca", "10.88.0.1/24", s, "cs", "10.88.0.2/24")
	var client, server net.PacketConn
	nstest.In(b, a, func() (err error) { client, err = net.ListenPacket("udp", "10.88.0.1:0"); return })
	nstest.In(b, s, func() (err error) { server, err = net.ListenPacket("udp", "10.88.0.2:7000"); return })
	defer client.Close()
	defer server.Close()
	go func() { // echo
		buf := make([]byte, 2048)
		for {
			n, from, err := server.ReadFrom(buf)
			if err != nil {
				return
			}
			server.WriteTo(buf[:n], from)
		}
	}()
	to := &net.UDPAddr{IP: net.IPv4(10, 88, 0, 2), Port: 7000}
	roundTrip := func(b *testing.B) {
		msg, buf := []byte("hooktrace tracing cost"), make([]byte, 2048)
		for b.Loop() {
			if _, err := client.WriteTo(msg, to); err != nil {
				b.Fatal(err)
			}
			client.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, _, err := client.ReadFrom(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, bc := range []struct{ name, filter string }{
		{"none", ""},
		{"other-flow", "udp port 9"},
		{"traced", "udp port 7000"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.filter != "" {
				devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
				if err != nil {
					b.Fatal(err)
				}
				defer devnull.Close()
				ready := filepath.Join(b.TempDir(), "ready")
				cmd := exec.Command(hooktraceBin, "--netns", s, "--trace", "--trace-rate", "0", "--json", "--ready-file", ready, bc.filter)
				cmd.Stdout, cmd.Stderr = devnull, devnull
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				defer func() { cmd.Process.Signal(syscall.SIGINT); cmd.Wait() }()
				for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					if _, err := os.Stat(ready); err == nil {
						break
					}
					if time.Now().After(deadline) {
						b.Fatal("hooktrace did not become ready")
					}
				}
			}
			roundTrip(b)
		})
	}
}
