// Row-wise kernels: RMSNorm, SwiGLU, the embedding lookup and softmax.
#include "common.cuh"

// rmsnorm writes out row r = x row idx[r] (r when idx is null) normalised
// by its root mean square and scaled by w, as engine/kernel.RMSNorm:
// out[i] = x[i]·(1/sqrt(mean(x²)+eps))·w[i], the sum of squares in double.
// One block per row. out may be x when idx is null.
extern "C" __global__ void rmsnorm(float *out, const float *x, const float *w, const int *idx,
                                   int rows, int dim, float eps) {
  __shared__ double scratch[32];
  int r = blockIdx.x;
  if (r >= rows) return;
  const float *xr = x + (size_t)(idx ? idx[r] : r) * dim;
  double ss = 0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += (double)xr[i] * (double)xr[i];
  ss = block_sum_d(ss, scratch);
  float mean = (float)(ss / (double)dim);
  float scale = 1.0f / (float)sqrt((double)(mean + eps));
  float *o = out + (size_t)r * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
}

// swiglu writes out[i] = silu(gate[i])·up[i], silu(g) = g/(1+e^−g), for
// n elements. out may be gate or up.
extern "C" __global__ void swiglu(float *out, const float *gate, const float *up, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    float g = gate[i];
    float s = __fdiv_rn(g, __fadd_rn(1.0f, expf(-g)));
    out[i] = __fmul_rn(s, up[i]);
  }
}

// embed writes row r of x (rows, dim) = row tokens[r] of the embedding
// matrix E (rowBytes bytes a row, type T) decoded to float32. dim is a
// multiple of 16. One block per row.
template <int T>
__device__ void embed(float *x, const uint8_t *E, long long rowBytes, const int *tokens, int rows,
                      int dim) {
  int r = blockIdx.x;
  if (r >= rows) return;
  const uint8_t *row = E + (size_t)tokens[r] * rowBytes;
  float *o = x + (size_t)r * dim;
  for (int k = 16 * threadIdx.x; k < dim; k += 16 * blockDim.x) {
    Group16 g;
    decode16<T>(row, k, g);
#pragma unroll
    for (int i = 0; i < 16; i++) o[k + i] = value16<T>(g, i);
  }
}

#define EMBED(NAME, T)                                                                          \
  extern "C" __global__ void NAME(float *x, const uint8_t *E, long long rowBytes, const int *tok, \
                                  int rows, int dim) {                                          \
    embed<T>(x, E, rowBytes, tok, rows, dim);                                                   \
  }
EMBED(embed_f32, T_F32)
EMBED(embed_f16, T_F16)
EMBED(embed_bf16, T_BF16)
EMBED(embed_q8_0, T_Q8_0)
EMBED(embed_q4_k, T_Q4_K)
EMBED(embed_q6_k, T_Q6_K)

// softmax replaces each of the rows of x (rows, n) with softmax(x/temp)
// as engine/kernel.Softmax computes it: e^(v−max)/Σ, the sum in double, the
// normaliser rounded to float32 once. One block per row.
extern "C" __global__ void softmax(float *x, int rows, int n, float invTemp) {
  __shared__ float fscratch[32];
  __shared__ double dscratch[32];
  int r = blockIdx.x;
  if (r >= rows) return;
  float *xr = x + (size_t)r * n;
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < n; i += blockDim.x) mx = fmaxf(mx, __fmul_rn(xr[i], invTemp));
  mx = block_max(mx, fscratch);
  if (mx == -INFINITY) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) xr[i] = 1.0f / (float)n;
    return;
  }
  double sum = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    float e = expf(__fsub_rn(__fmul_rn(xr[i], invTemp), mx));
    xr[i] = e;
    sum += (double)e;
  }
  sum = block_sum_d(sum, dscratch);
  float inv = (float)(1.0 / sum);
  for (int i = threadIdx.x; i < n; i += blockDim.x) xr[i] = __fmul_rn(xr[i], inv);
}
