/* evaluate_cmd.h: `mbpo eval` and `mbpo export`, and loading a trained policy from a run folder.
 *
 * A run folder (<run_dir>/<task>-<tag>-s<seed>/) holds config.ini and checkpoints ckpt-*.npz, the
 * newest named in checkpoint.latest. The policy of a checkpoint is its "sac/policy" entry: the
 * actor's flat parameter vector in the nn.h layout of a 1-member MLP obs -> H -> ... -> 2 act
 * (layer l: weights [in][out] row-major at w_off[l], then biases [out] at b_off[l]). */
#ifndef MBPO_EVALUATE_CMD_H
#define MBPO_EVALUATE_CMD_H

#include "config.h"
#include "env.h"
#include "model.h"
#include "sac.h"

/** A trained policy loaded from a run folder: the run's configuration, its task and an agent whose
 *  pi_w holds the checkpoint's policy (critics and optimiser state are not loaded). */
typedef struct run_policy {
  mbpo_config cfg;         /* the run's config.ini, validated */
  const env_task* task;    /* cfg.task */
  sac* agent;              /* shapes from cfg (sac.hidden, sac.layers); pi_w = the checkpoint's */
  char ckpt[4400];         /* path of the checkpoint read */
  long epoch, t;           /* the checkpoint's loop counters (epoch being run, step within it) */
  long env_steps;          /* env steps taken, exploration included (-1: unknown) */
  long fits;               /* model fits so far (0: the checkpoint's model was never fitted) */
} run_policy;

/** Load the policy of a run folder: config.ini (missing: "not a run folder"), then the checkpoint
 *  ckpt (a path; NULL = the one checkpoint.latest names). The checkpoint must be readable and
 *  intact, of the run's task, with the same observation and action sizes and a policy of the run's
 *  shape (its own config_ini's sac.hidden and sac.layers equal to the run's). Returns 0, or -1 with
 *  the reason in err (nothing to free). */
int run_policy_load(const char* run_dir, const char* ckpt, run_policy* out, char* err, int errlen);

/** The dynamics model of p's checkpoint (model/... tensors, model/elites, the Adam step count),
 *  in a model built from p->cfg, and the row count of its real pool (*real_rows; NULL: not read).
 *  Returns the model (model_free it), or NULL with the reason in err: entries missing or of other
 *  shapes, or a model never fitted (p->fits == 0: the run had sac.real_ratio = 1, or the
 *  checkpoint was written before the first fit). */
dyn_model* run_policy_load_model(const run_policy* p, long* real_rows, char* err, int errlen);

/** Free what run_policy_load allocated (a zeroed struct is fine). */
void run_policy_free(run_policy* p);

/** The epoch index whose training-time evaluation a checkpoint's policy got: for a checkpoint
 *  written at an epoch's end (t == 0, epoch > 0) the epoch just ended (epoch - 1), whose evaluation
 *  snapshot is exactly this policy; for a mid-epoch checkpoint the running epoch. */
long run_policy_eval_epoch(const run_policy* p);

/** `mbpo eval <run folder> [episodes=N] [checkpoint=FILE] [seed=S] [epoch=E] [--video FILE]`
 *  (argv[0] = "eval"). Runs N deterministic episodes of the checkpoint's policy with the evaluator
 *  of training (reset noise key (seed, RNG_EVAL_RESET), env index = epoch) and prints the returns'
 *  mean ± std, min/max and mean episode length. Returns the exit status (0, or 1 with a message on
 *  bad input; --video is not built: 2). */
int evalcmd_eval(int argc, char** argv);

/** `mbpo export <run folder> [-o FILE] [checkpoint=FILE]` (argv[0] = "export"). Writes the actor
 *  of the checkpoint as a small .npz (default <run folder>/policy.npz): W0 [obs, H], b0 [H], ...,
 *  W<L> [H, 2 act], b<L> [2 act] (float32), obs_dim, act_dim, hidden_layers (int32 scalars),
 *  action_low, action_high [act] (float64: the compiled model's control range), log_std_min,
 *  log_std_max (float32 scalars), task and env_version (uint8 text). Returns the exit status. */
int evalcmd_export(int argc, char** argv);

/** Help text of `mbpo eval` (for the command table). */
extern const char evalcmd_eval_help[];

/** Help text of `mbpo export` (for the command table). */
extern const char evalcmd_export_help[];

#endif
