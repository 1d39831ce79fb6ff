/* config.h: every setting of the engine, from one table.
 *
 * MBPO_SETTINGS below is the single source: the config struct, the defaults, the INI reader, the
 * key=value command-line overrides, `mbpo config` and the saved resolved config.ini all come from it.
 * Keys with a dot live in the INI section of that name ("model.lr" is `lr` under `[model]`).
 *
 * Row: X(kind, field, "key", default, min, max, extra, "help")
 *   INT  : long;   default/min/max numbers; extra unused (NULL)
 *   FLT  : double; default/min/max numbers; extra unused
 *   BOOL : int 0/1; written true/false (1/0, yes/no, on/off accepted)
 *   STR  : char[CFG_STR_MAX]; extra = default text
 *   ENUM : int index into the '|'-separated values in extra; default = index
 *   LIST : cfg_list (up to CFG_LIST_MAX doubles); extra = default "a,b,c"; min/max bound each value */
#ifndef MBPO_CONFIG_H
#define MBPO_CONFIG_H

#include <stdio.h>

#define CFG_STR_MAX 256
#define CFG_LIST_MAX 8

/** A short list of numbers (per-layer weight decays). */
typedef struct cfg_list {
  int n;
  double v[CFG_LIST_MAX];
} cfg_list;

/** device setting values */
enum cfg_device { CFG_DEVICE_AUTO = 0, CFG_DEVICE_CUDA = 1, CFG_DEVICE_CPU = 2 };

#define CFG_BIG 2147483647L

