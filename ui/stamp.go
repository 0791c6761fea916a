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
	ns := uint32(t.Nanosecond())
	var d [10]byte // nine digits, then the Z
	d[9] = 'Z'
	for i := 7; i >= 1; i -= 2 { // two digits at a time, from the right
		q := ns / 100
		copy(d[i:i+2], digitPairs[(ns-q*100)*2:])
		ns = q
	}
	d[0] = byte('0' + ns)
	return append(b, d[:]...)
}

// digitPairs holds "00" to "99", each two bytes.
const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"
