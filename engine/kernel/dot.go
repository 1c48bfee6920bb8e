package kernel

// The inner loops of Dot, Axpy and MatMul. They are variables so that an
// assembly implementation can replace them at init; a replacement must give
// results that do not depend on which goroutine calls it.
var (
	dotF32  = dotF32Generic
	axpyF32 = axpyF32Generic
)

// Dot returns Σ a[i]·b[i]. a and b must have the same length; Dot panics
// otherwise, as indexing out of range would.
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic("kernel: Dot of slices of different lengths")
	}
	return dotF32(a, b)
}

// Axpy adds alpha·x to y element by element: y[i] += alpha·x[i]. x and y must
// have the same length; Axpy panics otherwise.
func Axpy(alpha float32, x, y []float32) {
	if len(x) != len(y) {
		panic("kernel: Axpy of slices of different lengths")
	}
	axpyF32(alpha, x, y)
}

// dotF32Generic sums in four interleaved lanes (element i goes to lane i%4,
// the tail to lane 0) and adds the lanes as (s0+s1)+(s2+s3). The order is
// fixed by len(a) alone, so a dot product gives the same bits wherever it
// runs.
func dotF32Generic(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		aa := a[i : i+4 : i+4]
		bb := b[i : i+4 : i+4]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func axpyF32Generic(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}
