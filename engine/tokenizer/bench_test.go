package tokenizer

import (
	"sync"
	"testing"
)

var (
	benchOnce sync.Once
	benchSrc  string
	benchCfg  Config
)

// benchSetup returns ~1 MB of Go source and a 4096-token vocabulary
// trained (qwen2 split) on ~4 MB of other Go source.
func benchSetup(b *testing.B) (string, Config) {
	benchOnce.Do(func() {
		files := goSource(b, 5<<20)
		var train []string
		for i, f := range files {
			if len(benchSrc) < 1<<20 && i%5 == 0 {
				benchSrc += f
			} else {
				train = append(train, f)
			}
		}
		c, err := Train(seq(train...), 4096, "qwen2", DefaultSpecials())
		if err != nil {
			b.Fatal(err)
		}
		benchCfg = c
	})
	return benchSrc, benchCfg
}

// BenchmarkEncode encodes ~1 MB of Go source with a warm BPE cache.
func BenchmarkEncode(b *testing.B) {
	src, c := benchSetup(b)
	tk := mustNew(b, c)
	dst := tk.Encode(src)
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for b.Loop() {
		dst = tk.AppendEncode(dst[:0], src)
	}
	b.ReportMetric(float64(len(src))/float64(len(dst)), "bytes/token")
}

// BenchmarkEncodeCold encodes ~1 MB of Go source with a fresh tokenizer
// (empty BPE cache) each time.
func BenchmarkEncodeCold(b *testing.B) {
	src, c := benchSetup(b)
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for b.Loop() {
		tk := mustNew(b, c)
		tk.Encode(src)
	}
}

// BenchmarkNew builds a tokenizer from a 4096-token vocabulary.
func BenchmarkNew(b *testing.B) {
	_, c := benchSetup(b)
	b.ResetTimer()
	for b.Loop() {
		mustNew(b, c)
	}
}

// BenchmarkDecode decodes the tokens of ~1 MB of Go source.
func BenchmarkDecode(b *testing.B) {
	src, c := benchSetup(b)
	tk := mustNew(b, c)
	ids := tk.Encode(src)
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for b.Loop() {
		tk.Decode(ids)
	}
}

// BenchmarkTrain trains a 4096-token vocabulary on ~20 MB of Go source
// (run with -benchtime=1x).
func BenchmarkTrain(b *testing.B) {
	files := goSource(b, 20<<20)
	n := 0
	for _, f := range files {
		n += len(f)
	}
	b.SetBytes(int64(n))
	b.ResetTimer()
	var c Config
	for b.Loop() {
		var err error
		if c, err = Train(seq(files...), 4096, "qwen2", DefaultSpecials()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	tk := mustNew(b, c)
	in, out := 0, 0
	for _, f := range files[:min(len(files), 200)] {
		in += len(f)
		out += len(tk.EncodePlain(f))
	}
	b.ReportMetric(float64(len(c.Tokens)), "tokens")
	b.ReportMetric(float64(in)/float64(out), "bytes/token")
}
