package server

import (
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestHistogramBuckets: a bucket counts what is at most its bound (le), the
// buckets are cumulative, and +Inf equals _count.
func TestHistogramBuckets(t *testing.T) {
	cases := []struct {
		name string
		d    time.Duration
		le   string // the smallest bucket that counts it
	}{
		{"zero", 0, "0.0005"},
		{"at a bound", time.Millisecond, "0.001"},
		{"just above", time.Millisecond + 1, "0.0025"},
		{"beyond every bound", time.Minute, "+Inf"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			var h histogram
			h.observe(tc.d)
			var b strings.Builder
			writeHistogram(&b, "x", `op="a"`, &h)
			out := b.String()
			is.True(strings.Contains(out, `x_bucket{op="a",le="`+tc.le+`"} 1`+"\n")) // counted from its bucket on
			is.True(strings.Contains(out, `x_bucket{op="a",le="+Inf"} 1`+"\n"))
			is.True(strings.Contains(out, `x_count{op="a"} 1`+"\n"))
			if tc.le != "0.0005" {
				is.True(strings.Contains(out, `x_bucket{op="a",le="0.0005"} 0`+"\n")) // not below it
			}
		})
	}
}

func TestQuote(t *testing.T) {
	is := is.New(t)
	is.Equal(quote(`a"b\c`+"\n"), `"a\"b\\c\n"`)
}

// TestMetricsAllocs: recording a request and an outcome allocates nothing.
func TestMetricsAllocs(t *testing.T) {
	is := is.New(t)
	m := newMetrics()
	m.Request("POST /validate", 200, time.Millisecond) // the route's first time
	allocs := testing.AllocsPerRun(1000, func() {
		m.Request("POST /validate", 200, time.Millisecond)
		m.Validation("valid")
		m.storeWrite(opRecord, time.Millisecond, nil)
	})
	is.Equal(allocs, 0.0)
}

func BenchmarkMetricsRecord(b *testing.B) {
	m := newMetrics()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request("POST /validate", 200, 300*time.Microsecond)
			m.Validation("valid")
		}
	})
}
