// The samplers' statistics of logits rows, so that only the chosen tokens
// and their scores leave the GPU.
#include "common.cuh"

#define STAT_THREADS 256

// better orders logits as the engine's greedy scan does: larger first,
// the lower token id first among equals; id −1 is the empty slot.
__device__ __forceinline__ bool better(float v, int i, float w, int j) {
  if (i < 0) return false;
  if (j < 0) return true;
  return v > w || (v == w && i < j);
}

// Top2 holds the two best (value, id) pairs seen.
struct Top2 {
  float v1, v2;
  int i1, i2;
  __device__ void add(float v, int i) {
    if (better(v, i, v1, i1)) {
      v2 = v1;
      i2 = i1;
      v1 = v;
      i1 = i;
    } else if (better(v, i, v2, i2)) {
      v2 = v;
      i2 = i;
    }
  }
};

// row_stats computes, for each of the rows of logits (rows, vocab), what
// the engine's samplers read (engine.rowStats), skipping token mask and
// NaNs: the best and second-best token ids and logits, s = Σ e^(v−max) and
// e = Σ e^(v−max)·(v−max), the sums in double. out[6r:6r+6] = {best,
// second, bestLogit, secondLogit, s, e}; the best token's probability is
// 1/s, the second's e^(second−best)/s, the entropy log s − e/s. One block
// of STAT_THREADS per row; the reductions run in a fixed order.
extern "C" __global__ void __launch_bounds__(STAT_THREADS)
    row_stats(double *out, const float *logits, int rows, int vocab, int mask) {
  __shared__ float sv1[STAT_THREADS], sv2[STAT_THREADS];
  __shared__ int si1[STAT_THREADS], si2[STAT_THREADS];
  __shared__ double scratch[32];
  int r = blockIdx.x, tid = threadIdx.x;
  if (r >= rows) return;
  const float *x = logits + (size_t)r * vocab;

  Top2 top = {-INFINITY, -INFINITY, -1, -1};
  for (int i = tid; i < vocab; i += blockDim.x) {
    float v = x[i];
    if (i != mask && v == v) top.add(v, i);
  }
  sv1[tid] = top.v1;
  sv2[tid] = top.v2;
  si1[tid] = top.i1;
  si2[tid] = top.i2;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (tid < s) {
      Top2 a = {sv1[tid], sv2[tid], si1[tid], si2[tid]};
      a.add(sv1[tid + s], si1[tid + s]);
      a.add(sv2[tid + s], si2[tid + s]);
      sv1[tid] = a.v1;
      sv2[tid] = a.v2;
      si1[tid] = a.i1;
      si2[tid] = a.i2;
    }
    __syncthreads();
  }
  float mx = sv1[0];
  int best = si1[0], second = si2[0];

  double sum = 0, ent = 0;
  if (best >= 0) {
    for (int i = tid; i < vocab; i += blockDim.x) {
      float v = x[i];
      if (i == mask || v != v) continue;
      float d = v - mx;
      double e = (double)expf(d);
      sum += e;
      ent += e * (double)d;
    }
  }
  sum = block_sum_d(sum, scratch);
  ent = block_sum_d(ent, scratch);
  if (tid == 0) {
    double *o = out + 6 * (size_t)r;
    o[0] = best;
    o[1] = second;
    o[2] = mx;
    o[3] = sv2[0];
    o[4] = sum;
    o[5] = ent;
  }
}
