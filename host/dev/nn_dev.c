/* nn_dev.c: ensemble MLPs, Adam and Polyak on a dx context (nn_dev.h), over the element ops of
 * kernels/nn_k.h and dx_gemm. The order of operations follows host/cpu/nn.c. */
#include "nn_dev.h"

#include <stdlib.h>

#include "log.h"
#include "nn_k.h"

DX_OP(nnk_bias_act, nnk_bias_act_args)
DX_OP(nnk_act_back, nnk_act_back_args)
DX_OP(nnk_colsum, nnk_colsum_args)
DX_OP(nnk_act_back_colsum, nnk_act_back_colsum_args)
DX_OP(nnk_sum_members, nnk_sum_members_args)
DX_OP(nnk_adam_tick, nnk_adam_tick_args)
DX_OP(nnk_adam, nnk_adam_args)
DX_OP(nnk_polyak, nnk_polyak_args)
DX_OP(nnk_concat, nnk_concat_args)
DX_OP(nnk_fill, nnk_fill_args)
DX_OP(nnk_ctr_add, nnk_ctr_add_args)
DX_OP(nnk_rng, nnk_rng_args)

static int max_hidden(const nn_mlp* net) {
  int m = 1;
  for (int l = 1; l < net->nlayers; l++)
    if (net->dims[l] > m) m = net->dims[l];
  return m;
}

/* A cache's header: P runs of up to Bmax rows, no buffers yet. */
static nnd_cache* cache_new(const nn_mlp* net, int P, int Bmax) {
  if (Bmax < 1 || P < 1) mbpo_fatal("nnd_cache_alloc: Bmax %d, P %d", Bmax, P);
  nnd_cache* k = calloc(1, sizeof *k);
  if (!k) mbpo_fatal("out of memory");
  k->P = k->Pmax = P;
  k->Bmax = Bmax;
  k->ps = (long)net->nparams;
  return k;
}

nnd_cache* nnd_cache_alloc_runs(dx_ctx* c, const nn_mlp* net, int P, int Bmax) {
  nnd_cache* k = cache_new(net, P, Bmax);
  size_t EB = (size_t)P * (size_t)net->E * (size_t)Bmax;
  for (int l = 1; l < net->nlayers; l++) {
    k->a[l] = dx_allocf(c, EB * (size_t)net->dims[l]);
    k->z[l - 1] = dx_allocf(c, EB * (size_t)net->dims[l]);
  }
  k->buf[0] = dx_allocf(c, EB * (size_t)max_hidden(net));
  k->buf[1] = dx_allocf(c, EB * (size_t)max_hidden(net));
  k->dxe = dx_allocf(c, EB * (size_t)net->dims[0]);
  return k;
}

nnd_cache* nnd_cache_alloc(dx_ctx* c, const nn_mlp* net, int Bmax) { return nnd_cache_alloc_runs(c, net, 1, Bmax); }

nnd_cache* nnd_cache_alloc_fwd(dx_ctx* c, const nn_mlp* net, int P, int Bmax) {
  nnd_cache* k = cache_new(net, P, Bmax);
  k->fwd_only = 1;
  const size_t n = (size_t)P * (size_t)net->E * (size_t)Bmax * (size_t)max_hidden(net);
  k->buf[0] = dx_allocf(c, n);
  k->buf[1] = dx_allocf(c, n);
  return k;
}

void nnd_cache_use_runs(nnd_cache* k, int P) {
  if (P < 1 || P > k->Pmax) mbpo_fatal("nnd_cache_use_runs: %d runs of a cache for %d", P, k->Pmax);
  k->P = P;
}

void nnd_cache_free(dx_ctx* c, nnd_cache* k) {
  if (!k) return;
  for (int l = 0; l <= NN_MAX_LAYERS; l++) dx_free(c, k->a[l]);
  for (int l = 0; l < NN_MAX_LAYERS; l++) dx_free(c, k->z[l]);
  dx_free(c, k->buf[0]);
  dx_free(c, k->buf[1]);
  dx_free(c, k->dxe);
  free(k);
}

/* The layers' GEMMs over [P][E]: a member's weights lie din * dout apart inside a run's vector and
 * the runs' vectors k->ps apart; activations [P][E][B][d]; a shared input [P][B][d] (member
 * stride 0). */
