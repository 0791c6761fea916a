package capture

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
)

// Host says which machine, in which boot, a recording was made on. Two
// recordings of one boot of one machine name the same namespaces; two
// machines may each have a namespace of the same name.
type Host struct {
	Name   string // the host name, as uname gives it
	BootID string // /proc/sys/kernel/random/boot_id: one per boot of one machine
}

// Same says whether two recordings come from the same boot of the same
// machine; an unknown host is no one's.
func (h Host) Same(o Host) bool {
	return h.BootID != "" && h.BootID == o.BootID
}

// LocalHost returns this machine's host name and boot id, each empty
// when it cannot be read.
func LocalHost() Host {
	var h Host
	h.Name, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		h.BootID = strings.TrimSpace(string(b))
	}
	return h
}

// The host travels in the section header as pcapng custom options
// (code 2988: a UTF-8 string other tools may copy) with hooktrace's
// enterprise number, each "hostname=NAME" or "boot_id=ID".
const optCustomString = 2988

const (
	hostNameKey = "hostname="
	bootIDKey   = "boot_id="
)

func appendHost(b []byte, h Host) []byte {
	for _, kv := range [][2]string{{hostNameKey, h.Name}, {bootIDKey, h.BootID}} {
		if kv[1] == "" || len(kv[0])+len(kv[1]) > 1024 {
			continue
		}
		v := binary.LittleEndian.AppendUint32(nil, HooktracePEN)
		v = append(append(v, kv[0]...), kv[1]...)
		b = appendOption(b, optCustomString, v)
	}
	return b
}

// readHostOption takes a section header's custom option into h; others'
// options are ignored.
func readHostOption(order binary.ByteOrder, val []byte, h *Host) {
	if len(val) < 4 || order.Uint32(val) != HooktracePEN {
		return
	}
	s := val[4:]
	switch {
	case bytes.HasPrefix(s, []byte(hostNameKey)):
		h.Name = string(s[len(hostNameKey):])
	case bytes.HasPrefix(s, []byte(bootIDKey)):
		h.BootID = string(s[len(bootIDKey):])
	}
}
