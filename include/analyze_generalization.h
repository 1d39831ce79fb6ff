/* analyze_generalization.h: model generalization under policy shift (Janner et al. 2019, §4.3 and
 * Figure 1); `mbpo analyze generalization`.
 *
 * For analysed checkpoints 0..K-1 (by epoch): checkpoint i's model was fitted on the real data
 * gathered up to it; its policy stands for the data-collecting policy π_D. For every j >= i the
 * stochastic policy π_j of checkpoint j collects N fresh transitions in the real env
 * (analyze_collect), and model i, without retraining, is scored on them:
 *   ε_π(i, j)      = mean over those states s of KL(π_j(.|s) || π_i(.|s)), the closed-form KL of the
 *                    two pre-tanh diagonal Gaussians (the tanh squashing is a bijection, which
 *                    leaves the KL unchanged); 0 for j = i;
 *   ε_m,mse(i, j)  = the fit's holdout metric: the plain MSE of the predicted mean against the raw
 *                    targets [r, s' - s] over rows and dims (model_holdout_mse), averaged over
 *                    model i's elites;
 *   ε_m,nll(i, j)  = the Gaussian NLL per dim, mean over rows and dims of
 *                    ½ [(μ - y)² exp(-lv) + lv + ln 2π], averaged over the elites.
 * The slope dε_m/dε_π near ε_π = 0 (Figure 1b) of model i is the least-squares line through its
 * fit_points points of smallest ε_π (j = i first), for both metrics. */
#ifndef MBPO_ANALYZE_GENERALIZATION_H
#define MBPO_ANALYZE_GENERALIZATION_H

#include "analyze_ckpt.h"

/** Model m's errors on rows r: *mse and *nll as above, averaged over its elites. Workspaces mean
 *  and logvar hold E * r->n * D floats. */
void analyze_model_errors(dyn_model* m, const analyze_rows* r, float* mean, float* logvar, double* mse,
                          double* nll);

/** ε_π of rows r's states: the mean over them of KL(π_p || π_q) (policies as parameter vectors of
 *  the network pi; cache and out as sac_policy_gaussian's; mu_*, ls_* hold r->n * act floats). */
double analyze_policy_kl(const nn_mlp* pi, const float* w_p, const float* w_q, const analyze_rows* r,
                         nn_cache* cache, float* out, float* mu_p, float* ls_p, float* mu_q, float* ls_q);

/** The slope of the least-squares line through n points (x, y); NAN when fewer than 2 distinct x. */
double analyze_ls_slope(const double* x, const double* y, int n);

/** The files of the analysis: <dir>/generalization.csv (one row per pair) into pairs and
 *  <dir>/generalization-slope.csv (one row per checkpoint i) into slopes, dir NULL meaning
 *  <run>/analysis. Either output may be NULL. */
void analyze_gen_paths(const char* run, const char* dir, char* pairs, int n1, char* slopes, int n2);

/** `mbpo analyze generalization RUN [steps=N] [checkpoints=...] [fit_points=P] [seed=S] [-o DIR]`
 *  (argv[0] = "generalization"). Returns the exit status. */
int analyze_gen_cmd(int argc, char** argv);

#endif
