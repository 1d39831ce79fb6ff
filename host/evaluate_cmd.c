/* evaluate_cmd.c: `mbpo eval` and `mbpo export` (evaluate_cmd.h). */
#include "evaluate_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "evaluate.h"
#include "log.h"
#include "npy.h"
#include "npz.h"
#include "schedule.h"
#include "threads.h"
#include "video.h"

const char evalcmd_eval_help[] =
    "options: episodes=N  checkpoint=FILE  seed=S  epoch=E\n\n"
    "Evaluate the policy of a run's newest checkpoint (or checkpoint=FILE) with N deterministic\n"
    "episodes (episodes=N, default the run's eval.episodes, at least 1) and print the returns'\n"
    "mean ± std, min/max and the mean episode length. The evaluator is training's: reset noise\n"
    "from (seed, RNG_EVAL_RESET) with the env index = the epoch index (epoch=E; default the epoch\n"
    "whose evaluation the checkpoint's policy got), so an epoch-end checkpoint with the run's\n"
    "seed and eval.episodes reproduces that epoch's row of progress.csv exactly.\n"
    "--video FILE.mp4 also renders the episodes (MuJoCo's renderer offscreen, EGL or OSMesa, one\n"
    "frame per env step, real time) and encodes them with ffmpeg; without those it says what to\n"
    "install and exits 2.\n"
    "Example: mbpo eval runs/hopper-mbpo-s0 episodes=10\n\n";

const char evalcmd_export_help[] =
    "options: checkpoint=FILE\n\n"
    "Write the actor of a run's newest checkpoint (or checkpoint=FILE) as a small .npz (default\n"
    "<run folder>/policy.npz): W0 [obs, H], b0 [H], W1 [H, H], b1 [H], W2 [H, 2 act], b2 [2 act]\n"
    "(float32; more layers with sac.layers > 2), obs_dim, act_dim, hidden_layers, action_low,\n"
    "action_high (the control range), log_std_min, log_std_max, task, env_version.\n"
    "Deterministic action: h = relu(x @ W0 + b0); h = relu(h @ W1 + b1); out = h @ W2 + b2;\n"
    "a = tanh(out[:act]); env action = low + (a + 1) * (high - low) / 2 (see README.md).\n\n";

/* ---- loading ---- */

static int read_text_entry(npz_archive* a, const char* name, char* buf, size_t n) {
  npy_array t;
  char e[512];
  if (npz_find(a, name) < 0 || npz_get(a, name, &t, e, sizeof e) != 0) return -1;
  int ok = t.type == NPY_U8 && t.count < n;
  if (ok) {
    memcpy(buf, t.data, t.count);
    buf[t.count] = '\0';
  }
  npy_free(&t);
  return ok ? 0 : -1;
}

static int get_scalar(npz_archive* a, const char* name, double* v) {
  npy_array t;
  char e[512];
  if (npz_find(a, name) < 0 || npz_get(a, name, &t, e, sizeof e) != 0) return -1;
  int ok = t.type == NPY_F64 && t.count == 1;
  if (ok) memcpy(v, t.data, sizeof *v);
  npy_free(&t);
  return ok ? 0 : -1;
}

