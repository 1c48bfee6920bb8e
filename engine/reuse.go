package engine

import "sync"

// keepBuffers is how many workspaces and how many cache buffers a Model
// keeps for reuse between calls. A call takes one workspace and a cache
// buffer per span: cmd/dfill denoises up to three lengths in one call (its
// spanLengths), so the caches of one call and one more are kept; a call
// that overlaps another allocates some of its own.
const keepBuffers = 4

// freeList keeps up to keepBuffers values for reuse. Unlike a sync.Pool it
// is not emptied by the garbage collector: the buffers of a forward pass
// are megabytes that would otherwise be allocated, zeroed and page-faulted
// in again for nearly every completion, which on a small model costs as
// much as a layer.
type freeList[T any] struct {
	mu    sync.Mutex
	items []T
}

// get returns a kept value, or ok false when there is none.
func (f *freeList[T]) get() (v T, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.items) == 0 {
		return v, false
	}
	v = f.items[len(f.items)-1]
	f.items = f.items[:len(f.items)-1]
	return v, true
}

// put keeps v unless keepBuffers are kept already.
func (f *freeList[T]) put(v T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.items) < keepBuffers {
		f.items = append(f.items, v)
	}
}

// workspace returns a kept workspace, or a new one; put it back in
// m.workspaces when done.
func (m *Model) workspace() *workspace {
	if ws, ok := m.workspaces.get(); ok {
		return ws
	}
	return &workspace{}
}
