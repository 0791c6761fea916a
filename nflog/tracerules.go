package nflog

import (
	"errors"
	"fmt"
	"strings"
)

// NetnsRef names a network namespace and says how to enter it.
type NetnsRef struct {
	Name string // as hooktrace shows it
	Path string // the namespace file; "" for hooktrace's own
}

func (n NetnsRef) label() string {
	if n.Name == "" {
		return "this network namespace"
	}
	return "network namespace " + n.Name
}

// TraceRules is hooktrace's table, installed in a set of namespaces.
// Remove takes it away from each of them.
type TraceRules struct {
	installed []NetnsRef
}

// InstallTraceRules adds script (from TraceScript) in every namespace. A
// namespace that still holds hooktrace's table from an earlier run is an
// error naming it: `hooktrace cleanup` removes it. If one namespace fails,
// the table is removed from those done before, and nothing is left.
func InstallTraceRules(namespaces []NetnsRef, script string) (*TraceRules, error) {
	r := &TraceRules{}
	for _, ns := range namespaces {
		has, err := HasTraceTable(ns)
		if err != nil {
			r.Remove()
			return nil, err
		}
		if has {
			r.Remove()
			return nil, fmt.Errorf("%s still holds hooktrace's table %s from an earlier hooktrace run: remove it with `hooktrace cleanup`", ns.label(), TraceTable)
		}
		if _, err := nftCommand(ns.Path, script, "-f", "-"); err != nil {
			r.Remove()
			return nil, fmt.Errorf("add tracing rules in %s: %w", ns.label(), err)
		}
		r.installed = append(r.installed, ns)
	}
	return r, nil
}

// Remove deletes hooktrace's table from every namespace it was added to.
// A namespace that vanished meanwhile took the table with it.
func (r *TraceRules) Remove() error {
	var errs []error
	for _, ns := range r.installed {
		if err := removeTraceTable(ns); err != nil {
			errs = append(errs, err)
		}
	}
	r.installed = nil
	return oneLineErrors(errs)
}

// oneLineErrors joins errors with "; " so a user-facing message stays on
// one line.
func oneLineErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

func removeTraceTable(ns NetnsRef) error {
	families, err := traceTableFamilies(ns)
	if err != nil || len(families) == 0 {
		return nil // gone, with its namespace or by hand
	}
	if _, err := nftCommand(ns.Path, RemoveScript(families), "-f", "-"); err != nil {
		return fmt.Errorf("remove tracing rules in %s: %w", ns.label(), err)
	}
	return nil
}

// HasTraceTable says whether hooktrace's table exists in a namespace, in
// any family.
func HasTraceTable(ns NetnsRef) (bool, error) {
	families, err := traceTableFamilies(ns)
	return len(families) > 0, err
}

// traceTableFamilies lists the families in which a namespace holds
// hooktrace's table.
func traceTableFamilies(ns NetnsRef) ([]string, error) {
	out, err := nftCommand(ns.Path, "", "list", "tables")
	if err != nil {
		return nil, fmt.Errorf("list nftables tables in %s: %w", ns.label(), err)
	}
	var families []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "table" && f[2] == TraceTable {
			families = append(families, f[1])
		}
	}
	return families, nil
}

// Cleanup removes hooktrace's table from every namespace that holds it
// and returns the namespaces it was removed from.
func Cleanup(namespaces []NetnsRef) ([]NetnsRef, error) {
	var removed []NetnsRef
	var errs []error
	for _, ns := range namespaces {
		families, err := traceTableFamilies(ns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(families) == 0 {
			continue
		}
		if _, err := nftCommand(ns.Path, RemoveScript(families), "-f", "-"); err != nil {
			errs = append(errs, fmt.Errorf("remove tracing rules in %s: %w", ns.label(), err))
			continue
		}
		removed = append(removed, ns)
	}
	return removed, oneLineErrors(errs)
}
