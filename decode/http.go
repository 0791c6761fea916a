package decode

import (
	"bytes"
	"fmt"

	"github.com/gopacket/gopacket"
)

// HTTP is the first line of an HTTP/1.x message: a request line (method,
// target, version) or a status line (version, status, reason), and the
// Host header of a request when it is in the same segment.
type HTTP struct {
	Method  []byte
	Target  []byte
	Version []byte
	Status  int // 0 for a request
	Reason  []byte
	Host    []byte
	line    []byte
}

var httpMethods = [...][]byte{
	[]byte("GET "), []byte("POST "), []byte("PUT "), []byte("HEAD "), []byte("DELETE "),
	[]byte("OPTIONS "), []byte("PATCH "), []byte("CONNECT "), []byte("TRACE "),
}

// looksLikeHTTP says whether a TCP payload starts an HTTP/1.x request or
// response.
func looksLikeHTTP(b []byte) bool {
	if bytes.HasPrefix(b, []byte("HTTP/1.")) {
		return true
	}
	for _, m := range httpMethods {
		if bytes.HasPrefix(b, m) {
			return true
		}
	}
	return false
}

// DecodeFromBytes decodes the first line and, for requests, the Host
// header.
func (h *HTTP) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	*h = HTTP{}
	end := bytes.IndexByte(data, '\n')
	if end < 0 {
		df.SetTruncated()
		return fmt.Errorf("HTTP first line has no end in %d bytes", len(data))
	}
	line := bytes.TrimRight(data[:end], "\r")
	h.line = line
	first, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return fmt.Errorf("HTTP first line %q has no space", line)
	}
	if bytes.HasPrefix(first, []byte("HTTP/1.")) {
		h.Version = first
		code, reason, _ := bytes.Cut(rest, []byte(" "))
		if len(code) != 3 {
			return fmt.Errorf("HTTP status %q is not three digits", code)
		}
		for _, c := range code {
			if c < '0' || c > '9' {
				return fmt.Errorf("HTTP status %q is not three digits", code)
			}
			h.Status = h.Status*10 + int(c-'0')
		}
		h.Reason = reason
		return nil
	}
	h.Method = first
	target, version, ok := bytes.Cut(rest, []byte(" "))
	if !ok || !bytes.HasPrefix(version, []byte("HTTP/1.")) {
		return fmt.Errorf("HTTP request line %q has no HTTP/1.x version", line)
	}
	h.Target, h.Version = target, version
	h.Host = headerValue(data[end+1:], "host")
	return nil
}

// headerValue finds a header in the header block, case-insensitively.
func headerValue(b []byte, name string) []byte {
	for len(b) > 0 {
		end := bytes.IndexByte(b, '\n')
		if end < 0 {
			return nil
		}
		line := bytes.TrimRight(b[:end], "\r")
		if len(line) == 0 {
			return nil
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(k), []byte(name)) {
			return bytes.TrimSpace(v)
		}
		b = b[end+1:]
	}
	return nil
}

// CanDecode reports the HTTP layer type.
func (h *HTTP) CanDecode() gopacket.LayerClass { return layerTypeHTTP }

// LayerType returns the HTTP layer type.
func (h *HTTP) LayerType() gopacket.LayerType { return layerTypeHTTP }

// NextLayerType is zero: the body is not decoded.
func (h *HTTP) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }

// LayerPayload is empty.
func (h *HTTP) LayerPayload() []byte { return nil }

// LayerContents returns the first line.
func (h *HTTP) LayerContents() []byte { return h.line }
