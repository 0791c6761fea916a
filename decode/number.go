package decode

// AppendUint appends v in decimal. It writes the digits straight into
// b's spare capacity: packet output formats many small numbers, and
// strconv's copy from a scratch buffer costs more than the digits.
func AppendUint(b []byte, v uint64) []byte {
	n := 1
	for x := v; x >= 10; x /= 10 {
		n++
	}
	b = grow(b, n)
	end := len(b)
	b = b[:end+n]
	for i := end + n - 1; i >= end; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}

// grow makes room for n more bytes without changing b's length.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), 2*cap(b)+n)
	copy(nb, b)
	return nb
}