/* head: the last layer's bias is left to the output's reader (nnd_forward_head) */
static void forward(dx_ctx* c, const nn_mlp* net, const float* P, int B, const float* x, int shared_input,
                    nnd_cache* k, float* y, int head) {
  if (B > k->Bmax) mbpo_fatal("nnd_forward: %d rows exceed the cache's %d", B, k->Bmax);
  const int L = net->nlayers, E = net->E, R = k->P;
  const long ps = k->ps;
  k->B = B;
  k->shared_input = shared_input;
  k->x = x;
  for (int l = 0; l < L; l++) {
    const int din = net->dims[l], dout = net->dims[l + 1];
    /* forward only: layer l writes buf[l & 1] and its activation in place, layer l + 1 reads it */
    const float* in = l == 0 ? x : k->fwd_only ? k->buf[(l - 1) & 1] : k->a[l];
    int shared = l == 0 && shared_input;
    long si_in = shared ? 0 : (long)B * din, so_in = shared ? (long)B * din : (long)E * B * din;
    float* out = l == L - 1 ? y : k->fwd_only ? k->buf[l & 1] : k->z[l];
    float* act = l == L - 1 ? NULL : k->fwd_only ? out : k->a[l + 1];
    if (head && l == L - 1) {
      dx_gemm2(c, 0, 0, B, dout, din, 1.0f, in, din, so_in, si_in, P + net->w_off[l], dout, ps,
               (long)din * dout, 0.0f, out, dout, (long)E * B * dout, (long)B * dout, R, E);
      break;
    }
    /* the GEMM and its bias + activation as one op; a ReLU layer's may fuse on the GPU (cuBLASLt's
     * RELU_BIAS epilogue), where the bias vectors of the batch's matrices lie one stride apart:
     * members dout apart within a run, runs ps apart with one member */
    nnk_bias_act_args a = {out, act, P + net->b_off[l], B, dout,
                           l == L - 1 ? NNK_LINEAR : net->act, E, ps};
    dx_gemm_ep ep = {DX_EP_NONE, NULL, 0, NULL};
    if (l < L - 1 && net->act == NN_RELU && (R == 1 || E == 1))
      ep = (dx_gemm_ep){DX_EP_RELU_BIAS, P + net->b_off[l], R == 1 ? dout : ps, act};
    dx_gemm2_ep(c, 0, 0, B, dout, din, in, din, so_in, si_in, P + net->w_off[l], dout, ps, (long)din * dout,
                out, dout, (long)E * B * dout, (long)B * dout, R, E, &ep, &dxop_nnk_bias_act, &a, sizeof a,
                (long)R * E * B * dout);
  }
}

void nnd_forward(dx_ctx* c, const nn_mlp* net, const float* P, int B, const float* x, int shared_input,
                 nnd_cache* k, float* y) {
  forward(c, net, P, B, x, shared_input, k, y, 0);
}

void nnd_forward_head(dx_ctx* c, const nn_mlp* net, const float* P, int B, const float* x, int shared_input,
                      nnd_cache* k, float* y) {
  forward(c, net, P, B, x, shared_input, k, y, 1);
}

/* accumulate: the parameter gradients are added to grads (1) or overwrite them (0).
 *
 * Lanes: with k->dw_lane set (not the current lane) and grads wanted, each layer's weight-gradient
 * GEMM (and the top layer's bias column sum) goes onto that lane, beside the chain of input
 * gradients on the current one. The side lane waits for the dz it reads; layer l's input gradient,
 * written to buf[l & 1], waits for the weight GEMM of layer l + 1, which read that buffer as its
 * dz (from layer l + 2 down: the top layer's dz is dy); the current lane joins the side lane at
 * the end, so the caller sees every gradient. */
