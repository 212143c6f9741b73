package scan_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/scan"
	"github.com/licensekit/licensing/internal/wire"
)

// corpusSize is the size of the benchmark's input.
const corpusSize = 100 << 20

var corpus = sync.OnceValues(func() ([]byte, int) { return mixedText(corpusSize) })

// mixedText returns about size bytes of what a repository or a log directory
// holds: Go code, JSON log lines with UUIDs, sha256sum lines, base64 blocks
// and, once per 1,000 lines, a key in a log line. It returns the text and the
// number of keys in it. It is the same for every run.
func mixedText(size int) ([]byte, int) {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	b.Grow(size + 4096)
	randHex := func(n int) string {
		p := make([]byte, n/2)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		return hex.EncodeToString(p)
	}
	uuid := func() string {
		h := randHex(32)
		return h[:8] + "-" + h[8:12] + "-7" + h[13:16] + "-" + h[16:20] + "-" + h[20:]
	}
	code := []string{
		"func (s *Service) ValidateKey(ctx context.Context, key string) (*Answer, error) {",
		"\tif err := s.store.Put(ctx, rec); err != nil {",
		"\t\treturn nil, fmt.Errorf(\"validate key: %w\", err)",
		"\t}",
		"// The batch is flushed every second and on Close; see FlushInterval.",
		"}",
		"",
	}
	keys, line := 0, 0
	for b.Len() < size {
		line++
		switch r.IntN(10) {
		case 0, 1, 2, 3:
			b.WriteString(code[r.IntN(len(code))])
		case 4, 5, 6:
			if line%1000 == 0 {
				k, _ := wire.GenerateKey(r0{r})
				fmt.Fprintf(&b, `{"time":"2026-11-26T13:40:18.%06dZ","level":"INFO","msg":"pasted","key":"%s"}`, r.IntN(1e6), k)
				keys++
			} else {
				fmt.Fprintf(&b, `{"time":"2026-11-26T13:40:18.%06dZ","level":"INFO","msg":"validate","keyId":"%s","instanceId":"%s","status":200,"ms":%d}`,
					r.IntN(1e6), uuid(), uuid(), r.IntN(500))
			}
		case 7, 8:
			sum := sha256.Sum256([]byte{byte(line), byte(line >> 8), byte(line >> 16)})
			fmt.Fprintf(&b, "%s  release/licensing-server-%d.tar.gz", hex.EncodeToString(sum[:]), line)
		case 9:
			p := make([]byte, 57)
			for i := range p {
				p[i] = byte(r.Uint32())
			}
			b.WriteString(base64.StdEncoding.EncodeToString(p))
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), keys
}

// r0 reads random bytes from a math/rand source (keys for a benchmark only).
type r0 struct{ r *rand.Rand }

func (x r0) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(x.r.Uint32())
	}
	return len(p), nil
}

// BenchmarkScan scans 100 MB of mixed text held in memory.
func BenchmarkScan(b *testing.B) {
	data, keys := corpus()
	var sc scan.Scanner
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		n := 0
		if err := sc.Reader(bytes.NewReader(data), func(int, string) { n++ }); err != nil {
			b.Fatal(err)
		}
		if n != keys {
			b.Fatalf("found %d keys, planted %d", n, keys)
		}
	}
}

// BenchmarkScanHexSums is the worst case: 20 MB of sha256sum output, where
// every line holds a 64-hex string whose checksum must be computed.
func BenchmarkScanHexSums(b *testing.B) {
	var buf bytes.Buffer
	for i := 0; buf.Len() < 20<<20; i++ {
		sum := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		fmt.Fprintf(&buf, "%x  dist/file-%d.tar.gz\n", sum, i)
	}
	data := buf.Bytes()
	var sc scan.Scanner
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if err := sc.Reader(bytes.NewReader(data), func(int, string) { b.Fatal("a sum is no key") }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineCountLines counts the newlines in the same 100 MB with
// bytes.Count (vectorised): the floor for anything that reports lines.
func BenchmarkBaselineCountLines(b *testing.B) {
	data, _ := corpus()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if bytes.Count(data, []byte("\n")) == 0 {
			b.Fatal("no lines")
		}
	}
}

// BenchmarkScanPaired times the scan and the baseline one after the other in
// every iteration and reports both rates and their ratio, which holds up
// better than two separate benchmarks on a machine whose load changes.
func BenchmarkScanPaired(b *testing.B) {
	data, keys := corpus()
	var sc scan.Scanner
	var tScan, tCount time.Duration
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if bytes.Count(data, []byte("\n")) == 0 {
			b.Fatal("no lines")
		}
		t1 := time.Now()
		n := 0
		if err := sc.Reader(bytes.NewReader(data), func(int, string) { n++ }); err != nil || n != keys {
			b.Fatalf("found %d keys, planted %d (%v)", n, keys, err)
		}
		tCount += t1.Sub(t0)
		tScan += time.Since(t1)
	}
	mb := float64(b.N) * float64(len(data)) / 1e6
	b.ReportMetric(mb/tScan.Seconds(), "scan-MB/s")
	b.ReportMetric(mb/tCount.Seconds(), "count-MB/s")
	b.ReportMetric(tScan.Seconds()/tCount.Seconds(), "scan/count")
}

// TestWriteCorpus writes the benchmark's input to $SCAN_CORPUS, to time the
// command and grep on the same bytes (see BENCHMARKS.md).
func TestWriteCorpus(t *testing.T) {
	path := os.Getenv("SCAN_CORPUS")
	if path == "" {
		t.Skip("SCAN_CORPUS not set")
	}
	data, keys := corpus()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes, %d keys", len(data), keys)
}

// BenchmarkScanLongHex is the worst case of checking every window: 20 MB of
// hex in lines of 4,096 characters (a hex dump), where every byte starts a
// window whose checksum must be computed.
func BenchmarkScanLongHex(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	var buf bytes.Buffer
	for buf.Len() < 20<<20 {
		p := make([]byte, 2048)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		buf.WriteString(hex.EncodeToString(p))
		buf.WriteByte('\n')
	}
	data := buf.Bytes()
	var sc scan.Scanner
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if err := sc.Reader(bytes.NewReader(data), func(int, string) {}); err != nil {
			b.Fatal(err)
		}
	}
}
