package ui

import (
	"math/rand"
	"testing"
	"time"
)

// TestStampCache compares the cached formatting with time.Format's, over
// random times and fractions with zeros in every place.
func TestStampCache(t *testing.T) {
	var c stampCache
	r := rand.New(rand.NewSource(1))
	for i := range 20000 {
		tm := time.Unix(r.Int63n(4e9)-1e9, r.Int63n(1e9))
		if i%3 == 0 {
			tm = time.Unix(tm.Unix(), int64(i%10)*[]int64{1, 10, 1000, 100000, 1e8}[i%5]) // mostly zeros
		}
		if i%5 == 0 {
			tm = tm.In(time.FixedZone("X", 3600)) // written in UTC all the same
		}
		got := string(c.appendRFC3339([]byte("x"), tm))
		if want := "x" + tm.UTC().Format("2006-01-02T15:04:05.000000000Z"); got != want {
			t.Fatalf("%v: got %s, want %s", tm, got, want)
		}
	}
}