static void backward(dx_ctx* c, const nn_mlp* net, const float* P, nnd_cache* k, const float* dy,
                     float* grads, float* dx, int accumulate, int members) {
  const int L = net->nlayers, E = net->E, B = k->B, R = k->P;
  const long ps = k->ps;
  if (!k->x) mbpo_fatal("nnd_backward without a forward");
  if (k->fwd_only) mbpo_fatal("nnd_backward on a forward-only cache");
  const int main_lane = dx_lane_get(c), side = grads && k->dw_lane != main_lane ? k->dw_lane : -1;
  const float* dz = dy;
  int have_db = 0; /* the bias gradient of layer l was summed with the activation's backward */
  for (int l = L - 1; l >= 0; l--) {
    const int din = net->dims[l], dout = net->dims[l + 1];
    if (side >= 0) {
      if (l > 0 && l + 2 < L) dx_wait(c, main_lane, side); /* before this layer's dz is issued: the WAR above */
      dx_wait(c, side, main_lane); /* dz is ready on the main lane */
      dx_lane(c, side);
    }
    if (grads) {
      const float* in = l > 0 ? k->a[l] : k->x;
      int shared = l == 0 && k->shared_input;
      long si_in = shared ? 0 : (long)B * din, so_in = shared ? (long)B * din : (long)E * B * din;
      dx_gemm2(c, 1, 0, din, dout, B, 1.0f, in, din, so_in, si_in, dz, dout, (long)E * B * dout,
               (long)B * dout, accumulate ? 1.0f : 0.0f, grads + net->w_off[l], dout, ps, (long)din * dout, R, E);
      if (!have_db) {
        nnk_colsum_args cs = {dz, grads + net->b_off[l], B, dout, accumulate, 1.0f, E, ps};
        DX_RUN(c, nnk_colsum, cs, (long)R * E * dout);
      }
    }
    if (side >= 0) dx_lane(c, main_lane);
    if (l == 0 && !dx) break;
    float* out = l > 0 ? k->buf[l & 1] : (k->shared_input && E > 1 ? k->dxe : dx);
    /* the input gradient's GEMM and the op over its result (the activation's derivative with the
     * bias gradient, or the members' sum) as one op. ReLU's mask is read from the layer's output
     * a[l] (a > 0 iff z > 0: the same bits), which a fused forward writes where it may leave z. */
    const float* zl = l > 0 ? (net->act == NN_RELU ? k->a[l] : k->z[l - 1]) : NULL;
    const long sod = (long)E * B * dout, sid = (long)B * dout, wsz = (long)din * dout;
    const long soo = (long)E * B * din, sio = (long)B * din;
    if (l > 0 && grads) {
      nnk_act_back_colsum_args ab = {out, zl, grads + net->b_off[l - 1], net->act, B, din, accumulate, E, ps};
      dx_gemm2_ep(c, 0, 1, B, din, dout, dz, dout, sod, sid, P + net->w_off[l], dout, ps, wsz, out, din, soo, sio,
                  R, E, NULL, &dxop_nnk_act_back_colsum, &ab, sizeof ab, (long)R * E * din);
      have_db = 1;
    } else if (l > 0) {
      nnk_act_back_args ab = {out, zl, net->act};
      dx_gemm2_ep(c, 0, 1, B, din, dout, dz, dout, sod, sid, P + net->w_off[l], dout, ps, wsz, out, din, soo, sio,
                  R, E, NULL, &dxop_nnk_act_back, &ab, sizeof ab, (long)R * E * B * din);
    } else if (k->shared_input && E > 1 && !members) {
      nnk_sum_members_args sm = {k->dxe, dx, E, (long)B * din};
      dx_gemm2_ep(c, 0, 1, B, din, dout, dz, dout, sod, sid, P + net->w_off[l], dout, ps, wsz, out, din, soo, sio,
                  R, E, NULL, &dxop_nnk_sum_members, &sm, sizeof sm, (long)R * B * din);
    } else {
      dx_gemm2(c, 0, 1, B, din, dout, 1.0f, dz, dout, sod, sid, P + net->w_off[l], dout, ps, wsz, 0.0f, out, din,
               soo, sio, R, E);
    }
    dz = out;
  }
  if (side >= 0) dx_wait(c, main_lane, side);
}

void nnd_backward(dx_ctx* c, const nn_mlp* net, const float* P, nnd_cache* k, const float* dy,
                  float* grads, float* dx) {
  backward(c, net, P, k, dy, grads, dx, 1, 0);
}

void nnd_backward_members(dx_ctx* c, const nn_mlp* net, const float* P, nnd_cache* k, const float* dy,
                          float* grads) {
  if (!k->shared_input || net->E < 2) mbpo_fatal("nnd_backward_members: needs a shared input and E > 1 (E %d)", net->E);
  backward(c, net, P, k, dy, grads, k->dxe, 1, 1);
}

void nnd_backward_set(dx_ctx* c, const nn_mlp* net, const float* P, nnd_cache* k, const float* dy,
                      float* grads, float* dx) {
  backward(c, net, P, k, dy, grads, dx, 0, 0);
}

nnd_adam* nnd_adam_alloc_runs(dx_ctx* c, size_t n, int P, const float* lrs) {
  if (P < 1) mbpo_fatal("nnd_adam_alloc: P %d", P);
  nnd_adam* a = calloc(1, sizeof *a);
  if (!a) mbpo_fatal("out of memory");
  a->n = n;
  a->P = P;
  a->lr = lrs[0];
  a->b1 = 0.9f;
  a->b2 = 0.999f;
  a->eps = 1e-8f;
  a->m = dx_allocf(c, (size_t)P * n);
  a->v = dx_allocf(c, (size_t)P * n);
  a->t = (int64_t*)dx_alloc(c, (size_t)P * sizeof(int64_t));
  a->lr_t = dx_allocf(c, (size_t)P);
  a->lrs = dx_allocf(c, (size_t)P);
  dx_upload(c, a->lrs, lrs, (size_t)P * sizeof(float));
  dx_sync(c); /* lrs is the caller's pageable memory */
  return a;
}

