//go:build cuda || cudaemu

package cuda

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// These tests need an NVIDIA GPU of compute capability 8.0 or newer and its
// driver: cuda/check.sh runs them on a GPU machine from a test binary built
// beforehand (go test -c -tags cuda ./cuda). Each kernel is checked
// against engine/kernel's Go function or a float64 loop on random inputs
// (never zeros), inside guard values that catch writes out of bounds; the
// model against engine.Model on random GGUFs.

// dev is the GPU every test runs on.
var dev *Device

func TestMain(m *testing.M) {
	flag.Parse()
	var err error
	dev, err = Open(0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cuda tests:", err)
		os.Exit(1)
	}
	i := dev.Info()
	fmt.Printf("GPU %s, compute %d.%d, %d SMs at %d MHz, %.0f GB/s, %.0f GiB\n",
		i.Name, i.Major, i.Minor, i.SMs, i.ClockKHz/1000, i.Bandwidth()/1e9, float64(i.Memory)/(1<<30))
	code := m.Run()
	if live := dev.LiveBytes(); live != 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "cuda tests: %d bytes of device memory still allocated after the tests\n", live)
		code = 1
	}
	if err := dev.Close(); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, "cuda tests:", err)
		code = 1
	}
	os.Exit(code)
}

// on runs fn with the device's context current, failing t on an error.
func on(t testing.TB, fn func() error) {
	t.Helper()
	if err := dev.do(fn); err != nil {
		t.Fatal(err)
	}
}

// guard is how many guard values surround every device array of a test,
// and guardBits their bits (a NaN no kernel writes).
const (
	guard     = 64
	guardBits = 0x7fc0dead
)

// devArray is a device array of n elements of 4 bytes between guards.
type devArray struct {
	b buffer
	n int
}

// newArray puts vals (float32, int32 or uint32) on the GPU between guards.
// The test frees it at its end.
func newArray[T float32 | int32 | uint32](t testing.TB, vals []T) devArray {
	t.Helper()
	a := devArray{n: len(vals)}
	all := make([]uint32, len(vals)+2*guard)
	for i := range all {
		all[i] = guardBits
	}
	for i, v := range vals {
		switch v := any(v).(type) {
		case float32:
			all[guard+i] = math.Float32bits(v)
		case int32:
			all[guard+i] = uint32(v)
		case uint32:
			all[guard+i] = v
		}
	}
	on(t, func() error {
		var err error
		if a.b, err = dev.alloc(int64(4 * len(all))); err != nil {
			return err
		}
		return upload(a.b, 0, all)
	})
	t.Cleanup(func() { dev.do(func() error { return dev.free(&a.b) }) })
	return a
}

// newFloats is newArray of n floats of guard values: an output.
func newFloats(t testing.TB, n int) devArray {
	vals := make([]uint32, n)
	for i := range vals {
		vals[i] = guardBits
	}
	return newArray(t, vals)
}

// ptr is the address of element 0.
func (a devArray) ptr() devPtr { return a.b.at(4 * guard) }

// floats reads the array back, failing t if a guard value changed.
func (a devArray) floats(t testing.TB) []float32 {
	t.Helper()
	all := make([]uint32, a.n+2*guard)
	on(t, func() error { return download(all, a.b, 0) })
	for i := 0; i < guard; i++ {
		if all[i] != guardBits || all[guard+a.n+i] != guardBits {
			t.Fatalf("a kernel wrote outside its output of %d elements", a.n)
		}
	}
	out := make([]float32, a.n)
	for i := range out {
		out[i] = math.Float32frombits(all[guard+i])
	}
	return out
}

// randoms returns n normal values of standard deviation sigma, none zero.
func randoms(rng *rand.Rand, n int, sigma float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		for out[i] == 0 {
			out[i] = float32(sigma * rng.NormFloat64())
		}
	}
	return out
}

// maxRelErr returns max |got−want| / max |want|.
func maxRelErr(got []float32, want []float64) float64 {
	var e, scale float64
	for i, w := range want {
		e = max(e, math.Abs(float64(got[i])-w))
		scale = max(scale, math.Abs(w))
	}
	if scale == 0 {
		return math.Inf(1)
	}
	return e / scale
}

func widen64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}
