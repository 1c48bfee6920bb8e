//go:build cuda || cudaemu

package cuda

import (
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// The errors of the package.
var (
	// ErrNoDevice is returned by Open when the driver reports no GPU with
	// the ordinal asked for.
	ErrNoDevice = errors.New("cuda: no such GPU")
	// ErrUnsupported is returned for a GPU, a weight type or a model
	// shape the kernels do not handle.
	ErrUnsupported = errors.New("cuda: unsupported")
	// ErrBadInput is returned for tokens, positions or passes that do not
	// fit the model or the canvas.
	ErrBadInput = errors.New("cuda: bad input")
	// ErrClosed is returned by the methods of a closed Device or Model.
	ErrClosed = errors.New("cuda: closed")
)

// Info describes a GPU, from the driver's device attributes.
type Info struct {
	Name         string
	Major, Minor int   // compute capability
	SMs          int   // multiprocessors
	ClockKHz     int   // the SMs' clock
	MemClockKHz  int   // the memory clock
	BusWidthBits int   // the memory bus width
	Memory       int64 // bytes of device memory
}

// Bandwidth is the memory bandwidth in bytes per second the attributes
// imply: two transfers per memory clock (DDR) over the bus.
func (i Info) Bandwidth() float64 {
	return 2 * float64(i.MemClockKHz) * 1e3 * float64(i.BusWidthBits) / 8
}

// TensorFLOPS is the dense bf16 tensor-core peak, in flops per second, that
// the timings assume: SMs × clock × flops per SM per clock, 4096 for sm_90
// (H100), 2048 for sm_80 (A100) and 1024 for the other sm_8x parts (their
// float32-accumulating rate). mma.sync reaches only part of it on sm_90,
// whose full rate needs wgmma.
func (i Info) TensorFLOPS() float64 {
	perClock := 1024.0
	switch {
	case i.Major >= 9:
		perClock = 4096
	case i.Major == 8 && i.Minor == 0:
		perClock = 2048
	}
	return float64(i.SMs) * float64(i.ClockKHz) * 1e3 * perClock
}

// buffer is n bytes of device memory. The zero buffer is empty.
type buffer struct {
	ptr devPtr
	n   int64
}

// at returns the device address off bytes into b.
func (b buffer) at(off int64) devPtr { return b.ptr + devPtr(off) }

// upload copies src to dst+off. Context held. The copy is synchronous on
// the default stream, after the work queued before it.
func upload[T any](dst buffer, off int64, src []T) error {
	if len(src) == 0 {
		return nil
	}
	n := int64(len(src)) * int64(unsafe.Sizeof(src[0]))
	if off < 0 || off+n > dst.n {
		return fmt.Errorf("%w: uploading %d bytes at %d into %d", ErrBadInput, n, off, dst.n)
	}
	if err := memcpyHtoD(dst.at(off), unsafe.Pointer(&src[0]), n); err != nil {
		return fmt.Errorf("cuda: copying %d bytes to the GPU: %w", n, err)
	}
	return nil
}

// download copies len(dst) elements from src+off. Context held. It waits
// for the work queued before it, and reports its errors.
func download[T any](dst []T, src buffer, off int64) error {
	if len(dst) == 0 {
		return nil
	}
	n := int64(len(dst)) * int64(unsafe.Sizeof(dst[0]))
	if off < 0 || off+n > src.n {
		return fmt.Errorf("%w: downloading %d bytes at %d from %d", ErrBadInput, n, off, src.n)
	}
	if err := memcpyDtoH(unsafe.Pointer(&dst[0]), src.at(off), n); err != nil {
		return fmt.Errorf("cuda: copying %d bytes from the GPU: %w", n, err)
	}
	return nil
}

// A kernel argument, as the driver reads it: each parameter from its own
// 8-byte slot (cu's Launch copies 8 bytes of each), a pointer filling it,
// an int or a float32 in its low 4 bytes.
type arg uint64

func ptrArg(p devPtr) arg  { return arg(p) }
func intArg(v int) arg     { return arg(uint32(int32(v))) }
func i64Arg(v int64) arg   { return arg(v) }
func f32Arg(v float32) arg { return arg(math.Float32bits(v)) }
