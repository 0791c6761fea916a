package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestImportsFlowOneWay checks the package rule: capture and nflog are
// sources, decode turns their records into layers without I/O, ui renders,
// and only cmd wires them. Nothing imports ui or cmd; sources import
// neither decode nor ui.
func TestImportsFlowOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/hooktrace/hooktrace/"
	forbidden := map[string][]string{
		"capture": {"decode", "ui", "nflog", "cmd"},
		"nflog":   {"decode", "ui", "capture", "cmd"},
		"decode":  {"ui", "cmd"},
		"ui":      {"cmd"},
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(p.ImportPath, mod)
		top := strings.SplitN(rel, "/", 2)[0]
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			impTop := strings.SplitN(strings.TrimPrefix(imp, mod), "/", 2)[0]
			for _, bad := range forbidden[top] {
				if impTop == bad {
					t.Errorf("%s imports %s: imports must flow capture/nflog -> decode -> ui -> cmd", rel, imp)
				}
			}
		}
	}
}
