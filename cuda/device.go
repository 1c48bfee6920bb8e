//go:build cuda

package cuda

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unsafe"

	"gorgonia.org/cu"
)

// devPtr is a device address.
type devPtr = cu.DevicePtr

// ptxFiles are the kernels, compiled to PTX by cuda/ptx.sh.
//
//go:embed ptx/*.ptx
var ptxFiles embed.FS

// Device is one NVIDIA GPU with a CUDA context and dfill's kernels loaded
// from the embedded PTX. Its methods may be called from any goroutine; the
// work of each call runs on one locked OS thread with the context current,
// one call at a time, on the context's default stream. Close releases it.
//
// A binary built with the cuda tag links against libcuda.so.1, and
// gorgonia.org/cu initialises the driver when the program starts: where
// the driver is missing the program does not start, and where cuInit
// fails (no GPU, or the driver stub) cu prints the error and exits. Open's
// errors are those of a driver that started.
type Device struct {
	info Info

	mu     sync.Mutex // guards everything below and the use of ctx
	dev    cu.Device
	ctx    cu.CUContext
	mods   []cu.Module
	fns    map[string]cu.Function
	live   int64 // bytes allocated and not freed
	closed bool
}

// Open creates a context on GPU ordinal and loads the kernels. It needs
// compute capability 8.0 (Ampere) or newer: the tensor-core kernels use
// mma.sync for bf16.
func Open(ordinal int) (*Device, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: counting GPUs: %w", err)
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("%w: GPU %d of %d", ErrNoDevice, ordinal, n)
	}
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return nil, fmt.Errorf("cuda: GPU %d: %w", ordinal, err)
	}
	info, err := deviceInfo(dev)
	if err != nil {
		return nil, fmt.Errorf("cuda: GPU %d: %w", ordinal, err)
	}
	if info.Major < 8 {
		return nil, fmt.Errorf("%w: GPU %d (%s) has compute capability %d.%d; dfill's kernels need 8.0 or newer",
			ErrUnsupported, ordinal, info.Name, info.Major, info.Minor)
	}
	d := &Device{info: info, dev: dev, fns: map[string]cu.Function{}}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	d.ctx, err = dev.MakeContext(cu.SchedAuto)
	if err != nil {
		return nil, fmt.Errorf("cuda: GPU %d: creating a context: %w", ordinal, err)
	}
	if err := d.load(); err != nil {
		d.ctx.Destroy()
		return nil, fmt.Errorf("cuda: GPU %d: %w", ordinal, err)
	}
	return d, nil
}

func deviceInfo(dev cu.Device) (Info, error) {
	var i Info
	var err error
	if i.Name, err = dev.Name(); err != nil {
		return i, err
	}
	if i.Memory, err = dev.TotalMem(); err != nil {
		return i, err
	}
	for _, a := range []struct {
		attr cu.DeviceAttribute
		dst  *int
	}{
		{cu.ComputeCapabilityMajor, &i.Major},
		{cu.ComputeCapabilityMinor, &i.Minor},
		{cu.MultiprocessorCount, &i.SMs},
		{cu.ClockRate, &i.ClockKHz},
		{cu.MemoryClockRate, &i.MemClockKHz},
		{cu.GlobalMemoryBusWidth, &i.BusWidthBits},
	} {
		if *a.dst, err = dev.Attribute(a.attr); err != nil {
			return i, err
		}
	}
	return i, nil
}

// load JIT-compiles every embedded PTX module for this GPU and looks up
// their kernels. The context is current on the calling thread.
func (d *Device) load() error {
	names, err := fs.Glob(ptxFiles, "ptx/*.ptx")
	if err != nil || len(names) == 0 {
		return fmt.Errorf("no embedded PTX (%v)", err)
	}
	sort.Strings(names)
	for _, name := range names {
		src, err := ptxFiles.ReadFile(name)
		if err != nil {
			return err
		}
		log := &cu.JITErrorLogBuffer{Buffer: make([]byte, 8192)}
		mod, err := cu.LoadDataEx(string(src), log)
		if err != nil {
			msg := strings.TrimRight(string(log.Buffer), "\x00")
			return fmt.Errorf("loading %s: %w: %s", name, err, msg)
		}
		d.mods = append(d.mods, mod)
		for _, fn := range kernelNames(src) {
			f, err := mod.Function(fn)
			if err != nil {
				return fmt.Errorf("%s: kernel %s: %w", name, fn, err)
			}
			d.fns[fn] = f
		}
	}
	return nil
}

