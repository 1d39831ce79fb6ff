/* env.h: the MBPO benchmark tasks on MuJoCo 2.2.2, with gym v2 semantics as MBPO used them.
 *
 * A task (env_task) is a static description in envs/<task>.c: dims, frame skip, reset noise and the
 * functions for observation, reward and health. An environment (env) is one mjData on a (possibly
 * shared) mjModel plus the episode counters. Policy actions are in [-1, 1]; env_step rescales them
 * to the control range and clips (softlearning's NormalizeActionWrapper). Reset noise is a pure
 * function of (seed, stream, env index, episode) through rng.h. */
#ifndef MBPO_ENV_H
#define MBPO_ENV_H

#include <stdint.h>

#include <mujoco/mujoco.h>

#include "rng.h"

/** Version string that results carry: gym v2 semantics, MuJoCo 2.2.2, this project's authored
 *  models following the Gymnasium asset parameters (Humanoid left_hip_y [-110, 20] degrees,
 *  Walker2d feet friction 0.9 right / 1.9 left). Bump when any task's dynamics or reward change. */
#define ENV_VERSION "v2sem-mj222-assets1"

#define ENV_MAX_OBS 64
#define ENV_MAX_ACT 32
#define ENV_MAX_PRE 8

typedef struct env env;

/** Reset noise kinds for qvel (qpos noise is always uniform). */
enum env_noise { ENV_NOISE_UNIFORM = 0, ENV_NOISE_NORMAL = 1 };

/** Static description of one task. */
typedef struct env_task {
  const char* name;     /* registry name, e.g. "hopper" */
  const char* gym_id;   /* the environment MBPO used, e.g. "Hopper-v2" */
  const char* asset;    /* embedded MJCF file name, e.g. "hopper.xml" */
  int obs_dim, act_dim; /* observation and action sizes */
  int frame_skip;       /* mj_step calls per env step */
  int max_steps;        /* episode length limit, reported as truncation */
  int rne_post;         /* call mj_rnePostConstraint after the frame loop (contact forces) */
  int term;             /* enum term_kind: the rule model rollouts apply (termination.h) */
  double qpos_noise;    /* qpos += U(-qpos_noise, qpos_noise) at reset */
  int qvel_noise_kind;  /* env_noise */
  double qvel_noise;    /* qvel += U(-s, s) or s * N(0, 1) at reset */
  /** Write the observation of the current state (obs_dim floats). */
  void (*observe)(const env* e, float* obs);
  /** Record what the reward needs from before the frame loop (at most ENV_MAX_PRE numbers). */
  void (*pre_step)(const env* e, double* pre);
  /** Reward after the frame loop; act is the rescaled action sent to the actuators. */
  double (*reward)(const env* e, const double* pre, const double* act);
  /** 1 while healthy (episode goes on), 0 when the env terminates. */
  int (*healthy)(const env* e);
} env_task;

/** One environment instance. */
struct env {
  const env_task* task;
  const mjModel* m;   /* shared or owned (see own_model) */
  mjData* d;
  int own_model;
  rng_key key;        /* (seed, stream) of the reset noise */
  uint32_t index;     /* this env's index among a batch (counter word c0 of the reset noise) */
  uint32_t episode;   /* episodes started so far (counter word c1) */
  int t;              /* steps taken in the current episode */
  long unstable;      /* MuJoCo instability warnings seen (bad qpos/qvel/qacc) */
};

/** Number of registered tasks. */
int env_ntasks(void);

/** The i-th registered task (0 <= i < env_ntasks()). */
const env_task* env_task_at(int i);

/** The task called name, or NULL. */
const env_task* env_find(const char* name);

/** Comma-separated list of task names (for error messages). */
const char* env_task_list(void);

/** Compile the task's MJCF: from model_dir/<asset> when model_dir is non-empty, otherwise from the
 *  copy embedded in the binary (MuJoCo's virtual file system). Returns NULL and fills err on error. */
mjModel* env_load_model(const env_task* task, const char* model_dir, char* err, int errlen);

/** The embedded MJCF text of an asset and its size, or NULL. */
const char* env_asset_text(const char* asset, int* size);

/** Create an environment. model: a compiled model to share (not owned), or NULL to load the embedded
 *  one. key: the reset-noise key; index: this env's index. Fatal error when the model does not load. */
env* env_create(const env_task* task, const mjModel* model, rng_key key, uint32_t index);

/** Free an environment (and its model when it owns it). */
void env_destroy(env* e);

/** Start a new episode: mj_resetData, reset noise, mj_forward; writes the first observation. */
void env_reset(env* e, float* obs);

/** Set qpos and qvel exactly (nq and nv doubles), then mj_forward. For tests and checkpoints. */
void env_set_state(env* e, const double* qpos, const double* qvel);

/** One step with a policy action in [-1, 1]^act_dim. Writes the next observation and reward and
 *  returns terminated (the task's health rule) and truncated (the step limit reached while not
 *  terminated). A MuJoCo instability warning during the step counts in e->unstable and terminates. */
void env_step(env* e, const float* action, float* obs, double* reward, int* terminated,
              int* truncated);

/** Rescale a policy action in [-1, 1] to the control range and clip (act_dim doubles out). */
void env_rescale_action(const env* e, const float* action, double* out);

/** Sum of body masses of the compiled model. */
double env_total_mass(const mjModel* m);

/** P environments of one task sharing one model, stepped together on a small thread pool. */
typedef struct env_batch {
  int P;
  mjModel* model;
  env** envs;
} env_batch;

/** Create P environments of a task (model from model_dir or embedded) with reset-noise key key;
 *  env i gets index i. Fatal error when the model does not load. */
env_batch* env_batch_create(const env_task* task, int P, const char* model_dir, rng_key key);

/** Free a batch. */
void env_batch_destroy(env_batch* b);

/** Reset every environment: obs is [P][obs_dim]. */
void env_batch_reset(env_batch* b, float* obs);

/** Step every environment: actions [P][act_dim] in [-1, 1]; obs [P][obs_dim], reward [P],
 *  terminated [P], truncated [P]. Environments do not reset themselves. */
void env_batch_step(env_batch* b, const float* actions, float* obs, double* reward, int* terminated,
                    int* truncated);

/** Route MuJoCo's errors and warnings through log.h (called by env_load_model; idempotent). */
void env_install_mujoco_handlers(void);

#endif
