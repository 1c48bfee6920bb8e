// Rotary position embeddings and the key/value cache.
#include "common.cuh"

// rotate turns the pair (a, b) by the angle whose cosine and sine are c and
// s, each product rounded as engine/kernel's Go loops round it.
__device__ __forceinline__ void rotate(float *a, float *b, float c, float s) {
  float x0 = *a, x1 = *b;
  *a = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
  *b = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
}

// rope_store finishes rows [0, rows) of a pass, canvas positions pos0,
// pos0+1, …: it rotates each head of q (rows, heads·hd) and k (rows,
// kvHeads·hd) in place by the angles of the row's position, then stores
// the row's keys and values in the layer's cache, Kc and Vc (kvHeads, T,
// hd) each. cosT and sinT (positions, hd/2) hold cos θ and sin θ for
// θ_i = pos·base^(−2i/hd), computed as engine/kernel.NewRoPE does. neox
// pairs dimension i with i+hd/2 (dream), otherwise 2i with 2i+1 (llada).
// One block per row.
extern "C" __global__ void rope_store(float *q, float *k, const float *v, float *Kc, float *Vc,
                                      const float *cosT, const float *sinT, int rows, int pos0,
                                      int heads, int kvHeads, int hd, int T, int neox) {
  int r = blockIdx.x;
  if (r >= rows) return;
  int pos = pos0 + r, half = hd / 2;
  const float *cs = cosT + (size_t)pos * half, *sn = sinT + (size_t)pos * half;
  float *qr = q + (size_t)r * heads * hd;
  float *kr = k + (size_t)r * kvHeads * hd;
  int pairs = (heads + kvHeads) * half;
  for (int p = threadIdx.x; p < pairs; p += blockDim.x) {
    int h = p / half, i = p % half;
    float *x = h < heads ? qr + h * hd : kr + (h - heads) * hd;
    if (neox) {
      rotate(x + i, x + i + half, cs[i], sn[i]);
    } else {
      rotate(x + 2 * i, x + 2 * i + 1, cs[i], sn[i]);
    }
  }
  __syncthreads();
  const float *vr = v + (size_t)r * kvHeads * hd;
  for (int e = threadIdx.x; e < kvHeads * hd; e += blockDim.x) {
    int h = e / hd, d = e % hd;
    size_t at = ((size_t)h * T + pos) * hd + d;
    Kc[at] = kr[e];
    Vc[at] = vr[e];
  }
}
