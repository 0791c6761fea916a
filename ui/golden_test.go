package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hooktrace/hooktrace/capture"
	"github.com/hooktrace/hooktrace/decode"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// broken fixtures are tested by the reader's and the command's own tests.
var broken = []string{"malformed", "truncated", "not-a-capture", "empty", "unknown-linktype", "corrupt"}

func fixtureFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"*.pcap", "*.pcapng"} {
		m, err := filepath.Glob(filepath.Join("..", "fixtures", pat))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) < 20 {
		t.Fatalf("only %d fixtures found in ../fixtures: run go run ./fixtures/gen", len(out))
	}
	return out
}

func isBroken(name string) bool {
	for _, b := range broken {
		if strings.HasPrefix(name, b) && name != "malformed.pcap" {
			return true
		}
	}
	return false
}

// printAll prints every frame of a file with both printers.
func printAll(t *testing.T, path string) (text, ndjson []byte) {
	t.Helper()
	src, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var tb, jb bytes.Buffer
	tp, jp := NewText(&tb, time.UTC), NewNDJSON(&jb)
	dec := decode.NewDecoder()
	for n := uint64(1); ; n++ {
		f, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := dec.Decode(f)
		if err := tp.Packet(n, p); err != nil {
			t.Fatal(err)
		}
		if err := jp.Packet(n, p); err != nil {
			t.Fatal(err)
		}
	}
	return tb.Bytes(), jb.Bytes()
}

func TestGoldenOutput(t *testing.T) {
	for _, path := range fixtureFiles(t) {
		name := filepath.Base(path)
		if isBroken(name) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			text, ndjson := printAll(t, path)
			checkNDJSON(t, ndjson)
			for ext, got := range map[string][]byte{".txt": text, ".ndjson": ndjson} {
				golden := filepath.Join("testdata", "golden", name+ext)
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./ui -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s:\n got:\n%s\nwant:\n%s", name, golden, got, want)
				}
			}
		})
	}
}

// checkNDJSON checks every line is one valid JSON object with the
// schema's required keys and no duplicate keys.
func checkNDJSON(t *testing.T, out []byte) {
	t.Helper()
	for i, line := range bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n")) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		for _, k := range []string{"type", "n", "time", "iface", "netns", "dir", "len", "caplen", "layers", "summary"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("line %d lacks %q", i+1, k)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, rec["time"].(string)); err != nil {
			t.Errorf("line %d: time: %v", i+1, err)
		}
		checkNoDuplicateKeys(t, line)
	}
}

func checkNoDuplicateKeys(t *testing.T, line []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, _ := dec.Token()
				if seen[k.(string)] {
					t.Errorf("duplicate key %q in %s", k, line)
				}
				seen[k.(string)] = true
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
		}
		return err
	}
	if err := walk(); err != nil {
		t.Errorf("walk %s: %v", line, err)
	}
}

func TestJSONStringEscaping(t *testing.T) {
	for in, want := range map[string]string{
		"plain":           `"plain"`,
		"a\"b\\c":         `"a\"b\\c"`,
		"line\nbreak\x01": `"line\nbreak\u0001"`,
		"caf\xc3\xa9":     `"café"`,
		"bad\xff":         `"bad\ufffd"`,
	} {
		if got := string(appendJSONString(nil, []byte(in))); got != want {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
		if !json.Valid(appendJSONString(nil, in)) {
			t.Errorf("%q: invalid JSON", in)
		}
	}
}
