//go:build blas

// OpenBLAS for `dfill bench kernels`, through cgo: go build -tags blas
// (Debian: apt-get install libopenblas-dev). Two settings make the
// comparison fair, and must be in the environment before the process starts:
// OPENBLAS_CORETYPE=SkylakeX where OpenBLAS does not recognize a newer CPU
// and falls back to its Prescott (SSE3) kernels, and
// OPENBLAS_THREAD_TIMEOUT=4 so that its threads do not spin after a call
// while MatMul and the FMA peak are being timed.

package bench

// #cgo LDFLAGS: -lopenblas
// #include <cblas.h>
// void openblas_set_num_threads(int num_threads);
// char* openblas_get_config(void);
// char* openblas_get_corename(void);
import "C"

import "unsafe"

// blasAvailable reports whether this binary was built with OpenBLAS
// (-tags blas).
func blasAvailable() bool { return true }

// blasName names the BLAS the kernels are compared with.
func blasName() string {
	return "OpenBLAS " + C.GoString(C.openblas_get_config()) + " core " + C.GoString(C.openblas_get_corename())
}

// setBLASThreads makes OpenBLAS use n threads, as the kernels do.
func setBLASThreads(n int) { C.openblas_set_num_threads(C.int(n)) }

// blasSgemm computes out = x·wᵀ for x (m×cols) and w (rows×cols), both
// row-major, with cblas_sgemm: the product MatMul computes.
func blasSgemm(out, x, w []float32, m, rows, cols int) {
	C.cblas_sgemm(C.CblasRowMajor, C.CblasNoTrans, C.CblasTrans, C.blasint(m), C.blasint(rows), C.blasint(cols),
		1, (*C.float)(unsafe.Pointer(&x[0])), C.blasint(cols),
		(*C.float)(unsafe.Pointer(&w[0])), C.blasint(cols),
		0, (*C.float)(unsafe.Pointer(&out[0])), C.blasint(rows))
}