nnd_adam* nnd_adam_alloc(dx_ctx* c, size_t n, float lr) { return nnd_adam_alloc_runs(c, n, 1, &lr); }

void nnd_adam_free(dx_ctx* c, nnd_adam* a) {
  if (!a) return;
  dx_free(c, a->m);
  dx_free(c, a->v);
  dx_free(c, a->t);
  dx_free(c, a->lr_t);
  dx_free(c, a->lrs);
  free(a);
}

void nnd_adam_step_runs(dx_ctx* c, nnd_adam* a, float* params, const float* g, const int* active) {
  nnk_adam_tick_args t = {a->t, a->lr_t, a->lrs, active, a->b1, a->b2};
  DX_RUN(c, nnk_adam_tick, t, a->P);
  nnk_adam_args u = {params, g, a->m, a->v, a->lr_t, active, (long)a->n, a->b1, a->b2, a->eps};
  DX_RUN(c, nnk_adam, u, (long)a->P * (long)a->n);
}

void nnd_adam_step(dx_ctx* c, nnd_adam* a, float* params, const float* g) {
  nnd_adam_step_runs(c, a, params, g, NULL);
}

void nnd_adam_upload_run(dx_ctx* c, nnd_adam* a, int q, const nn_adam* h) {
  if (h->n != a->n || q < 0 || q >= a->P)
    mbpo_fatal("nnd_adam_upload: %zu vs %zu parameters, run %d of %d", h->n, a->n, q, a->P);
  int64_t t = h->t;
  dx_upload(c, a->m + (size_t)q * a->n, h->m, a->n * sizeof(float));
  dx_upload(c, a->v + (size_t)q * a->n, h->v, a->n * sizeof(float));
  dx_upload(c, a->t + q, &t, sizeof t);
  dx_sync(c);
}

void nnd_adam_download_run(dx_ctx* c, const nnd_adam* a, int q, nn_adam* h) {
  if (h->n != a->n || q < 0 || q >= a->P)
    mbpo_fatal("nnd_adam_download: %zu vs %zu parameters, run %d of %d", h->n, a->n, q, a->P);
  int64_t t = 0;
  dx_download(c, h->m, a->m + (size_t)q * a->n, a->n * sizeof(float));
  dx_download(c, h->v, a->v + (size_t)q * a->n, a->n * sizeof(float));
  dx_download(c, &t, a->t + q, sizeof t);
  dx_sync(c);
  h->t = (long)t;
}

void nnd_adam_upload(dx_ctx* c, nnd_adam* a, const nn_adam* h) { nnd_adam_upload_run(c, a, 0, h); }

void nnd_adam_download(dx_ctx* c, const nnd_adam* a, nn_adam* h) { nnd_adam_download_run(c, a, 0, h); }

void nnd_polyak_runs(dx_ctx* c, float* target, const float* src, size_t n, int P, const float* taus,
                     const int* active) {
  nnk_polyak_args p = {target, src, taus, active, (long)n, 0.0f};
  DX_RUN(c, nnk_polyak, p, (long)P * (long)n);
}

void nnd_polyak(dx_ctx* c, float* target, const float* src, size_t n, float tau) {
  nnk_polyak_args p = {target, src, NULL, NULL, (long)n, tau};
  DX_RUN(c, nnk_polyak, p, (long)n);
}

void nnd_colsum(dx_ctx* c, const float* x, int E, int R, int D, float scale, int accumulate, float* out) {
  nnk_colsum_args a = {x, out, R, D, accumulate, scale, 1, D};
  DX_RUN(c, nnk_colsum, a, (long)E * D);
}

void nnd_concat(dx_ctx* c, const float* a, int da, const float* b, int db, int R, float* out) {
  nnk_concat_args p = {a, b, out, da, db};
  DX_RUN(c, nnk_concat, p, (long)R * (da + db));
}

void nnd_fill(dx_ctx* c, float* x, float v, size_t n) {
  nnk_fill_args p = {x, v};
  DX_RUN(c, nnk_fill, p, (long)n);
}

void nnd_ctr_add(dx_ctx* c, uint64_t* ctr, uint64_t v) { nnd_ctr_add_runs(c, ctr, 1, v, NULL); }

void nnd_ctr_add_runs(dx_ctx* c, uint64_t* ctr, int P, uint64_t v, const int* active) {
  nnk_ctr_add_args p = {ctr, active, v};
  DX_RUN(c, nnk_ctr_add, p, P);
}

void nnd_rng(dx_ctx* c, rng_key key, uint32_t c0, uint32_t c1, uint64_t first, long n, uint32_t* u, float* z) {
  nnk_rng_args p = {key, c0, c1, first, u, z};
  DX_RUN(c, nnk_rng, p, n);
}