int run_policy_load(const char* run_dir, const char* ckpt, run_policy* out, char* err, int errlen) {
  memset(out, 0, sizeof *out);
  out->epoch = out->t = out->env_steps = -1;
  char path[4400], e[4600];
  struct stat st;
  if (stat(run_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    mbpo_fmt(err, errlen, "%s is not a run folder (no such folder)", run_dir);
    return -1;
  }
  snprintf(path, sizeof path, "%s/config.ini", run_dir);
  if (stat(path, &st) != 0) {
    mbpo_fmt(err, errlen, "%s is not a run folder (no config.ini)", run_dir);
    return -1;
  }
  cfg_defaults(&out->cfg);
  if (cfg_load_ini(&out->cfg, path, e, sizeof e) != 0 || cfg_validate(&out->cfg, e, sizeof e) != 0) {
    mbpo_fmt(err, errlen, "%s: bad config.ini: %s", run_dir, e);
    return -1;
  }
  out->task = env_find(out->cfg.task);
  if (!out->task) {
    mbpo_fmt(err, errlen, "%s: unknown task '%s'", run_dir, out->cfg.task);
    return -1;
  }
  if (ckpt) {
    snprintf(out->ckpt, sizeof out->ckpt, "%s", ckpt);
  } else {
    snprintf(path, sizeof path, "%s/%s", run_dir, CKPT_LATEST);
    FILE* f = fopen(path, "r");
    char name[300] = "";
    if (!f) {
      mbpo_fmt(err, errlen, "%s has no checkpoint (no %s)", run_dir, CKPT_LATEST);
      return -1;
    }
    if (!fgets(name, sizeof name, f)) name[0] = '\0';
    fclose(f);
    name[strcspn(name, "\r\n")] = '\0';
    if (!name[0] || strchr(name, '/')) {
      mbpo_fmt(err, errlen, "%s: %s does not name a checkpoint", run_dir, CKPT_LATEST);
      return -1;
    }
    snprintf(out->ckpt, sizeof out->ckpt, "%s/%s", run_dir, name);
  }
  npz_archive* a = npz_open(out->ckpt, e, sizeof e);
  if (!a) {
    mbpo_fmt(err, errlen, "cannot read checkpoint %s", e);
    return -1;
  }
  int rc = -1;
  double ver = 0, od = 0, ad = 0;
  char task[CFG_STR_MAX];
  npy_array pol;
  memset(&pol, 0, sizeof pol);
  if (get_scalar(a, "format_version", &ver) != 0 || ver != CKPT_VERSION) {
    mbpo_fmt(err, errlen, "%s is not a checkpoint of format version %d", out->ckpt, CKPT_VERSION);
    goto done;
  }
  if (read_text_entry(a, "task", task, sizeof task) != 0) {
    mbpo_fmt(err, errlen, "%s: no readable 'task' entry", out->ckpt);
    goto done;
  }
  if (strcmp(task, out->cfg.task) != 0) {
    mbpo_fmt(err, errlen, "%s is a checkpoint of task %s, the run %s is %s", out->ckpt, task, run_dir,
             out->cfg.task);
    goto done;
  }
  if (get_scalar(a, "obs_dim", &od) != 0 || get_scalar(a, "act_dim", &ad) != 0 ||
      (int)od != out->task->obs_dim || (int)ad != out->task->act_dim) {
    mbpo_fmt(err, errlen, "%s: observation/action sizes differ from task %s", out->ckpt, task);
    goto done;
  }
  /* the checkpoint's own configuration must give the policy the run's shape */
  {
    size_t cap = 1 << 20;
    char* ini = (char*)malloc(cap);
    if (!ini) mbpo_fatal("out of memory");
    if (read_text_entry(a, "config_ini", ini, cap) != 0) {
      free(ini);
      mbpo_fmt(err, errlen, "%s: no readable 'config_ini' entry", out->ckpt);
      goto done;
    }
    mbpo_config cc;
    cfg_defaults(&cc);
    int bad = cfg_load_ini_text(&cc, ini, "config_ini", e, sizeof e) != 0;
    free(ini);
    if (bad) {
      mbpo_fmt(err, errlen, "%s: its config_ini does not parse: %s", out->ckpt, e);
      goto done;
    }
    if (cc.sac_hidden != out->cfg.sac_hidden || cc.sac_layers != out->cfg.sac_layers) {
      mbpo_fmt(err, errlen,
               "%s: policy shape sac.hidden=%ld sac.layers=%ld, the run %s has sac.hidden=%ld "
               "sac.layers=%ld",
               out->ckpt, cc.sac_hidden, cc.sac_layers, run_dir, out->cfg.sac_hidden,
               out->cfg.sac_layers);
      goto done;
    }
  }
  sac_params sp = sac_params_from_config(&out->cfg);
  out->agent = sac_create(out->task->obs_dim, out->task->act_dim, &sp,
                          (rng_key){(uint32_t)out->cfg.seed, RNG_INIT});
  if (npz_get(a, "sac/policy", &pol, e, sizeof e) != 0) {
    mbpo_fmt(err, errlen, "%s: %s", out->ckpt, e);
    goto done;
  }
  if (pol.type != NPY_F32 || pol.count != out->agent->pi.nparams) {
    mbpo_fmt(err, errlen, "%s: 'sac/policy' has %zu elements of type %d, the run's policy needs %zu "
             "float32", out->ckpt, pol.count, pol.type, out->agent->pi.nparams);
    goto done;
  }
  memcpy(out->agent->pi_w, pol.data, pol.count * sizeof(float));
  {
    npy_array c;
    if (npz_get(a, "loop/counters", &c, e, sizeof e) == 0) {
      if (c.type == NPY_I64 && c.count >= 7) {
        const long long* v = (const long long*)c.data;
        out->env_steps = (long)v[0];
        out->fits = (long)v[3];
        out->epoch = (long)v[5];
        out->t = (long)v[6];
      }
      npy_free(&c);
    }
  }
  rc = 0;
done:
  npy_free(&pol);
  npz_close(a);
  if (rc != 0) run_policy_free(out);
  return rc;
}

/* Entry name of a into dst, which must hold exactly count float32 values. 0, or -1 with err. */
static int get_f32(npz_archive* a, const char* path, const char* name, float* dst, size_t count, char* err,
                   int errlen) {
  npy_array t;
  char e[512];
  if (npz_get(a, name, &t, e, sizeof e) != 0) {
    mbpo_fmt(err, errlen, "%s: %s", path, e);
    return -1;
  }
  int ok = t.type == NPY_F32 && t.count == count;
  if (ok) memcpy(dst, t.data, count * sizeof(float));
  else
    mbpo_fmt(err, errlen, "%s: '%s' has %zu elements of type %d, the run's model needs %zu float32", path, name,
             t.count, t.type, count);
  npy_free(&t);
  return ok ? 0 : -1;
}

dyn_model* run_policy_load_model(const run_policy* p, long* real_rows, char* err, int errlen) {
  if (p->fits <= 0) {
    mbpo_fmt(err, errlen, "%s holds no fitted model (no model fit before it was written%s)", p->ckpt,
             !mbpo_fits_model(&p->cfg) ? ": the run has sac.real_ratio = 1, which fits no model" : "");
    return NULL;
  }
  char e[4600];
  npz_archive* a = npz_open(p->ckpt, e, sizeof e);
  if (!a) {
    mbpo_fmt(err, errlen, "cannot read checkpoint %s", e);
    return NULL;
  }
  model_params mp = model_params_from_config(&p->cfg);
  dyn_model* m = model_create(p->task->obs_dim, p->task->act_dim, &mp, (rng_key){(uint32_t)p->cfg.seed, RNG_INIT});
  model_tensor mt[MODEL_MAX_TENSORS];
  int nt = model_tensors(m, mt), bad = 0;
  for (int i = 0; i < nt && !bad; i++) {
    if (strncmp(mt[i].name, "adam_", 5) == 0) continue; /* optimiser state: not needed to predict */
    char n[160];
    size_t cnt = 1;
    for (int d = 0; d < mt[i].ndim; d++) cnt *= (size_t)mt[i].shape[d];
    snprintf(n, sizeof n, "model/%.100s", mt[i].name);
    bad = get_f32(a, p->ckpt, n, mt[i].data, cnt, err, errlen) != 0;
  }
  if (!bad) {
    npy_array t;
    if (npz_get(a, "model/elites", &t, e, sizeof e) != 0) {
      mbpo_fmt(err, errlen, "%s: %s", p->ckpt, e);
      bad = 1;
    } else {
      bad = t.type != NPY_I32 || t.count != (size_t)m->p.elites;
      if (bad) mbpo_fmt(err, errlen, "%s: 'model/elites' does not hold %d int32", p->ckpt, m->p.elites);
      else memcpy(m->elites, t.data, t.count * sizeof(int));
      for (int i = 0; !bad && i < m->p.elites; i++)
        if (m->elites[i] < 0 || m->elites[i] >= m->p.ensemble) {
          mbpo_fmt(err, errlen, "%s: elite %d is not a member", p->ckpt, m->elites[i]);
          bad = 1;
        }
      npy_free(&t);
    }
  }
  if (!bad && real_rows) {
    npy_array t;
    if (npz_get(a, "real/rew", &t, e, sizeof e) != 0) {
      mbpo_fmt(err, errlen, "%s: %s", p->ckpt, e);
      bad = 1;
    } else {
      *real_rows = (long)t.count;
      npy_free(&t);
    }
  }
  npz_close(a);
  if (bad) {
    model_free(m);
    return NULL;
  }
  return m;
}

void run_policy_free(run_policy* p) {
  sac_free(p->agent);
  p->agent = NULL;
}

long run_policy_eval_epoch(const run_policy* p) {
  if (p->epoch < 0) return 0;
  if (p->t == 0 && p->epoch > 0) return p->epoch - 1;
  return p->epoch;
}

/* ---- arguments ---- */

static int parse_long(const char* s, long lo, long hi, long* v) {
  char* end;
  errno = 0;
  long x = strtol(s, &end, 10);
  if (errno || end == s || *end || x < lo || x > hi) return -1;
  *v = x;
  return 0;
}

/* An argument that is neither an option of the command nor its run folder: name what is wrong (an
 * unknown key gets config.h's "did you mean"; a valid setting is the run's, from its config.ini). */
MBPO_NORETURN static void bad_argument(const char* cmd, const char* a, const char* usage) {
  const char* eq = strchr(a, '=');
  if (eq && eq != a) {
    char key[256], err[1200];
    mbpo_config scratch;
    cfg_defaults(&scratch);
    snprintf(key, sizeof key, "%.*s", (int)(eq - a < 255 ? eq - a : 255), a);
    if (cfg_set(&scratch, key, eq + 1, err, sizeof err) != 0)
      mbpo_fatal("%s: argument '%s': %s (usage: %s)", cmd, a, err, usage);
    mbpo_fatal("%s: argument '%s': the run's settings come from its config.ini (usage: %s)", cmd, a,
               usage);
  }
  mbpo_fatal("%s: unexpected argument '%s' (usage: %s)", cmd, a, usage);
}

/* ---- mbpo eval ---- */

/* --video: each evaluation state becomes a frame (the first failure stops the frames). */
typedef struct video_sink {
  video* v;
  int failed;
} video_sink;

static void video_observe(void* ctx, env* e) {
  video_sink* s = (video_sink*)ctx;
  if (!s->failed && video_frame(s->v, e->d) != 0) s->failed = 1;
}

int evalcmd_eval(int argc, char** argv) {
  const char *run = NULL, *ckpt = NULL, *video = NULL;
  long episodes = -1, seed = -1, epoch = -1;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (strcmp(a, "--video") == 0) {
      if (i + 1 >= argc) mbpo_fatal("--video needs a file name");
      video = argv[++i];
    } else if (strncmp(a, "--video=", 8) == 0) {
      video = a + 8;
    } else if (strncmp(a, "episodes=", 9) == 0) {
      if (parse_long(a + 9, 1, 100000, &episodes)) mbpo_fatal("episodes= needs an integer in 1..100000");
    } else if (strncmp(a, "seed=", 5) == 0) {
      if (parse_long(a + 5, 0, 2147483647L, &seed)) mbpo_fatal("seed= needs an integer in 0..2147483647");
    } else if (strncmp(a, "epoch=", 6) == 0) {
      if (parse_long(a + 6, 0, 2147483647L, &epoch)) mbpo_fatal("epoch= needs an integer >= 0");
    } else if (strncmp(a, "checkpoint=", 11) == 0) {
      ckpt = a + 11;
    } else if (!run && a[0] != '-' && !strchr(a, '=')) {
      run = a;
    } else {
      bad_argument("eval", a, "mbpo eval <run folder> [episodes=N] [checkpoint=FILE] [seed=S] "
                   "[epoch=E] [--video FILE]");
    }
  }
  if (!run) mbpo_fatal("usage: mbpo eval <run folder> [episodes=N] [checkpoint=FILE] [seed=S] [epoch=E]");
  char err[9000];
  run_policy p;
  if (run_policy_load(run, ckpt, &p, err, sizeof err) != 0) mbpo_fatal("%s", err);
  threads_set((int)p.cfg.threads);
  if (episodes < 0) episodes = p.cfg.eval_episodes > 0 ? p.cfg.eval_episodes : 1;
  if (seed < 0) seed = p.cfg.seed;
  if (epoch < 0) epoch = run_policy_eval_epoch(&p);
  mjModel* m = env_load_model(p.task, p.cfg.model_dir, err, sizeof err);
  if (!m) {
    run_policy_free(&p);
    mbpo_fatal("cannot load the model of %s: %s", p.task->name, err);
  }
  evaluator* ev = eval_create(p.task, m, p.agent, (uint32_t)seed, (int)episodes,
                              (int)p.cfg.max_path_length);
  memcpy(eval_snapshot(ev), p.agent->pi_w, p.agent->pi.nparams * sizeof(float));
  dyn_model* model = NULL; /* eval.model_return: the checkpoint's model, as training snapshots it */
  if (p.cfg.eval_model_return && p.fits > 0) {
    if (!(model = run_policy_load_model(&p, NULL, err, sizeof err))) mbpo_fatal("%s", err);
    eval_enable_model(ev, model, p.task->term, (int)p.cfg.eval_model_rollouts);
    eval_set_model(ev, model);
  }
  video_sink vs = {NULL, 0};
  if (video) {
    /* real time: one frame per env step */
    double fps = 1.0 / (m->opt.timestep * (double)p.task->frame_skip);
    vs.v = video_open(video, m, 640, 480, fps, err, sizeof err);
    if (!vs.v) {
      fprintf(stderr, "mbpo: error: %s\n", err);
      eval_free(ev);
      mj_deleteModel(m);
      run_policy_free(&p);
      return 2;
    }
    eval_set_observer(ev, video_observe, &vs);
  }
  eval_result r = eval_run(ev, (uint32_t)epoch);
  if (vs.v) {
    long frames = video_frames(vs.v);
    const char* backend = video_backend(vs.v);
    int bad = vs.failed;
    if (bad) fprintf(stderr, "mbpo: error: %s\n", video_error(vs.v));
    if (video_close(vs.v, err, sizeof err) != 0) {
      fprintf(stderr, "mbpo: error: %s: %s\n", video, err);
      bad = 1;
    }
    if (bad) {
      eval_free(ev);
      mj_deleteModel(m);
      run_policy_free(&p);
      return 1;
    }
    printf("video: %s, %ld frames (%s, %.4g frames/s)\n", video, frames, backend,
           1.0 / (m->opt.timestep * (double)p.task->frame_skip));
  }
  printf("%s: %s, task %s, seed %ld, epoch index %ld, %d deterministic episode%s\n", run, p.ckpt,
         p.task->name, seed, epoch, r.episodes, r.episodes == 1 ? "" : "s");
  printf("return  mean %.3f ± %.3f  min %.3f  max %.3f  first %.3f  mean length %.1f\n", r.mean,
         r.std, r.min, r.max, r.first, r.mean_length);
  printf("eval_return_mean=%.17g eval_return_std=%.17g eval_return_min=%.17g eval_return_max=%.17g "
         "eval_return_first=%.17g eval_length_mean=%.17g\n",
         r.mean, r.std, r.min, r.max, r.first, r.mean_length);
  if (model)
    printf("eval_model_return_mean=%.17g eval_model_return_std=%.17g (%ld model rollouts per episode)\n",
           r.model_mean, r.model_std, p.cfg.eval_model_rollouts);
  model_free(model);
  eval_free(ev);
  mj_deleteModel(m);
  run_policy_free(&p);
  return 0;
}

