// Matrix products Y = X·Wᵀ of float32 activations X (M, K) and a weight W
// of N rows of K elements as GGUF stores it (F32, F16, BF16, Q8_0, Q4_K,
// Q6_K, rowBytes bytes a row): Y[m][n] = Σ_k X[m][k]·W[n][k].
//
// Each kernel computes a 64×64 tile of Y over the K range
// [z·kChunk, (z+1)·kChunk) of its grid's z index. With one z it writes Y
// itself: Y = (accumulate ? Y : 0) + XWᵀ + bias (bias may be null: the
// residual add and the q/k/v biases ride on the product). With several
// (split-K, for products whose tiles alone cannot fill the GPU) each z
// writes its partial sums to P (z, M, N) and splitk_reduce adds them in z
// order, so the result does not depend on scheduling. K is a multiple of
// 32; M and N are any.
#include "common.cuh"

#define BM 64
#define BN 64
#define BK 32
#define LDS (BK + 8)  // shared row stride in halves: conflict-free fragment loads

// mma16816 is D += A·B for one m16n8k16 tile (A row-major 16×16, B
// column-major 16×8, float32 accumulators), bf16 or f16 inputs.
template <bool F16>
__device__ __forceinline__ void mma16816(float *d, const uint32_t *a, const uint32_t *b) {
#ifdef DFILL_EMULATE
  emu::mma16816(d, a, b, F16);
#else
  if constexpr (F16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
#endif
}

template <bool F16>
__device__ __forceinline__ uint16_t to_half(float x) {
  if constexpr (F16) {
    return __half_as_ushort(__float2half_rn(x));
  } else {
    return __bfloat16_as_ushort(__float2bfloat16_rn(x));
  }
}

template <bool F16>
__device__ __forceinline__ float from_half(uint16_t h) {
  if constexpr (F16) {
    return f16_to_f32(h);
  } else {
    return bf16_to_f32(h);
  }
}

__device__ __forceinline__ uint32_t lds32(const uint16_t *p) {
  return *reinterpret_cast<const uint32_t *>(p);
}

// store_tile writes one element of Y, or of the split-K partials.
__device__ __forceinline__ void store_tile(float *Y, float *P, int M, int N, int m, int n, float v,
                                           const float *bias, int accumulate) {
  if (m >= M || n >= N) return;
  if (gridDim.z > 1) {
    P[((size_t)blockIdx.z * M + m) * N + n] = v;
    return;
  }
  if (bias) v = __fadd_rn(v, bias[n]);
  size_t at = (size_t)m * N + n;
  if (accumulate) v = __fadd_rn(Y[at], v);
  Y[at] = v;
}

// gemm_tc is the tensor-core product (sm_80+), 128 threads: four warps of
// 32×32 outputs each. The activations are split into a high and a low half
// (x ≈ hi + lo, 16 bits of mantissa together) so that rounding them to
// 16-bit inputs costs almost nothing; each product is two mma.sync. BF16
// weights multiply as they are, F16 weights with f16 inputs (activations
// above 65504 would overflow, as in any f16 product). A quantized weight's
// small integers are exact in bf16: the tile holds them, and each 16-wide
// group's product is scaled by its s and less c·Σx in float32.
template <int T>
__device__ __forceinline__ void gemm_tc(float *Y, const float *X, const uint8_t *W, int M, int N,
                                        int K, long long rowBytes, const float *bias,
                                        int accumulate, float *P, int kChunk) {
  constexpr bool F16 = T == T_F16;
  constexpr bool QUANT = T == T_Q8_0 || T == T_Q4_K || T == T_Q6_K;
  __shared__ __align__(16) uint16_t Ahi[BM][LDS];
  __shared__ __align__(16) uint16_t Alo[BM][LDS];
  __shared__ __align__(16) uint16_t Bs[BN][LDS];
  __shared__ float Ssc[BN][2], Smn[BN][2], Sx[BM][2];

  int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  int g = lane >> 2, t = lane & 3;
  int wm = warp >> 1, wn = warp & 1;
  int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  int kBegin = blockIdx.z * kChunk, kEnd = min(K, kBegin + kChunk);
  int lr = tid >> 1, lh = tid & 1;  // the tile row and 16-wide half this thread loads

  float acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;

  for (int kt = kBegin; kt < kEnd; kt += BK) {
    {  // Activations: 16 of row m0+lr, split into hi and lo.
      int m = m0 + lr;
      float xs[16];
      if (m < M) {
        const float4 *p = reinterpret_cast<const float4 *>(X + (size_t)m * K + kt + 16 * lh);
#pragma unroll
        for (int i = 0; i < 4; i++) {
          float4 v = p[i];
          xs[4 * i] = v.x;
          xs[4 * i + 1] = v.y;
          xs[4 * i + 2] = v.z;
          xs[4 * i + 3] = v.w;
        }
      } else {
#pragma unroll
        for (int i = 0; i < 16; i++) xs[i] = 0.0f;
      }
      float sum = 0.0f;
#pragma unroll
      for (int i = 0; i < 16; i++) {
        uint16_t hi = to_half<F16>(xs[i]);
        Ahi[lr][16 * lh + i] = hi;
        Alo[lr][16 * lh + i] = to_half<F16>(xs[i] - from_half<F16>(hi));
        sum += xs[i];
      }
      Sx[lr][lh] = sum;
    }
    {  // Weights: 16 of row n0+lr.
      int n = n0 + lr;
      Group16 gr;
      if (n < N) {
        decode16<T>(W + (size_t)n * rowBytes, kt + 16 * lh, gr);
      } else {
#pragma unroll
        for (int i = 0; i < 16; i++) gr.q[i] = 0.0f;
        gr.s = 0.0f;
        gr.c = 0.0f;
      }
#pragma unroll
      for (int i = 0; i < 16; i++) Bs[lr][16 * lh + i] = to_half<F16>(gr.q[i]);
      Ssc[lr][lh] = gr.s;
      Smn[lr][lh] = gr.c;
    }
    __syncthreads();

#pragma unroll
    for (int ks = 0; ks < 2; ks++) {
      int kk = 16 * ks;
      uint32_t ah[2][4], al[2][4], b[4][2];
#pragma unroll
      for (int mi = 0; mi < 2; mi++) {
        int r = wm * 32 + mi * 16 + g;
        ah[mi][0] = lds32(&Ahi[r][kk + 2 * t]);
        ah[mi][1] = lds32(&Ahi[r + 8][kk + 2 * t]);
        ah[mi][2] = lds32(&Ahi[r][kk + 8 + 2 * t]);
        ah[mi][3] = lds32(&Ahi[r + 8][kk + 8 + 2 * t]);
        al[mi][0] = lds32(&Alo[r][kk + 2 * t]);
        al[mi][1] = lds32(&Alo[r + 8][kk + 2 * t]);
        al[mi][2] = lds32(&Alo[r][kk + 8 + 2 * t]);
        al[mi][3] = lds32(&Alo[r + 8][kk + 8 + 2 * t]);
      }
#pragma unroll
      for (int nj = 0; nj < 4; nj++) {
        int c = wn * 32 + nj * 8 + g;
        b[nj][0] = lds32(&Bs[c][kk + 2 * t]);
        b[nj][1] = lds32(&Bs[c][kk + 8 + 2 * t]);
      }
#pragma unroll
      for (int mi = 0; mi < 2; mi++) {
#pragma unroll
        for (int nj = 0; nj < 4; nj++) {
          if constexpr (QUANT) {
            float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            mma16816<false>(tmp, ah[mi], b[nj]);
            mma16816<false>(tmp, al[mi], b[nj]);
#pragma unroll
            for (int e = 0; e < 4; e++) {
              int rr = wm * 32 + mi * 16 + g + 8 * (e >> 1);
              int cc = wn * 32 + nj * 8 + 2 * t + (e & 1);
              float v = fmaf(Ssc[cc][ks], tmp[e], acc[mi][nj][e]);
              if constexpr (T == T_Q4_K) v = fmaf(-Smn[cc][ks], Sx[rr][ks], v);
              acc[mi][nj][e] = v;
            }
          } else {
            mma16816<F16>(acc[mi][nj], ah[mi], b[nj]);
            mma16816<F16>(acc[mi][nj], al[mi], b[nj]);
          }
        }
      }
    }
    __syncthreads();
  }

#pragma unroll
  for (int mi = 0; mi < 2; mi++)
#pragma unroll
    for (int nj = 0; nj < 4; nj++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int m = m0 + wm * 32 + mi * 16 + g + 8 * (e >> 1);
        int n = n0 + wn * 32 + nj * 8 + 2 * t + (e & 1);
        store_tile(Y, P, M, N, m, n, acc[mi][nj][e], bias, accumulate);
      }
}

// gemm_simt is the plain float32 product, 256 threads of 4×4 outputs each:
// the weight is decoded to its float32 values (as engine/kernel decodes
// it) and multiplied with fused multiply-adds. It serves F32 weights, and
// checks the tensor-core kernels.
template <int T>
__device__ __forceinline__ void gemm_simt(float *Y, const float *X, const uint8_t *W, int M, int N,
                                          int K, long long rowBytes, const float *bias,
                                          int accumulate, float *P, int kChunk) {
  __shared__ float Xs[BK][BM + 4];
  __shared__ float Ws[BK][BN + 4];
  int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  int kBegin = blockIdx.z * kChunk, kEnd = min(K, kBegin + kChunk);
  int lr = (tid & 127) >> 1, lh = tid & 1;

  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;

  for (int kt = kBegin; kt < kEnd; kt += BK) {
    if (tid < 128) {
      int n = n0 + lr;
      if (n < N) {
        Group16 gr;
        decode16<T>(W + (size_t)n * rowBytes, kt + 16 * lh, gr);
#pragma unroll
        for (int i = 0; i < 16; i++) Ws[16 * lh + i][lr] = value16<T>(gr, i);
      } else {
#pragma unroll
        for (int i = 0; i < 16; i++) Ws[16 * lh + i][lr] = 0.0f;
      }
    } else {
      int m = m0 + lr;
#pragma unroll
      for (int i = 0; i < 16; i++) Xs[16 * lh + i][lr] = m < M ? X[(size_t)m * K + kt + 16 * lh + i] : 0.0f;
    }
    __syncthreads();
#pragma unroll 8
    for (int k = 0; k < BK; k++) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = Xs[k][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; j++) b[j] = Ws[k][tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
      store_tile(Y, P, M, N, m0 + ty * 4 + i, n0 + tx * 4 + j, acc[i][j], bias, accumulate);
}

#define GEMM(NAME, IMPL, T, THREADS)                                                              \
  extern "C" __global__ void __launch_bounds__(THREADS)                                          \
      NAME(float *Y, const float *X, const uint8_t *W, int M, int N, int K, long long rowBytes,   \
           const float *bias, int accumulate, float *P, int kChunk) {                            \
    IMPL<T>(Y, X, W, M, N, K, rowBytes, bias, accumulate, P, kChunk);                             \
  }
GEMM(gemm_tc_f16, gemm_tc, T_F16, 128)
GEMM(gemm_tc_bf16, gemm_tc, T_BF16, 128)
GEMM(gemm_tc_q8_0, gemm_tc, T_Q8_0, 128)
GEMM(gemm_tc_q4_k, gemm_tc, T_Q4_K, 128)
GEMM(gemm_tc_q6_k, gemm_tc, T_Q6_K, 128)
GEMM(gemm_simt_f32, gemm_simt, T_F32, 256)
GEMM(gemm_simt_f16, gemm_simt, T_F16, 256)
GEMM(gemm_simt_bf16, gemm_simt, T_BF16, 256)
GEMM(gemm_simt_q8_0, gemm_simt, T_Q8_0, 256)
GEMM(gemm_simt_q4_k, gemm_simt, T_Q4_K, 256)
GEMM(gemm_simt_q6_k, gemm_simt, T_Q6_K, 256)

// splitk_reduce finishes a split-K product: Y = (accumulate ? Y : 0) +
// Σ_z P[z] + bias, the partials added in z order. MN = M·N.
extern "C" __global__ void splitk_reduce(float *Y, const float *P, int splits, long long MN, int N,
                                         const float *bias, int accumulate) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < MN;
       i += (long long)gridDim.x * blockDim.x) {
    float v = 0.0f;
    for (int z = 0; z < splits; z++) v = __fadd_rn(v, P[z * MN + i]);
    if (bias) v = __fadd_rn(v, bias[i % N]);
    if (accumulate) v = __fadd_rn(Y[i], v);
    Y[i] = v;
  }
}
