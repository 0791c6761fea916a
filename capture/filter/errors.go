package filter

import "fmt"

// SyntaxError is returned when libpcap refuses an expression: it does not
// parse, or it makes no sense for the link type it was compiled for. Callers
// tell it from other errors with errors.As.
type SyntaxError struct {
	Expr string // the expression as given
	Msg  string // libpcap's message, such as "syntax error"
}

// Error returns one line: filter expression "EXPR": MSG.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("filter expression %q: %s", e.Expr, e.Msg)
}