#define MBPO_SETTINGS(X)                                                                           \
  /* ---- run ---- */                                                                             \
  X(STR, task, "task", 0, 0, 0, "hopper", "benchmark task (see `mbpo envs`)")                     \
  X(INT, seed, "seed", 0, 0, CFG_BIG, NULL, "random seed: every random number is a function of it") \
  X(ENUM, device, "device", 0, 0, 0, "auto|cuda|cpu", "backend: auto = cuda when a GPU is usable")  \
  X(INT, threads, "threads", 0, 0, 1024, NULL, "CPU threads for the cpu backend (0 = all cores)")   \
  X(STR, run_dir, "run_dir", 0, 0, 0, "runs", "parent folder of run folders")                      \
  X(STR, tag, "tag", 0, 0, 0, "mbpo", "run name: the run folder is <run_dir>/<task>-<tag>-s<seed>") \
  X(STR, model_dir, "model_dir", 0, 0, 0, "", "load <task>.xml from this folder instead of the embedded model") \
  X(BOOL, tf32, "tf32", 0, 0, 1, NULL, "allow TF32 GEMMs on the GPU (not implemented yet: 1 is refused)")              \
  /* ---- the loop (Algorithm 2) ---- */                                                          \
  X(INT, steps, "steps", 125000, 1, 100000000L, NULL, "total env steps of the run (the paper's budget)") \
  X(INT, epoch_length, "epoch_length", 1000, 1, 10000000L, NULL, "env steps per epoch (E)")        \
  X(INT, init_steps, "init_steps", 5000, 0, 10000000L, NULL, "uniform-random exploration steps before training") \
  X(INT, min_pool, "min_pool", 1000, 1, 10000000L, NULL, "SAC updates start when the real pool holds this many") \
  X(INT, max_path_length, "max_path_length", 1000, 1, 100000L, NULL, "episode cut (not terminal) after this many steps") \
  X(INT, real_pool_size, "real_pool_size", 1000000, 1000, 100000000L, NULL, "capacity of the real replay pool") \
  /* ---- dynamics model ---- */                                                                  \
  X(INT, model_ensemble, "model.ensemble", 7, 1, 64, NULL, "ensemble members")                     \
  X(INT, model_elites, "model.elites", 5, 1, 64, NULL, "elite members used in rollouts")            \
  X(INT, model_hidden, "model.hidden", 200, 1, 4096, NULL, "hidden width")                         \
  X(INT, model_layers, "model.layers", 4, 1, 7, NULL, "hidden layers (swish)")                     \
  X(FLT, model_lr, "model.lr", 1e-3, 1e-8, 1.0, NULL, "Adam learning rate")                         \
  X(INT, model_batch, "model.batch", 256, 1, 65536, NULL, "minibatch rows per member")              \
  X(LIST, model_weight_decay, "model.weight_decay", 0, 0.0, 1.0, "2.5e-5,5e-5,7.5e-5,7.5e-5,1e-4", "L2 per layer on weights only (hidden layers..., output)") \
  X(FLT, model_logvar_coef, "model.logvar_coef", 0.01, 0.0, 10.0, NULL, "coefficient of sum(max_logvar) - sum(min_logvar)") \
  X(FLT, model_holdout_ratio, "model.holdout_ratio", 0.2, 0.0, 0.9, NULL, "fraction of the real pool held out") \
  X(INT, model_max_holdout, "model.max_holdout", 5000, 0, 100000000L, NULL, "cap on holdout rows")  \
  X(INT, model_train_freq, "model.train_freq", 250, 1, 10000000L, NULL, "env steps between model fits (F)") \
  X(INT, model_patience, "model.patience", 5, 0, 1000, NULL, "stop after more than this many epochs without improvement") \
  X(FLT, model_improvement, "model.improvement", 0.01, 0.0, 1.0, NULL, "relative holdout improvement that counts") \
  X(INT, model_max_epochs, "model.max_epochs", 0, 0, 100000, NULL, "cap on model epochs per fit (0 = none, as official)") \
  X(INT, model_retain_epochs, "model.retain_epochs", 1, 1, 1000, NULL, "epochs of model rollouts kept in the model pool") \
  /* ---- branched rollouts ---- */                                                               \
  X(INT, rollout_batch, "rollout.batch", 100000, 1, 100000000L, NULL, "start states per rollout")   \
  X(INT, rollout_min_epoch, "rollout.min_epoch", 20, 0, 100000, NULL, "schedule: k = min_length up to this epoch") \
  X(INT, rollout_max_epoch, "rollout.max_epoch", 150, 0, 100000, NULL, "schedule: k = max_length from this epoch") \
  X(INT, rollout_min_length, "rollout.min_length", 1, 1, 1000, NULL, "schedule: shortest rollout")  \
  X(INT, rollout_max_length, "rollout.max_length", 15, 1, 1000, NULL, "schedule: longest rollout")  \
  X(INT, rollout_chunk_rows, "rollout.chunk_rows", 0, 0, 1073741824L, NULL, "device backend: rows per model chunk in rollouts (0 = 4096 on a GPU, L2-sized; 16384 on the host emulation)") \
  /* ---- SAC ---- */                                                                             \
  X(INT, sac_updates, "sac.updates", 20, 0, 10000, NULL, "SAC updates per env step (G)")           \
  X(INT, sac_batch, "sac.batch", 256, 1, 65536, NULL, "SAC minibatch rows")                         \
  X(FLT, sac_real_ratio, "sac.real_ratio", 0.05, 0.0, 1.0, NULL, "real share of each batch (int(batch * ratio) rows)") \
  X(FLT, sac_lr, "sac.lr", 3e-4, 1e-8, 1.0, NULL, "Adam learning rate of the critics, actor and temperature") \
  X(FLT, sac_gamma, "sac.gamma", 0.99, 0.0, 1.0, NULL, "discount")                                 \
  X(FLT, sac_tau, "sac.tau", 5e-3, 0.0, 1.0, NULL, "Polyak rate of the target critics")           \
  X(INT, sac_hidden, "sac.hidden", 256, 1, 4096, NULL, "hidden width of actor and critics")        \
  X(INT, sac_layers, "sac.layers", 2, 1, 7, NULL, "hidden layers (ReLU)")                          \
  X(FLT, sac_target_entropy, "sac.target_entropy", -1.0, -1000.0, 1000.0, NULL, "target entropy of the temperature update") \
  X(FLT, sac_reward_scale, "sac.reward_scale", 1.0, 0.0, 1e6, NULL, "reward scale in the Bellman target") \
  X(INT, sac_value_expansion, "sac.value_expansion", 0, 0, 100, NULL, "H-step model value expansion of the critics' target (0 = off; needs sac.real_ratio = 1)") \
  /* ---- evaluation, checkpoints ---- */                                                         \
  X(INT, eval_episodes, "eval.episodes", 5, 0, 1000, NULL, "deterministic evaluation episodes per epoch") \
  X(BOOL, eval_model_return, "eval.model_return", 0, 0, 1, NULL, "also run each evaluation episode's policy in the learned model (eval_model_return_mean)") \
  X(INT, eval_model_rollouts, "eval.model_rollouts", 10, 1, 10000, NULL, "model rollouts per evaluation episode (eval.model_return)") \
  X(INT, checkpoint_every, "checkpoint.every", 10, 0, 100000, NULL, "epochs between checkpoints (0 = only at exit)") \
  X(INT, checkpoint_keep, "checkpoint.keep", 3, 1, 1000, NULL, "checkpoints kept (plus the best)") \
  X(FLT, stop_return, "stop_return", 1e12, -1e12, 1e12, NULL, "end the run once an epoch's mean evaluation return reaches this (1e12: never)")

