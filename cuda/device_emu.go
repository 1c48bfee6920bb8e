//go:build cudaemu && !cuda

package cuda

// #cgo CXXFLAGS: -std=c++17 -O2 -Wno-unused-function
// #include <stdint.h>
// #include <stdlib.h>
// #include <string.h>
// int dfill_emu_launch(const char *name, int gx, int gy, int gz, int bx, int by, int bz,
//                      const uint64_t *args, int nargs);
import "C"

import (
	"embed"
	"fmt"
	"sync"
	"unsafe"
)

// kernelSources makes the kernels and the emulation header inputs of this
// build: the go command hashes a package's own files and what it embeds,
// not what its C++ files include, and would otherwise keep a stale emu.cc
// build after a kernel changes.
//
//go:embed kernels/*.cu kernels/*.cuh emu/*.h
var kernelSources embed.FS

// The cudaemu build (go test -tags cudaemu ./cuda) runs the kernels of
// kernels/*.cu on the CPU, compiled by the host C++ compiler with the
// emulation of emu/cuda_emu.h (emu.cc), behind this Device with the cuda
// build's methods: device memory is C memory, a launch runs its blocks one
// after another on the calling thread. It is for checking the kernels and
// the model's code on a machine without a GPU, slowly (a small model's
// forward takes seconds); nothing here runs in a product.

// devPtr is an address of emulated device memory (C memory).
type devPtr = uintptr

// Device is the emulated GPU. See the cuda build's Device.
type Device struct {
	info Info

	mu     sync.Mutex // guards everything below
	live   int64
	closed bool
}

// Open returns the emulated GPU; ordinal must be 0.
func Open(ordinal int) (*Device, error) {
	if ordinal != 0 {
		return nil, fmt.Errorf("%w: GPU %d of 1", ErrNoDevice, ordinal)
	}
	return &Device{info: Info{Name: "host emulation", Major: 8, Minor: 0, SMs: 4, ClockKHz: 1000,
		MemClockKHz: 1000, BusWidthBits: 64, Memory: 1 << 34}}, nil
}

// Info describes the emulated GPU: compute capability 8.0 and 4 SMs.
func (d *Device) Info() Info { return d.info }

// Close marks the device closed.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

func (d *Device) do(fn func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return fn()
}

// LiveBytes is how much emulated device memory is allocated.
func (d *Device) LiveBytes() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.live
}

func (d *Device) alloc(n int64) (buffer, error) {
	if n <= 0 {
		return buffer{}, fmt.Errorf("%w: allocating %d bytes", ErrBadInput, n)
	}
	p := C.malloc(C.size_t(n))
	if p == nil {
		return buffer{}, fmt.Errorf("cuda: allocating %d bytes: out of memory", n)
	}
	d.live += n
	return buffer{ptr: devPtr(p), n: n}, nil
}

func (d *Device) free(b *buffer) error {
	if b.n == 0 {
		return nil
	}
	C.free(cptr(b.ptr))
	d.live -= b.n
	*b = buffer{}
	return nil
}

func (d *Device) grow(b *buffer, n int64) error {
	if b.n >= n {
		return nil
	}
	if err := d.free(b); err != nil {
		return err
	}
	nb, err := d.alloc(n)
	if err != nil {
		return err
	}
	*b = nb
	return nil
}

// cptr is p as a pointer: C memory, which the Go collector neither moves
// nor frees, so the uintptr round trip is safe.
func cptr(p devPtr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

func memcpyHtoD(dst devPtr, src unsafe.Pointer, n int64) error {
	C.memcpy(cptr(dst), src, C.size_t(n))
	return nil
}

func memcpyDtoH(dst unsafe.Pointer, src devPtr, n int64) error {
	C.memcpy(dst, cptr(src), C.size_t(n))
	return nil
}

func synchronize() error { return nil }

func (d *Device) launch(name string, grid, block [3]int, shared int, args ...arg) error {
	for _, g := range grid {
		if g <= 0 {
			return fmt.Errorf("cuda: launch %s: empty grid %v", name, grid)
		}
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	cargs := (*C.uint64_t)(C.malloc(C.size_t(8 * max(len(args), 1))))
	defer C.free(unsafe.Pointer(cargs))
	copy(unsafe.Slice((*uint64)(unsafe.Pointer(cargs)), len(args)), unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(args))), len(args)))
	switch C.dfill_emu_launch(cname, C.int(grid[0]), C.int(grid[1]), C.int(grid[2]),
		C.int(block[0]), C.int(block[1]), C.int(block[2]), cargs, C.int(len(args))) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("cuda: launch %s: no such kernel with %d arguments", name, len(args))
	default:
		return fmt.Errorf("cuda: launch %s: the emulated threads deadlocked", name)
	}
}
