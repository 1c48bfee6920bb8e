//go:build cudaemu && !cuda

// The kernels of cuda/kernels, compiled for the host with the emulation of
// emu/cuda_emu.h, and the scheduler that runs a launch's threads as
// coroutines (ucontext) on the calling thread. See device_emu.go.
#define DFILL_EMULATE 1
#include "emu/cuda_emu.h"

#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kernels/attention.cu"
#include "kernels/matmul.cu"
#include "kernels/rope.cu"
#include "kernels/rows.cu"
#include "kernels/sample.cu"

#undef threadIdx
#undef blockIdx
#undef blockDim
#undef gridDim

namespace emu {

dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace {

enum State { runnable, atWarp, atBlock, done };

struct Thread {
  ucontext_t ctx;
  State state;
  dim3 idx;
};

const size_t stackBytes = 256 << 10;
ucontext_t scheduler;
std::vector<Thread> threads;
std::vector<std::vector<char>> stacks;
Thread *current;
std::function<void()> body;  // the kernel with its arguments
// Per warp, per lane: the values of a shuffle and of an mma's fragments.
std::vector<uint64_t> slots;
std::vector<uint32_t> frags;
std::vector<float> accs;
const char *failure;

int linear(dim3 t) { return t.x + blockDim.x * (t.y + blockDim.y * t.z); }

void suspend(State s) {
  current->state = s;
  swapcontext(&current->ctx, &scheduler);
}

void entry() {
  body();
  current->state = done;
  swapcontext(&current->ctx, &scheduler);
}

// runBlock runs every thread of the current block to its end.
void runBlock() {
  int n = blockDim.x * blockDim.y * blockDim.z;
  threads.assign(n, Thread{});
  if ((int)stacks.size() < n) stacks.resize(n);
  for (int i = 0; i < n; i++) {
    Thread &t = threads[i];
    t.idx = dim3{(unsigned)(i % blockDim.x), (unsigned)(i / blockDim.x % blockDim.y),
                 (unsigned)(i / (blockDim.x * blockDim.y))};
    t.state = runnable;
    stacks[i].resize(stackBytes);
    getcontext(&t.ctx);
    t.ctx.uc_stack.ss_sp = stacks[i].data();
    t.ctx.uc_stack.ss_size = stackBytes;
    t.ctx.uc_link = nullptr;
    makecontext(&t.ctx, entry, 0);
  }
  int warps = (n + 31) / 32;
  for (;;) {
    for (int i = 0; i < n; i++) {
      if (threads[i].state != runnable) continue;
      current = &threads[i];
      threadIdx = current->idx;
      swapcontext(&scheduler, &current->ctx);
    }
    bool released = false, allDone = true;
    for (int w = 0; w < warps; w++) {
      bool any = false, all = true;
      for (int i = 32 * w; i < std::min(n, 32 * w + 32); i++) {
        State s = threads[i].state;
        if (s == done) continue;
        any = true;
        all = all && s == atWarp;
      }
      if (any && all) {
        for (int i = 32 * w; i < std::min(n, 32 * w + 32); i++)
          if (threads[i].state == atWarp) threads[i].state = runnable;
        released = true;
      }
    }
    if (released) continue;
    bool block = true;
    for (int i = 0; i < n; i++) {
      State s = threads[i].state;
      allDone = allDone && s == done;
      block = block && (s == done || s == atBlock);
    }
    if (allDone) return;
    if (!block) {
      failure = "deadlock: threads wait at different barriers";
      return;
    }
    for (int i = 0; i < n; i++)
      if (threads[i].state == atBlock) threads[i].state = runnable;
  }
}

int lane() { return linear(threadIdx) & 31; }
int warp() { return linear(threadIdx) >> 5; }

float half(uint32_t reg, int hi, bool f16) {
  uint16_t h = hi ? reg >> 16 : reg & 0xffff;
  return f16 ? __half2float(__half{h}) : __uint_as_float((uint32_t)h << 16);
}

}  // namespace

void warpBarrier() { suspend(atWarp); }
void blockBarrier() { suspend(atBlock); }

uint64_t exchange(uint64_t v, int src) {
  uint64_t *s = &slots[32 * warp()];
  s[lane()] = v;
  warpBarrier();
  uint64_t out = s[src];
  warpBarrier();
  return out;
}

// mma16816 is mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}: each lane
// holds A rows g, g+8 and columns 2t, 2t+1, 2t+8, 2t+9 (registers a0: (g,
// 2t..), a1: (g+8, 2t..), a2: (g, 2t+8..), a3: (g+8, 2t+8..)), B rows 2t,
// 2t+1 (b0) and 2t+8, 2t+9 (b1) of column g, and D rows g (d0, d1) and g+8
// (d2, d3) of columns 2t, 2t+1; g = lane/4, t = lane%4, the lower column
// of a pair in a register's low half.
void mma16816(float *d, const uint32_t *a, const uint32_t *b, bool f16) {
  int L = lane(), W = warp();
  uint32_t *fr = &frags[W * 32 * 6];
  for (int i = 0; i < 4; i++) fr[6 * L + i] = a[i];
  fr[6 * L + 4] = b[0];
  fr[6 * L + 5] = b[1];
  warpBarrier();
  auto A = [&](int r, int k) {
    int src = 4 * (r % 8) + (k % 8) / 2;
    int reg = (r < 8 ? 0 : 1) + (k < 8 ? 0 : 2);
    return (double)half(fr[6 * src + reg], k % 2, f16);
  };
  auto B = [&](int k, int n) {
    int src = 4 * n + (k % 8) / 2;
    return (double)half(fr[6 * src + 4 + (k < 8 ? 0 : 1)], k % 2, f16);
  };
  int g = L / 4, t = L % 4;
  float out[4];
  for (int e = 0; e < 4; e++) {
    int r = g + 8 * (e >> 1), n = 2 * t + (e & 1);
    double s = d[e];
    for (int k = 0; k < 16; k++) s += A(r, k) * B(k, n);
    out[e] = (float)s;
  }
  warpBarrier();
  for (int e = 0; e < 4; e++) d[e] = out[e];
}

}  // namespace emu

