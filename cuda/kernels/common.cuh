// Shared pieces of dfill's CUDA kernels: the weight types as ggml numbers
// them, their decoders (bit for bit engine/kernel's pure-Go decoders), and
// block reductions. Every kernel is extern "C" so the Go side finds it by
// name; every pointer is device memory; shapes are row-major.
#pragma once

#ifdef DFILL_EMULATE
#include "../emu/cuda_emu.h"  // the host emulation of the tests (emu.cc)
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#endif

// gguf.Type values.
#define T_F32 0
#define T_F16 1
#define T_Q8_0 8
#define T_Q4_K 12
#define T_Q6_K 14
#define T_BF16 30

// Block geometry (ggml-common.h).
#define Q8_0_BYTES 34   // f16 d, int8 qs[32]
#define Q4_K_BYTES 144  // f16 d, f16 dmin, scales[12], qs[128]
#define Q6_K_BYTES 210  // ql[128], qh[64], int8 scales[16], f16 d

__device__ __forceinline__ uint16_t load_u16(const uint8_t *p) {
  return (uint16_t)p[0] | ((uint16_t)p[1] << 8);
}

__device__ __forceinline__ float f16_to_f32(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}

__device__ __forceinline__ float bf16_to_f32(uint16_t h) {
  return __uint_as_float((uint32_t)h << 16);
}

// scale_min_k4 is ggml's get_scale_min_k4: the 6-bit scale and min of
// sub-block j of a Q4_K block's 12 scale bytes.
__device__ __forceinline__ void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Group16 is 16 consecutive elements of a weight row as ggml defines them:
// element i is s·q[i] − c. For F32, F16 and BF16, q holds the values and
// s = 1, c = 0; for the quantized types q holds the small integers of the
// block (exact in bf16) and s, c the group's scale and min, so that a
// tensor-core product can multiply the integers exactly and apply s and c
// in float32 afterwards.
struct Group16 {
  float q[16];
  float s, c;
};

// decode16 decodes elements [k, k+16) of a weight row of type T starting at
// row (k a multiple of 16). A K-quant group never straddles a super-block,
// nor a Q8_0 group a block.
template <int T>
__device__ __forceinline__ void decode16(const uint8_t *row, int k, Group16 &g) {
  g.s = 1.0f;
  g.c = 0.0f;
  if constexpr (T == T_F32) {
    const float4 *p = reinterpret_cast<const float4 *>(row) + k / 4;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      float4 v = p[i];
      g.q[4 * i] = v.x;
      g.q[4 * i + 1] = v.y;
      g.q[4 * i + 2] = v.z;
      g.q[4 * i + 3] = v.w;
    }
  } else if constexpr (T == T_F16 || T == T_BF16) {
    const uint4 *p = reinterpret_cast<const uint4 *>(row) + k / 8;
#pragma unroll
    for (int i = 0; i < 2; i++) {
      uint4 v = p[i];
      uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int j = 0; j < 4; j++) {
        uint16_t lo = (uint16_t)(w[j] & 0xffff), hi = (uint16_t)(w[j] >> 16);
        g.q[8 * i + 2 * j] = T == T_F16 ? f16_to_f32(lo) : bf16_to_f32(lo);
        g.q[8 * i + 2 * j + 1] = T == T_F16 ? f16_to_f32(hi) : bf16_to_f32(hi);
      }
    }
  } else if constexpr (T == T_Q8_0) {
    // dequantize_row_q8_0: x = qs[j]·d.
    const uint8_t *b = row + (size_t)(k / 32) * Q8_0_BYTES;
    g.s = f16_to_f32(load_u16(b));
    const int8_t *qs = reinterpret_cast<const int8_t *>(b + 2) + (k & 31);
#pragma unroll
    for (int i = 0; i < 16; i++) g.q[i] = (float)qs[i];
  } else if constexpr (T == T_Q4_K) {
    // dequantize_row_q4_K: x = d·sc·q − dmin·m; the 32 low nibbles of
    // qs[32j:32j+32] hold sub-block 2j and the high nibbles 2j+1.
    const uint8_t *b = row + (size_t)(k / 256) * Q4_K_BYTES;
    int r = k & 255, j = r >> 6, hi = (r >> 5) & 1, l0 = r & 31;
    float d = f16_to_f32(load_u16(b)), dmin = f16_to_f32(load_u16(b + 2));
    int sc, m;
    scale_min_k4(2 * j + hi, b + 4, &sc, &m);
    g.s = __fmul_rn(d, (float)sc);
    g.c = __fmul_rn(dmin, (float)m);
    const uint8_t *qs = b + 16 + 32 * j + l0;
#pragma unroll
    for (int i = 0; i < 16; i++) g.q[i] = (float)(hi ? qs[i] >> 4 : qs[i] & 15);
  } else if constexpr (T == T_Q6_K) {
    // dequantize_row_q6_K: each half of 128 takes 64 bytes of ql, 32 of
    // qh and 8 scales; quarter qd of a half takes the low (qd < 2) or
    // high nibbles of ql[l + 32·(qd&1)] and bits 2qd..2qd+1 of qh[l];
    // x = d·sc·(q − 32).
    const uint8_t *b = row + (size_t)(k / 256) * Q6_K_BYTES;
    int r = k & 255, n = r >> 7, r2 = r & 127, qd = r2 >> 5, l0 = r2 & 31;
    const uint8_t *ql = b + 64 * n + 32 * (qd & 1);
    const uint8_t *qh = b + 128 + 32 * n;
    const int8_t *scales = reinterpret_cast<const int8_t *>(b + 192) + 8 * n;
    float d = f16_to_f32(load_u16(b + 208));
    g.s = __fmul_rn(d, (float)scales[l0 / 16 + 2 * qd]);
#pragma unroll
    for (int i = 0; i < 16; i++) {
      int l = l0 + i;
      int low = qd < 2 ? (ql[l] & 15) : (ql[l] >> 4);
      int h = (qh[l] >> (2 * qd)) & 3;
      g.q[i] = (float)((low | (h << 4)) - 32);
    }
  }
}

// value16 is element i of a decoded group as engine/kernel's decoders
// compute it, rounding each product as they do (no fused multiply-add).
template <int T>
__device__ __forceinline__ float value16(const Group16 &g, int i) {
  if constexpr (T == T_Q8_0 || T == T_Q6_K) {
    return __fmul_rn(g.s, g.q[i]);
  } else if constexpr (T == T_Q4_K) {
    return __fsub_rn(__fmul_rn(g.s, g.q[i]), g.c);
  } else {
    return g.q[i];
  }
}

// The sum of v over the warp, in a fixed order.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// block_sum_d returns the sum of v over the block (blockDim.x a multiple of
// 32, at most 1024) to every thread; scratch holds 32 doubles.
__device__ __forceinline__ double block_sum_d(double v, double *scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum_d(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.0;
  v = warp_sum_d(v);
  return v;
}

__device__ __forceinline__ float block_max(float v, float *scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  v = warp_max(v);
  return v;
}
