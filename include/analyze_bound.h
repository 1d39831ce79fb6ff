/* analyze_bound.h: the return bounds of the paper (Janner et al. 2019, "When to Trust Your Model",
 * §4) and the rollout length they favour; `mbpo analyze bound`.
 *
 * With discount γ, reward bound r_max, policy shift ε_π and model error ε_m, each theorem bounds the
 * true return from below by a model-based return minus a penalty; these functions return the
 * penalties (the amounts subtracted):
 *
 *   Theorem 4.1 (MBPO, the whole horizon in the model):
 *       C = 2 γ r_max (ε_m + 2 ε_π) / (1-γ)^2 + 4 r_max ε_π / (1-γ)
 *   Theorem 4.2 (k-step branched rollouts, model error measured under the data policy):
 *       C(k) = 2 r_max [ γ^(k+1) ε_π / (1-γ)^2 + (γ^k + 2) ε_π / (1-γ) + k (ε_m + 2 ε_π) / (1-γ) ]
 *   Theorem 4.3 (the same with the model error under the new policy, ε_m'):
 *       C(k) = 2 r_max [ γ^(k+1) ε_π / (1-γ)^2 + γ^k ε_π / (1-γ) + k ε_m' / (1-γ) ]
 *       with ε_m' ≈ ε_m + ε_π dε_m'/dε_π (§4.3: the slope measured by `mbpo analyze generalization`).
 *
 * Both bracketed k-terms start with γ^(k+1)/(1-γ)^2 + γ^k/(1-γ) = γ^k/(1-γ)^2, so from k to k+1 the
 * bracket changes by (c - γ^k ε_π) / (1-γ), c = ε_m + 2 ε_π for 4.2 and c = ε_m' for 4.3. For 4.2
 * c > γ^k ε_π whenever ε_π + ε_m > 0: the penalty grows with k and its minimum is at k = 0, as the
 * paper says. For 4.3 the bracket falls while γ^k ε_π > ε_m', so its argmin is the smallest k with
 * γ^k ε_π <= ε_m': k* = max(0, ceil(ln(ε_m' / ε_π) / ln γ)) for ε_m', ε_π > 0; 0 when ε_π = 0;
 * unbounded when ε_m' <= 0 < ε_π. */
#ifndef MBPO_ANALYZE_BOUND_H
#define MBPO_ANALYZE_BOUND_H

/** The quantities of the bounds. */
typedef struct analyze_bound_in {
  double gamma;   /* discount, in (0, 1) */
  double rmax;    /* reward bound, >= 0 */
  double eps_pi;  /* policy shift ε_π, >= 0 */
  double eps_m;   /* model error ε_m under the data policy, >= 0 */
  double slope;   /* dε_m'/dε_π (Theorem 4.3's ε_m' = ε_m + ε_π slope) */
} analyze_bound_in;

/** Theorem 4.1's penalty C(ε_m, ε_π) (independent of k). */
double analyze_bound_41(const analyze_bound_in* b);

/** Theorem 4.2's penalty for k-step branched rollouts (k >= 0). */
double analyze_bound_42(const analyze_bound_in* b, long k);

/** ε_m' = ε_m + ε_π slope, the model error under the new policy (Theorem 4.3). */
double analyze_bound_eps_m_prime(const analyze_bound_in* b);

/** Theorem 4.3's penalty for k-step branched rollouts (k >= 0). */
double analyze_bound_43(const analyze_bound_in* b, long k);

/** The argmin over k in [k_min, k_max] of a penalty (which = 42 or 43): the first k where it is
 *  smallest. k_min <= k_max. */
long analyze_bound_argmin(const analyze_bound_in* b, int which, long k_min, long k_max);

/** Theorem 4.3's k* in closed form (see the top of this file): >= 0, or -1 when the bracket falls
 *  without end (ε_m' <= 0 < ε_π). */
long analyze_bound_kstar(const analyze_bound_in* b);

/** `mbpo analyze bound [RUN] gamma=G rmax=R eps_pi=E eps_m=M [slope=S] [k_min=A] [k_max=K]
 *  [metric=mse|nll] [-o FILE.csv]` (argv[0] = "bound"): the table of the three penalties for k in
 *  [k_min, k_max], k* and 4.2's argmin; with RUN, per analysed checkpoint the ε's from its
 *  generalization CSVs and its k*. Returns the exit status. */
int analyze_bound_cmd(int argc, char** argv);

#endif