#define CFG_FIELD_INT(f) long f;
#define CFG_FIELD_FLT(f) double f;
#define CFG_FIELD_BOOL(f) int f;
#define CFG_FIELD_STR(f) char f[CFG_STR_MAX];
#define CFG_FIELD_ENUM(f) int f;
#define CFG_FIELD_LIST(f) cfg_list f;
#define CFG_FIELD_(kind, f, key, def, lo, hi, extra, help) CFG_FIELD_##kind(f)

/** The resolved settings of a run. */
typedef struct mbpo_config {
  MBPO_SETTINGS(CFG_FIELD_)
} mbpo_config;

/** Kinds of settings. */
enum cfg_kind { CFG_INT, CFG_FLT, CFG_BOOL, CFG_STR, CFG_ENUM, CFG_LIST };

/** Description of one setting (a row of the table). */
typedef struct cfg_desc {
  int kind;          /* enum cfg_kind */
  const char* key;   /* "model.lr" */
  size_t offset;     /* of the field in mbpo_config */
  double def, lo, hi;
  const char* extra; /* STR default, ENUM values, LIST default */
  const char* help;
} cfg_desc;

/** Number of settings. */
int cfg_count(void);

/** The i-th setting. */
const cfg_desc* cfg_at(int i);

/** The setting with this key, or NULL. */
const cfg_desc* cfg_find(const char* key);

/** The valid key closest to key (edit distance), for "did you mean" messages. */
const char* cfg_closest_key(const char* key);

/** Case-insensitive Levenshtein distance of a and b (each capped at 127 characters), for "did you
 *  mean" messages. */
int cfg_edit_distance(const char* a, const char* b);

/** Fill every setting with its default. */
void cfg_defaults(mbpo_config* c);

/** Set one setting from text. Returns 0, or -1 with a message in err naming the setting and what is
 *  allowed (unknown key: the closest valid key). */
int cfg_set(mbpo_config* c, const char* key, const char* value, char* err, int errlen);

/** Read an INI file over c (sections name the prefix). Returns 0, or -1 with "file:line: ..." in err. */
int cfg_load_ini(mbpo_config* c, const char* path, char* err, int errlen);

/** Read INI text (an embedded preset) over c; name is used in messages. */
int cfg_load_ini_text(mbpo_config* c, const char* text, const char* name, char* err, int errlen);

/** Checks across settings (known task, elites <= ensemble, schedule order, ...). 0 or -1 with err. */
int cfg_validate(const mbpo_config* c, char* err, int errlen);

/** Format one setting's value as text (the form cfg_set reads back). */
void cfg_format_value(const mbpo_config* c, const cfg_desc* d, char* buf, int n);

/** Write the resolved configuration as INI, each value with its help as a comment. */
void cfg_write_ini(const mbpo_config* c, FILE* f);

/** Print every setting with its help, allowed range and resolved value (`mbpo config`). */
void cfg_print(const mbpo_config* c, FILE* f);

/** 1 when every setting of a and b is equal. */
int cfg_equal(const mbpo_config* a, const mbpo_config* b);

/** Resolve a preset argument: a path to an .ini file, or a preset name ("hopper") found among the
 *  presets embedded in the binary. Loads it over c. 0 or -1 with err (unknown preset lists them). */
int cfg_load_preset(mbpo_config* c, const char* arg, char* err, int errlen);

#endif