// kernelNames lists the entry points of a PTX module.
func kernelNames(ptx []byte) []string {
	var names []string
	for _, line := range strings.Split(string(ptx), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), ".visible .entry ")
		if !ok {
			continue
		}
		if i := strings.IndexByte(rest, '('); i > 0 {
			names = append(names, rest[:i])
		}
	}
	return names
}

// Info describes the GPU.
func (d *Device) Info() Info { return d.info }

// Close unloads the kernels and destroys the context; device memory still
// allocated in it is released with it.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return fmt.Errorf("cuda: close: %w", err)
	}
	var errs []error
	for _, m := range d.mods {
		errs = append(errs, m.Unload())
	}
	errs = append(errs, d.ctx.Destroy())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cuda: close: %w", err)
	}
	return nil
}

// do runs fn with the context current on a locked OS thread, one call at a
// time. Everything that touches the GPU goes through it.
func (d *Device) do(fn func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return fmt.Errorf("cuda: making the context current: %w", err)
	}
	return fn()
}

// LiveBytes is how much device memory the Device's users hold: what the
// models, canvases and buffers allocated and have not yet released.
func (d *Device) LiveBytes() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.live
}

// alloc returns n bytes of device memory (n > 0). Context held.
func (d *Device) alloc(n int64) (buffer, error) {
	if n <= 0 {
		return buffer{}, fmt.Errorf("%w: allocating %d bytes", ErrBadInput, n)
	}
	p, err := cu.MemAlloc(n)
	if err != nil {
		return buffer{}, fmt.Errorf("cuda: allocating %d bytes: %w", n, err)
	}
	d.live += n
	return buffer{ptr: p, n: n}, nil
}

// free releases b and empties it, after the queued work that may use it.
// Context held.
func (d *Device) free(b *buffer) error {
	if b.n == 0 {
		return nil
	}
	if err := synchronize(); err != nil {
		return err
	}
	err := cu.MemFree(b.ptr)
	d.live -= b.n
	*b = buffer{}
	if err != nil {
		return fmt.Errorf("cuda: freeing device memory: %w", err)
	}
	return nil
}

// grow makes b hold at least n bytes, reallocating (without keeping the
// contents) when it is smaller. Context held.
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

// memcpyHtoD copies n bytes from host src to device dst, after the queued
// work. Context held.
func memcpyHtoD(dst devPtr, src unsafe.Pointer, n int64) error { return cu.MemcpyHtoD(dst, src, n) }

// memcpyDtoH copies n bytes from device src to host dst, after the queued
// work. Context held.
func memcpyDtoH(dst unsafe.Pointer, src devPtr, n int64) error { return cu.MemcpyDtoH(dst, src, n) }

// sync waits for the queued work and reports its errors. Context held.
func synchronize() error {
	if err := cu.Synchronize(); err != nil {
		return fmt.Errorf("cuda: synchronize: %w", err)
	}
	return nil
}

// launch queues kernel name on a grid of grid blocks of block threads with
// shared bytes of dynamic shared memory. Context held.
func (d *Device) launch(name string, grid, block [3]int, shared int, args ...arg) error {
	fn, ok := d.fns[name]
	if !ok {
		return fmt.Errorf("cuda: no kernel %s in the embedded PTX", name)
	}
	for _, g := range grid {
		if g <= 0 {
			return fmt.Errorf("cuda: launch %s: empty grid %v", name, grid)
		}
	}
	params := make([]unsafe.Pointer, len(args))
	for i := range args {
		params[i] = unsafe.Pointer(&args[i])
	}
	err := fn.Launch(grid[0], grid[1], grid[2], block[0], block[1], block[2], shared, cu.Stream{}, params)
	runtime.KeepAlive(args)
	if err != nil {
		return fmt.Errorf("cuda: launch %s: %w", name, err)
	}
	return nil
}