/* ---- mbpo export ---- */

int evalcmd_export(int argc, char** argv) {
  const char *run = NULL, *ckpt = NULL, *outp = NULL;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (strcmp(a, "-o") == 0) {
      if (i + 1 >= argc) mbpo_fatal("-o needs a file name");
      outp = argv[++i];
    } else if (strncmp(a, "-o=", 3) == 0) {
      outp = a + 3;
    } else if (strncmp(a, "checkpoint=", 11) == 0) {
      ckpt = a + 11;
    } else if (!run && a[0] != '-' && !strchr(a, '=')) {
      run = a;
    } else {
      bad_argument("export", a, "mbpo export <run folder> [-o FILE] [checkpoint=FILE]");
    }
  }
  if (!run) mbpo_fatal("usage: mbpo export <run folder> [-o FILE] [checkpoint=FILE]");
  char err[9000], def[4400];
  run_policy p;
  if (run_policy_load(run, ckpt, &p, err, sizeof err) != 0) mbpo_fatal("%s", err);
  if (!outp) {
    snprintf(def, sizeof def, "%s/policy.npz", run);
    outp = def;
  }
  mjModel* m = env_load_model(p.task, p.cfg.model_dir, err, sizeof err);
  if (!m) {
    run_policy_free(&p);
    mbpo_fatal("cannot load the model of %s: %s", p.task->name, err);
  }
  const nn_mlp* pi = &p.agent->pi;
  int ad = p.task->act_dim;
  npz_writer* w = npz_begin();
  if (!w) mbpo_fatal("out of memory");
  for (int l = 0; l < pi->nlayers; l++) {
    char n[32];
    long sh[2] = {pi->dims[l], pi->dims[l + 1]};
    snprintf(n, sizeof n, "W%d", l);
    npz_add_f32(w, n, p.agent->pi_w + pi->w_off[l], 2, sh); /* E = 1: [in][out] row-major */
    snprintf(n, sizeof n, "b%d", l);
    npz_add_f32(w, n, p.agent->pi_w + pi->b_off[l], 1, sh + 1);
  }
  int od = p.task->obs_dim, hl = pi->nlayers - 1;
  npz_add_i32(w, "obs_dim", &od, 0, NULL);
  npz_add_i32(w, "act_dim", &ad, 0, NULL);
  npz_add_i32(w, "hidden_layers", &hl, 0, NULL);
  double lo[ENV_MAX_ACT], hi[ENV_MAX_ACT];
  for (int i = 0; i < ad; i++) {
    lo[i] = m->actuator_ctrlrange[2 * i];
    hi[i] = m->actuator_ctrlrange[2 * i + 1];
  }
  long sa[1] = {ad};
  npz_add_f64(w, "action_low", lo, 1, sa);
  npz_add_f64(w, "action_high", hi, 1, sa);
  float lsmin = SAC_LOG_STD_MIN, lsmax = SAC_LOG_STD_MAX;
  npz_add_f32(w, "log_std_min", &lsmin, 0, NULL);
  npz_add_f32(w, "log_std_max", &lsmax, 0, NULL);
  long st[1] = {(long)strlen(p.task->name)};
  npz_add_u8(w, "task", (const unsigned char*)p.task->name, 1, st);
  st[0] = (long)strlen(ENV_VERSION);
  npz_add_u8(w, "env_version", (const unsigned char*)ENV_VERSION, 1, st);
  mj_deleteModel(m);
  int rc = npz_finish(w, outp, err, sizeof err);
  if (rc != 0) {
    run_policy_free(&p);
    mbpo_fatal("cannot write %s: %s", outp, err);
  }
  printf("%s: wrote %s (policy of %s: %d -> %d x %d -> %d, task %s, %s)\n", run, outp, p.ckpt, od,
         hl, pi->dims[1], pi->dims[pi->nlayers], p.task->name, ENV_VERSION);
  run_policy_free(&p);
  return 0;
}
