// A host emulation of the CUDA that cuda/kernels/*.cu use, so that the
// cudaemu build of package cuda (emu.cc, device_emu.go) runs the very
// kernels, compiled by the host C++ compiler, on the CPU: the blocks of a
// launch one after another, the threads of a block as coroutines that
// switch at __syncthreads, at warp-level synchronisation (shuffles,
// __syncwarp) and at mma.sync, which is computed from the fragments of the
// warp's 32 lanes as PTX lays them out (m16n8k16: A row-major, B
// column-major; lane = 4·group + thread in group). It checks the kernels'
// indexing, synchronisation and arithmetic, not their speed or the
// hardware's rounding: the tensor-core products sum in double here.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <cmath>

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(n)
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
  unsigned x, y, z;
};
struct float4 {
  float x, y, z, w;
};
struct uint4 {
  uint32_t x, y, z, w;
};
struct __half {
  uint16_t x;
};
struct __nv_bfloat16 {
  uint16_t x;
};

namespace emu {
// The running coroutine's indices, and the launch's.
extern dim3 threadIdx, blockIdx, blockDim, gridDim;
// warpBarrier suspends the calling thread until every live lane of its
// warp has reached a warp barrier.
void warpBarrier();
// blockBarrier suspends it until every live thread of the block has.
void blockBarrier();
// exchange returns lane src's v: all lanes of the warp call it.
uint64_t exchange(uint64_t v, int src);
void mma16816(float *d, const uint32_t *a, const uint32_t *b, bool f16);
}  // namespace emu

#define threadIdx emu::threadIdx
#define blockIdx emu::blockIdx
#define blockDim emu::blockDim
#define gridDim emu::gridDim

inline void __syncthreads() { emu::blockBarrier(); }
inline void __syncwarp() { emu::warpBarrier(); }

template <typename T>
inline T __shfl_sync(unsigned, T v, int src) {
  uint64_t bits = 0;
  memcpy(&bits, &v, sizeof v);
  bits = emu::exchange(bits, src & 31);
  T out;
  memcpy(&out, &bits, sizeof out);
  return out;
}

template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int mask) {
  int lane = (threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) & 31;
  return __shfl_sync(0xffffffffu, v, lane ^ mask);
}

inline float __uint_as_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
inline uint32_t __float_as_uint(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

// The round-to-nearest arithmetic intrinsics: the host compiler contracts
// nothing under -std=c++17 (-ffp-contract=off) on x86-64 without -mfma.
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }

inline __half __ushort_as_half(uint16_t h) { return __half{h}; }
inline uint16_t __half_as_ushort(__half h) { return h.x; }
inline float __half2float(__half h) { return (float)__builtin_bit_cast(_Float16, h.x); }
inline __half __float2half_rn(float f) { return __half{__builtin_bit_cast(uint16_t, (_Float16)f)}; }

inline uint16_t __bfloat16_as_ushort(__nv_bfloat16 h) { return h.x; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t b = __float_as_uint(f);
  if ((b & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{(uint16_t)((b >> 16) | 64)};
  return __nv_bfloat16{(uint16_t)((b + 0x7fffu + ((b >> 16) & 1)) >> 16)};
}

using std::fmaf;
using std::fmaxf;
using std::max;
using std::min;
