package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// writePcap writes n ICMP echo requests over Ethernet with pcapgo.
func writePcap(t *testing.T, path string, linkType layers.LinkType, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if err := w.WriteFileHeader(65535, linkType); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		buf := gopacket.NewSerializeBuffer()
		err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}},
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: uint16(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1767355200+int64(i), 0), CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}
		if err := w.WritePacket(ci, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func runHooktrace(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadInputIsOneLine(t *testing.T) {
	dir := t.TempDir()
	good := writePcap(t, filepath.Join(dir, "good.pcap"), layers.LinkTypeEthernet, 3)
	os.WriteFile(filepath.Join(dir, "cut.pcap"), good[:len(good)-10], 0o644)
	os.WriteFile(filepath.Join(dir, "empty.pcap"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "text.pcap"), []byte("not a capture at all\n"), 0o644)
	writePcap(t, filepath.Join(dir, "user0.pcap"), layers.LinkType(147), 1)
	for _, tc := range []struct {
		name      string
		args      []string
		code      int
		lines     int // lines on stdout
		errSubstr string
	}{
		{"missing file", []string{"-r", filepath.Join(dir, "nope.pcap")}, exitError, 0, "no such file"},
		{"empty file", []string{"-r", filepath.Join(dir, "empty.pcap")}, exitError, 0, "empty file"},
		{"not a capture", []string{"-r", filepath.Join(dir, "text.pcap")}, exitError, 0, "not a pcap or pcapng file"},
		{"truncated", []string{"-r", filepath.Join(dir, "cut.pcap")}, exitError, 2, "cut.pcap: byte 192: truncated packet record: 50 of 60 bytes"},
		{"unknown link type", []string{"-r", filepath.Join(dir, "user0.pcap")}, exitError, 0, "unknown link type 147"},
		{"bad filter", []string{"-r", filepath.Join(dir, "good.pcap"), "tcp", "prot", "80"}, exitUsage, 0, `"tcp prot 80"`},
		{"missing namespace", []string{"--netns", "hxt-no-such-ns", "--json"}, exitUsage, 0, `network namespace "hxt-no-such-ns": /run/netns/hxt-no-such-ns does not exist`},
		{"missing interface", []string{"-i", "hxtnosuch0", "--json"}, exitUsage, 0, "interface hxtnosuch0: no such interface"},
		{"-r with -i", []string{"-r", "x.pcap", "-i", "eth0"}, exitUsage, 0, "does not go with -i"},
		{"bad flag", []string{"--bogus"}, exitUsage, 0, "flag provided but not defined"},
		{"--speed without -r", []string{"--speed", "1", "--json"}, exitUsage, 0, "--speed plays a capture file back in the terminal UI"},
		{"--speed with --print", []string{"--speed", "2", "--print", "-r", filepath.Join(dir, "good.pcap")}, exitUsage, 0, "without --print"},
		{"negative --speed", []string{"--speed", "-1", "-r", filepath.Join(dir, "good.pcap")}, exitUsage, 0, "--speed -1: give 1 for real time"},
		{"--journeys live without --trace", []string{"--journeys", "-i", "lo"}, exitUsage, 0, "--journeys needs --trace"},
		{"--journeys with --print", []string{"--journeys", "--print", "-r", filepath.Join(dir, "good.pcap")}, exitUsage, 0, "--journeys and --print exclude each other"},
		{"count", []string{"-c", "2", "-r", filepath.Join(dir, "good.pcap")}, exitOK, 2, ""},
		{"filter keeps none", []string{"-r", filepath.Join(dir, "good.pcap"), "tcp"}, exitOK, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runHooktrace(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			if got := strings.Count(out, "\n"); got != tc.lines {
				t.Errorf("%d lines on stdout, want %d:\n%s", got, tc.lines, out)
			}
			if tc.errSubstr == "" {
				return
			}
			if !strings.Contains(errOut, tc.errSubstr) {
				t.Errorf("stderr %q does not say %q", errOut, tc.errSubstr)
			}
			if tc.name != "bad flag" && strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("error is not one line: %q", errOut)
			}
		})
	}
}
