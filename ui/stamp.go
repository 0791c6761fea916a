package ui

import "time"

// stampCache formats timestamps quickly: packets come in bursts within
// one second, so the date and time up to the second is formatted once
// and only the fraction is written per packet.
type stampCache struct {
	sec    int64
	prefix []byte // "2006-01-02T15:04:05." for sec, in UTC
	valid  bool
}

// appendRFC3339 appends t in UTC as RFC 3339 with nine fraction digits.
func (c *stampCache) appendRFC3339(b []byte, t time.Time) []byte {
	if sec := t.Unix(); !c.valid || sec != c.sec {
		c.sec, c.valid = sec, true
		c.prefix = t.UTC().AppendFormat(c.prefix[:0], "2006-01-02T15:04:05.")
	}
	b = append(b, c.prefix...)
	ns := t.Nanosecond()
	var d [9]byte
	for i := 8; i >= 0; i-- {
		d[i] = byte('0' + ns%10)
		ns /= 10
	}
	return append(append(b, d[:]...), 'Z')
}