namespace {

template <typename T>
T fromArg(uint64_t v) {
  if constexpr (std::is_pointer_v<T>) {
    return reinterpret_cast<T>((uintptr_t)v);
  } else if constexpr (std::is_same_v<T, float>) {
    return __uint_as_float((uint32_t)v);
  } else if constexpr (std::is_same_v<T, long long>) {
    return (long long)v;
  } else {
    static_assert(std::is_same_v<T, int>);
    return (int)(uint32_t)v;
  }
}

template <typename... A, size_t... I>
void callWith(void (*f)(A...), const uint64_t *args, std::index_sequence<I...>) {
  f(fromArg<A>(args[I])...);
}

struct Kernel {
  std::function<void(const uint64_t *)> call;
  int nargs;
};

template <typename... A>
Kernel kernel(void (*f)(A...)) {
  return Kernel{[f](const uint64_t *args) { callWith(f, args, std::index_sequence_for<A...>{}); },
                (int)sizeof...(A)};
}

const std::map<std::string, Kernel> &kernels() {
  static const std::map<std::string, Kernel> k = {
#define K(name) {#name, kernel(name)}
      K(rmsnorm),        K(swiglu),        K(softmax),        K(embed_f32),      K(embed_f16),
      K(embed_bf16),     K(embed_q8_0),    K(embed_q4_k),     K(embed_q6_k),     K(rope_store),
      K(attention),      K(row_stats),     K(splitk_reduce),  K(gemm_tc_f16),    K(gemm_tc_bf16),
      K(gemm_tc_q8_0),   K(gemm_tc_q4_k),  K(gemm_tc_q6_k),   K(gemm_simt_f32),  K(gemm_simt_f16),
      K(gemm_simt_bf16), K(gemm_simt_q8_0), K(gemm_simt_q4_k), K(gemm_simt_q6_k),
#undef K
  };
  return k;
}

}  // namespace

// dfill_emu_launch runs kernel name over the grid and returns 0, or 1 for
// an unknown kernel or a wrong argument count, 2 for a deadlock.
extern "C" int dfill_emu_launch(const char *name, int gx, int gy, int gz, int bx, int by, int bz,
                                const uint64_t *args, int nargs) {
  auto it = kernels().find(name);
  if (it == kernels().end() || it->second.nargs != nargs) return 1;
  const Kernel &k = it->second;
  emu::gridDim = dim3{(unsigned)gx, (unsigned)gy, (unsigned)gz};
  emu::blockDim = dim3{(unsigned)bx, (unsigned)by, (unsigned)bz};
  int n = bx * by * bz, warps = (n + 31) / 32;
  emu::slots.assign(32 * warps, 0);
  emu::frags.assign(32 * 6 * warps, 0);
  emu::failure = nullptr;
  emu::body = [&]() { k.call(args); };
  for (int z = 0; z < gz; z++)
    for (int y = 0; y < gy; y++)
      for (int x = 0; x < gx; x++) {
        emu::blockIdx = dim3{(unsigned)x, (unsigned)y, (unsigned)z};
        emu::runBlock();
        if (emu::failure) return 2;
      }
  return 0;
}
