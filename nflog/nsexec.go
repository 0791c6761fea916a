package nflog

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// nftCommand runs nft with args and stdin inside the network namespace at
// nsPath ("" for hooktrace's own), started by startInNamespace.
func nftCommand(nsPath, stdin string, args ...string) ([]byte, error) {
	bin, err := exec.LookPath("nft")
	if err != nil {
		return nil, fmt.Errorf("nft command not found: install nftables (%w)", err)
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := startInNamespace(nsPath, cmd); err != nil {
		return nil, err
	}
	if err := cmd.Wait(); err != nil {
		msg := strings.Join(strings.Fields(errb.String()), " ")
		if msg == "" {
			msg = err.Error()
		}
		return out.Bytes(), fmt.Errorf("nft %s: %s", strings.Join(args, " "), msg)
	}
	return out.Bytes(), nil
}
