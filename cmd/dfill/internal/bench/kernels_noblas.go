//go:build !blas

package bench

// blasAvailable reports whether this binary was built with OpenBLAS: build
// with -tags blas (and libopenblas-dev installed) to compare with it.
func blasAvailable() bool { return false }

func blasName() string { return "not built in (go build -tags blas)" }

func setBLASThreads(int) {}

func blasSgemm(out, x, w []float32, m, rows, cols int) {}
