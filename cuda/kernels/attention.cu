// Bidirectional attention over a canvas.
#include "common.cuh"

#define ATT_WARPS 4
#define ATT_MAX_HD 256

// attention computes, for rows [0, rows) of a pass and each of the heads,
// softmax(q·Kᵀ/√hd)·V over all T positions of the canvas (no mask: every
// position sees every other), one warp per (row, head). Grouped-query: head
// h reads kv head h/(heads/kvHeads). q and out are (rows, heads·hd); Kc and
// Vc (kvHeads, T, hd) are the layer's cache, whose positions outside the
// pass hold the keys and values an earlier pass stored (the prefix/suffix
// cache). The softmax is online (a running maximum and sum), each lane
// scoring one key of a run of 32 and holding hd/32 dimensions of the
// output. hd is even and at most 256.
extern "C" __global__ void attention(float *out, const float *q, const float *Kc, const float *Vc,
                                     int rows, int heads, int kvHeads, int hd, int T, float scale) {
  __shared__ float qs[ATT_WARPS][ATT_MAX_HD];
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int task = blockIdx.x * ATT_WARPS + warp;
  if (task >= rows * heads) return;  // warp-uniform; no block barrier below
  int r = task / heads, h = task % heads, kvh = h / (heads / kvHeads);
  const float *qr = q + ((size_t)r * heads + h) * hd;
  for (int d = lane; d < hd; d += 32) qs[warp][d] = __fmul_rn(qr[d], scale);
  __syncwarp();
  const float *K = Kc + (size_t)kvh * T * hd, *V = Vc + (size_t)kvh * T * hd;
  float acc[ATT_MAX_HD / 32];
#pragma unroll
  for (int j = 0; j < ATT_MAX_HD / 32; j++) acc[j] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  for (int j0 = 0; j0 < T; j0 += 32) {
    int j = j0 + lane;
    float s = -INFINITY;
    if (j < T) {
      const float *kr = K + (size_t)j * hd;
      s = 0.0f;
      for (int d = 0; d < hd; d++) s = fmaf(qs[warp][d], kr[d], s);
    }
    float mnew = fmaxf(m, warp_max(s));
    float p = j < T ? expf(s - mnew) : 0.0f;
    float corr = expf(m - mnew);  // 0 at the first run, where m = −∞
    l = l * corr + warp_sum(p);
    m = mnew;
    int n = min(32, T - j0);
#pragma unroll
    for (int jj = 0; jj < ATT_MAX_HD / 32; jj++) acc[jj] *= corr;
    for (int t = 0; t < n; t++) {
      float pt = __shfl_sync(0xffffffffu, p, t);
      const float *vr = V + (size_t)(j0 + t) * hd;
#pragma unroll
      for (int jj = 0; jj < ATT_MAX_HD / 32; jj++) {
        int d = lane + 32 * jj;
        if (d < hd) acc[jj] = fmaf(pt, vr[d], acc[jj]);
      }
    }
  }
  float inv = 1.0f / l;
  float *o = out + ((size_t)r * heads + h) * hd;
#pragma unroll
  for (int jj = 0; jj < ATT_MAX_HD / 32; jj++) {
    int d = lane + 32 * jj;
    if (d < hd) o[d] = acc[jj] * inv;
  }
}
