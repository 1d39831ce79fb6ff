/* test_sweep.c: sweeps (sweep.h): lists into a population (product order, zip, the rollout_schedule
 * alias), per-run tags and folders, every error, the INI [sweep] section, cli_resolve_population
 * (in forked children where it exits) and `mbpo config` listing a population (MBPO_BIN). */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "run.h"
#include "sweep.h"
#include "test.h"
#include "tmp_files.h"


/* The hopper preset as the base of a sweep. */
static mbpo_config hopper(void) {
  mbpo_config c;
  char err[512];
  cfg_defaults(&c);
  if (cfg_load_preset(&c, "hopper", err, sizeof err)) {
    fprintf(stderr, "hopper preset: %s\n", err);
    exit(2);
  }
  return c;
}

/* sweep_add that must succeed */
static void add_ok(sweep_spec* s, const char* key, const char* value) {
  char err[1200] = "";
  CHECK(sweep_add(s, key, value, err, sizeof err) == 0, "%s=%s: %s", key, value, err);
}

/* sweep_add that must fail with a message holding want and want2 (NULL: anything) */
static void add_bad(const char* key, const char* value, const char* want, const char* want2) {
  sweep_spec s;
  char err[1200] = "";
  sweep_init(&s);
  int r = sweep_add(&s, key, value, err, sizeof err);
  CHECK(r != 0, "sweep.%s=%s was accepted", key, value);
  CHECK(want == NULL || strstr(err, want), "sweep.%s=%s: '%s' lacks '%s'", key, value, err, want);
  CHECK(want2 == NULL || strstr(err, want2), "sweep.%s=%s: '%s' lacks '%s'", key, value, err, want2);
  CHECK(s.nlist == 0, "a refused list was kept");
  sweep_free(&s);
}

/* sweep_expand over the hopper preset that must fail with a message holding want and want2 */
static void expand_bad(sweep_spec* s, const char* want, const char* want2) {
  mbpo_config base = hopper(), *cfgs = (mbpo_config*)1;
  int n = -1;
  char err[1200] = "";
  CHECK(sweep_expand(s, &base, &cfgs, &n, err, sizeof err) != 0, "expanded to %d runs", n);
  CHECK(cfgs == NULL && n == 0, "outputs not cleared on error");
  CHECK(want == NULL || strstr(err, want), "'%s' lacks '%s'", err, want);
  CHECK(want2 == NULL || strstr(err, want2), "'%s' lacks '%s'", err, want2);
}

/* sweep_expand over the hopper preset that must succeed; returns the runs (free them) */
static mbpo_config* expand_ok(const sweep_spec* s, int* n) {
  mbpo_config base = hopper(), *cfgs = NULL;
  char err[1200] = "";
  *n = 0;
  CHECK(sweep_expand(s, &base, &cfgs, n, err, sizeof err) == 0, "%s", err);
  return cfgs;
}

/* ---- the population ----------------------------------------------------------------------- */

static void test_product(void) {
  sweep_spec s;
  sweep_init(&s);
  add_ok(&s, "sweep.seed", "0,1,2");
  add_ok(&s, "sac.lr", "1e-4, 3e-4");
  int n;
  mbpo_config* c = expand_ok(&s, &n);
  CHECK(n == 6, "%d runs", n);
  for (int r = 0; c && r < n; r++) { /* the last key varies fastest */
    CHECK(c[r].seed == r / 2, "run %d seed %ld", r, c[r].seed);
    CHECK(c[r].sac_lr == (r % 2 ? 3e-4 : 1e-4), "run %d lr %g", r, c[r].sac_lr);
    mbpo_config want = hopper();
    want.seed = c[r].seed;
    want.sac_lr = c[r].sac_lr;
    snprintf(want.tag, sizeof want.tag, "mbpo-sac_lr_%s", r % 2 ? "0.0003" : "0.0001");
    CHECK(cfg_equal(&c[r], &want), "run %d differs elsewhere (tag '%s')", r, c[r].tag);
  }
  free(c);
  /* three keys: strides 6, 2, 1 */
  add_ok(&s, "sac.gamma", "0.9,0.99");
  c = expand_ok(&s, &n);
  CHECK(n == 12, "%d runs", n);
  for (int r = 0; c && r < n; r++)
    CHECK(c[r].seed == r / 4 && c[r].sac_lr == ((r / 2) % 2 ? 3e-4 : 1e-4) &&
              c[r].sac_gamma == (r % 2 ? 0.99 : 0.9),
          "run %d: seed %ld lr %g gamma %g", r, c[r].seed, c[r].sac_lr, c[r].sac_gamma);
  free(c);
  /* a key given again replaces its list where it was */
  add_ok(&s, "seed", "5");
  CHECK(s.nlist == 3 && strcmp(s.list[0].key, "seed") == 0 && s.list[0].n == 1, "replace in place");
  c = expand_ok(&s, &n);
  CHECK(n == 4 && c && c[3].seed == 5, "%d runs", n);
  free(c);
  sweep_free(&s);
  CHECK(s.nlist == 0, "sweep_free leaves an empty sweep");
}

static void test_zip(void) {
  sweep_spec s;
  sweep_init(&s);
  add_ok(&s, "sac.gamma", "0.9,0.99");
  add_ok(&s, "seed", "0,1,2");
  add_ok(&s, "sac.lr", "1e-4,2e-4,3e-4");
  add_ok(&s, "zip", "sac.lr, sweep.seed");
  int n;
  mbpo_config* c = expand_ok(&s, &n);
  CHECK(n == 6, "%d runs", n);
  static const double lr[3] = {1e-4, 2e-4, 3e-4};
  for (int r = 0; c && r < n; r++) /* factors: gamma, then (seed, lr) where seed was given */
    CHECK(c[r].sac_gamma == (r < 3 ? 0.9 : 0.99) && c[r].seed == r % 3 && c[r].sac_lr == lr[r % 3],
          "run %d: gamma %g seed %ld lr %g", r, c[r].sac_gamma, c[r].seed, c[r].sac_lr);
  free(c);
  /* two groups */
  add_ok(&s, "sac.tau", "0.005,0.01");
  add_ok(&s, "zip", "seed,sac.lr;sac.gamma,sac.tau");
  c = expand_ok(&s, &n);
  CHECK(n == 6, "%d runs", n);
  for (int r = 0; c && r < n; r++)
    CHECK(c[r].sac_gamma == (r < 3 ? 0.9 : 0.99) && c[r].sac_tau == (r < 3 ? 0.005 : 0.01) &&
              c[r].seed == r % 3,
          "run %d: gamma %g tau %g seed %ld", r, c[r].sac_gamma, c[r].sac_tau, c[r].seed);
  free(c);
  /* unequal lengths, an unswept key, a key twice */
  add_ok(&s, "zip", "seed,sac.gamma");
  expand_bad(&s, "sweep.zip", "equal length");
  add_ok(&s, "zip", "seed,sac.lrr");
  expand_bad(&s, "'sac.lrr', which is not swept", "swept: sac.gamma, seed, sac.lr, sac.tau");
  add_ok(&s, "zip", "seed,sac.lr;seed,sac.gamma");
  expand_bad(&s, "names 'seed' twice", NULL);
  sweep_free(&s);
  add_ok(&s, "zip", "seed");
  expand_bad(&s, "not swept (swept: none)", NULL);
  sweep_free(&s);
}

static void test_schedule_alias(void) {
  sweep_spec s;
  sweep_init(&s);
  add_ok(&s, "sweep.rollout_schedule", "20:150:1:15; 20:100:1:5");
  CHECK(s.nlist == 1 && s.list[0].n == 2 && strcmp(s.list[0].values[1], "20:100:1:5") == 0,
        "items");
  int n;
  mbpo_config* c = expand_ok(&s, &n);
  CHECK(n == 2, "%d runs", n);
  if (c && n == 2) {
    CHECK(c[0].rollout_min_epoch == 20 && c[0].rollout_max_epoch == 150 &&
              c[0].rollout_min_length == 1 && c[0].rollout_max_length == 15,
          "run 1 schedule");
    CHECK(c[1].rollout_min_epoch == 20 && c[1].rollout_max_epoch == 100 &&
              c[1].rollout_min_length == 1 && c[1].rollout_max_length == 5,
          "run 2 schedule");
    CHECK(strcmp(c[0].tag, "mbpo-rollout_schedule_20_150_1_15") == 0, "tag '%s'", c[0].tag);
    CHECK(strcmp(c[1].tag, "mbpo-rollout_schedule_20_100_1_5") == 0, "tag '%s'", c[1].tag);
  }
  free(c);
  /* ',' between items too (inside an .ini, ' ;' starts a comment); canonical numbers */
  add_ok(&s, "rollout_schedule", " 1e1 :30:2:4 ,10:40:1:1");
  CHECK(s.list[0].n == 2 && strcmp(s.list[0].values[0], "10:30:2:4") == 0, "'%s'",
        s.list[0].values[0]);
  sweep_free(&s);
  add_bad("rollout_schedule", "20:150:1", "is not min_epoch:max_epoch:min_length:max_length", NULL);
  add_bad("rollout_schedule", "20:150:1:15:3", "is not min_epoch:max_epoch", NULL);
  add_bad("rollout_schedule", "20:150:1:0", "item 1", "'rollout.max_length' = 0 is out of range");
  add_bad("rollout_schedule", "20:150:1:15;20:x:1:1", "item 2", "'rollout.max_epoch'");
  add_bad("rollout_schedule", "20:150:1:15;;20:150:1:1", "item 2 is empty", NULL);
  /* the alias and one of its settings swept together */
  add_ok(&s, "rollout.max_length", "5,10");
  char err[600] = "";
  CHECK(sweep_add(&s, "rollout_schedule", "20:150:1:15", err, sizeof err) != 0 &&
            strstr(err, "both set rollout.max_length"),
        "'%s'", err);
  CHECK(sweep_setter(&s, "rollout.max_length") && !sweep_setter(&s, "rollout.min_epoch"), "setter");
  sweep_free(&s);
  add_ok(&s, "rollout_schedule", "20:150:1:15");
  CHECK(sweep_setter(&s, "rollout.min_epoch") && sweep_setter(&s, "rollout.max_length") &&
            strcmp(sweep_setter(&s, "rollout.min_length"), "rollout_schedule") == 0 &&
            !sweep_setter(&s, "seed"),
        "alias setter");
  /* an item the schedule checks refuse, named by the run's values */
  add_ok(&s, "rollout_schedule", "20:150:1:15;150:20:1:15");
  expand_bad(&s, "sweep run 2 of 2 (rollout_schedule=150:20:1:15)", "is after rollout.max_epoch");
  sweep_free(&s);
}

static void test_tags_and_folders(void) {
  sweep_spec s;
  sweep_init(&s);
  add_ok(&s, "seed", "3,4");
  add_ok(&s, "sac.target_entropy", "-1,-2.5");
  add_ok(&s, "model.lr", "1e-7");
  int n;
  mbpo_config* c = expand_ok(&s, &n);
  CHECK(n == 4, "%d runs", n);
  char path[1200];
  static const char* const want[4] = {
      "runs/hopper-mbpo-sac_target_entropy_-1-model_lr_1e-7-s3",
      "runs/hopper-mbpo-sac_target_entropy_-2.5-model_lr_1e-7-s3",
      "runs/hopper-mbpo-sac_target_entropy_-1-model_lr_1e-7-s4",
      "runs/hopper-mbpo-sac_target_entropy_-2.5-model_lr_1e-7-s4",
  };
  for (int r = 0; c && r < n; r++) {
    run_path(&c[r], path, sizeof path);
    CHECK(strcmp(path, want[r]) == 0, "run %d: %s", r, path);
  }
  free(c);
  /* only seeds: the base tag */
  sweep_free(&s);
  add_ok(&s, "seed", "0,1");
  c = expand_ok(&s, &n);
  CHECK(n == 2 && c && strcmp(c[0].tag, "mbpo") == 0 && strcmp(c[1].tag, "mbpo") == 0, "seed tags");
  free(c);
  /* no sweep: the base itself */
  sweep_free(&s);
  mbpo_config base = hopper();
  c = expand_ok(&s, &n);
  CHECK(n == 1 && c && cfg_equal(&c[0], &base), "an empty sweep is the base");
  free(c);
  sweep_free(&s);
}

/* ---- errors ------------------------------------------------------------------------------- */

static void test_errors(void) {
  /* unknown keys name the closest valid one */
  add_bad("sweep.sac.lrr", "1", "unknown sweep key 'sweep.sac.lrr'", "did you mean 'sweep.sac.lr'");
  add_bad("rollout_schedul", "1", "did you mean 'sweep.rollout_schedule'", NULL);
  add_bad("seeds", "1", "did you mean 'sweep.seed'", NULL);
  /* settings that cannot be swept, with the reason */
  static const char* const fixed[] = {
      "task", "device", "threads", "run_dir", "tag", "model_dir", "tf32", "model.ensemble",
      "model.elites", "model.hidden", "model.layers", "model.batch", "model.weight_decay",
      "sac.updates", "sac.batch", "sac.hidden", "sac.layers", "rollout.batch", "epoch_length",
      "model.train_freq", "real_pool_size"};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    add_bad(fixed[i], "1", "cannot be swept", "run a separate command for each value");
  add_bad("model.hidden", "100,200", "changes tensor shapes", NULL);
  add_bad("sac.updates", "10,20", "lockstep", NULL);
  add_bad("device", "cpu", "one per process", NULL);
  /* bad values name the key and the item */
  add_bad("sac.lr", "1e-4,x", "sweep.sac.lr item 2", "setting 'sac.lr' = 'x' is not a finite number");
  add_bad("seed", "0,-1", "item 2", "'seed' = -1 is out of range");
  add_bad("steps", "1.5", "'steps' = '1.5' is not an integer", NULL);
  add_bad("seed", "0,,1", "item 2 is empty", NULL);
  add_bad("seed", "", "item 1 is empty", NULL);
  /* more than 256 values in one list, or in the product */
  char big[4000] = "";
  int len = 0;
  for (int i = 0; i <= SWEEP_MAX_RUNS; i++)
    len += snprintf(big + len, sizeof big - (size_t)len, "%s%d", i ? "," : "", i);
  add_bad("seed", big, "more than 256 values", NULL);
  sweep_spec s;
  sweep_init(&s);
  add_ok(&s, "seed", "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16");
  const char* taus = "0.001,0.002,0.003,0.004,0.005,0.006,0.007,0.008,0.009,0.01,0.02,0.03,0.04,0.05,"
                     "0.06,0.07";
  add_ok(&s, "sac.tau", taus);
  expand_bad(&s, "the sweep makes 272 runs (17 x 16)", "at most 256");
  add_ok(&s, "sac.tau",
         "0.001,0.002,0.003,0.004,0.005,0.006,0.007,0.008,0.009,0.01,0.02,0.03,0.04,0.05");
  add_ok(&s, "seed", "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17");
  int n;
  mbpo_config* c = expand_ok(&s, &n);
  CHECK(n == 252, "%d runs", n); /* 18 x 14 */
  free(c);
  sweep_free(&s);
  /* duplicate values: two runs in one folder (1e-3 and 0.001 are the same value) */
  add_ok(&s, "seed", "0,1,0");
  expand_bad(&s, "sweep runs 1 and 3 (seed=0) would share the run folder runs/hopper-mbpo-s0", NULL);
  add_ok(&s, "seed", "0");
  add_ok(&s, "sac.lr", "1e-3,0.001");
  expand_bad(&s, "would share the run folder runs/hopper-mbpo-sac_lr_0.001-s0", NULL);
  sweep_free(&s);
  /* a run that does not validate names its values */
  add_ok(&s, "seed", "0,1");
  add_ok(&s, "rollout.min_epoch", "20,151");
  expand_bad(&s, "sweep run 2 of 4 (seed=0, rollout.min_epoch=151)", "is after rollout.max_epoch");
  sweep_free(&s);
  /* the tag grows past its limit */
  mbpo_config base = hopper(), *out = NULL;
  char err[1200];
  memset(base.tag, 'x', 240);
  base.tag[240] = 0;
  add_ok(&s, "sac.target_entropy", "-1.125");
  CHECK(sweep_expand(&s, &base, &out, &n, err, sizeof err) != 0 && strstr(err, "longer than 255"),
        "'%s'", err);
  sweep_free(&s);
  /* too many keys */
  static const char* const keys[] = {"seed", "steps", "init_steps", "min_pool", "max_path_length",
                                     "model.lr", "model.logvar_coef", "sac.reward_scale",
                                     "model.max_holdout", "model.patience", "model.improvement",
                                     "model.max_epochs", "model.retain_epochs", "sac.real_ratio",
                                     "sac.lr", "sac.gamma", "sac.tau"};
  for (int i = 0; i < SWEEP_MAX_KEYS; i++) add_ok(&s, keys[i], "1");
  CHECK(sweep_add(&s, keys[SWEEP_MAX_KEYS], "0.5", err, sizeof err) != 0 &&
            strstr(err, "at most 16 keys"),
        "'%s'", err);
  sweep_free(&s);
}

/* ---- the command line and INI files --------------------------------------------------------- */

/* Run cli_resolve_population (population = 1) or cli_resolve_config on args in a child, which
 * exits on bad input; its stderr into out. The exit status, or -1. */
static int resolve_child(int argc, char** argv, int population, char* out, size_t n) {
  int fd[2];
  if (pipe(fd)) return -2;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    dup2(fd[1], 2);
    mbpo_config* c = NULL;
    int k = 0;
    if (population) {
      cli_resolve_population(argc, argv, 1, &c, &k);
      free(c);
    } else {
      mbpo_config one;
      cli_resolve_config(argc, argv, 1, &one);
    }
    _exit(0);
  }
  close(fd[1]);
  size_t len = 0;
  ssize_t got;
  while (len + 1 < n && (got = read(fd[0], out + len, n - 1 - len)) > 0) len += (size_t)got;
  out[len] = 0;
  char sink[512];
  while (read(fd[0], sink, sizeof sink) > 0) {
  }
  close(fd[0]);
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define ARGV(...) ((char*[]){"train", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char*[]){"train", __VA_ARGS__}) / sizeof(char*)))

/* cli_resolve_population(args) must exit 1 with a message holding want */
#define RESOLVE_BAD(want, ...)                                                                   \
  do {                                                                                           \
    char out_[4096];                                                                             \
    int rc_ = resolve_child(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), 1, out_, sizeof out_);            \
    CHECK(rc_ == 1 && strstr(out_, want), "exit %d, '%s' lacks '%s'", rc_, out_, want);          \
  } while (0)

static void test_no_sweep_equals_config(void) {
  char* a1[] = {"train", "hopper", NULL};
  char* a2[] = {"train", "walker2d", "sac.lr=1e-4", "seed=3", "tag=x", NULL};
  char* a3[] = {"train", "seed=2", NULL};
  char** all[] = {a1, a2, a3};
  int argcs[] = {2, 5, 2};
  for (int i = 0; i < 3; i++) {
    mbpo_config one, *pop = NULL;
    int n = 0;
    cli_resolve_config(argcs[i], all[i], 1, &one);
    cli_resolve_population(argcs[i], all[i], 1, &pop, &n);
    CHECK(n == 1 && pop && cfg_equal(&one, &pop[0]), "case %d: %d runs, or not cfg_equal", i, n);
    free(pop);
  }
}

static void test_cli(void) {
  mbpo_config* c = NULL;
  int n = 0;
  char* args[] = {"train", "hopper", "tag=t", "sweep.seed=0,1,2,3,4",
                  "sweep.rollout_schedule=20:150:1:15;20:150:1:1", "sac.lr=1e-4", NULL};
  cli_resolve_population(6, args, 1, &c, &n);
  CHECK(n == 10, "%d runs", n);
  char path[1200];
  if (c && n == 10) {
    run_path(&c[9], path, sizeof path);
    CHECK(strcmp(path, "runs/hopper-t-rollout_schedule_20_150_1_1-s4") == 0, "%s", path);
    CHECK(c[9].sac_lr == 1e-4 && c[9].rollout_max_length == 1 && c[8].rollout_max_length == 15,
          "run 10 settings");
  }
  free(c);
  RESOLVE_BAD("argument 'seed=3': seed is also swept by sweep.seed", "hopper", "sweep.seed=0,1",
              "seed=3");
  RESOLVE_BAD("rollout.max_length is also swept by sweep.rollout_schedule", "hopper",
              "rollout.max_length=3", "sweep.rollout_schedule=20:150:1:15");
  RESOLVE_BAD("argument 'sweep.sac.lrr=1': unknown sweep key 'sweep.sac.lrr' (did you mean "
              "'sweep.sac.lr'?)",
              "hopper", "sweep.sac.lrr=1");
  RESOLVE_BAD("sweep.model.hidden: model.hidden changes tensor shapes", "hopper",
              "sweep.model.hidden=5,6");
  RESOLVE_BAD("sweep.zip: sweep.seed has 2 values but sweep.sac.lr has 3", "hopper", "sweep.seed=0,1",
              "sweep.sac.lr=1e-4,2e-4,3e-4", "sweep.zip=seed,sac.lr");
  /* cli_resolve_config refuses sweeps (they are for train and config) */
  char out[4096];
  int rc = resolve_child(3, ARGV("hopper", "sweep.seed=0,1"), 0, out, sizeof out);
  CHECK(rc == 1 && strstr(out, "argument 'sweep.seed=0,1': sweeps are read by `mbpo train`"),
        "exit %d: '%s'", rc, out);
}

static void test_ini_section(void) {
  char path[512], bad[512], err[1200];
  snprintf(path, sizeof path, "%s/s.ini", g_tmp);
  write_text(path,
             "task = hopper\nseed = 7\n\n[sac]\nlr = 1e-4\n\n[sweep]\nseed = 0, 1\n"
             "rollout_schedule = 20:150:1:15, 20:100:1:5 ; the second is shorter\nzip = \n");
  /* through the reader's hook */
  mbpo_config c;
  sweep_spec s;
  sweep_init(&s);
  cfg_defaults(&c);
  CHECK(cfg_load_preset_section(&c, path, "sweep", NULL, NULL, err, sizeof err) != 0 &&
            strstr(err, "s.ini:8: unknown setting 'sweep.seed'"),
        "without a hook: '%s'", err);
  cfg_defaults(&c);
  CHECK(cfg_load_ini(&c, path, err, sizeof err) != 0 && strstr(err, "unknown setting 'sweep.seed'"),
        "cfg_load_ini keeps refusing [sweep]: '%s'", err);
  /* through the command line */
  mbpo_config* pop = NULL;
  int n = 0;
  char* args[] = {"train", path, NULL};
  cli_resolve_population(2, args, 1, &pop, &n);
  CHECK(n == 4, "%d runs", n);
  for (int r = 0; pop && r < n; r++)
    CHECK(pop[r].seed == r / 2 && pop[r].sac_lr == 1e-4 &&
              pop[r].rollout_max_length == (r % 2 ? 5 : 15),
          "run %d: seed %ld lr %g k %ld", r, pop[r].seed, pop[r].sac_lr, pop[r].rollout_max_length);
  free(pop);
  /* the command line's sweep.seed replaces the file's list */
  char* args2[] = {"train", path, "sweep.seed=9", NULL};
  cli_resolve_population(3, args2, 1, &pop, &n);
  CHECK(n == 2 && pop && pop[0].seed == 9 && pop[1].seed == 9, "%d runs", n);
  free(pop);
  /* errors carry file:line */
  snprintf(bad, sizeof bad, "%s/bad.ini", g_tmp);
  write_text(bad, "[sweep]\nseed = 0,1\nhidden = 3\n");
  RESOLVE_BAD("bad.ini:3: unknown sweep key 'sweep.hidden'", bad);
  write_text(bad, "[sweep]\nseed = 0,1\nsac.lr = 1e-4,big\n");
  RESOLVE_BAD("bad.ini:3: sweep.sac.lr item 2: setting 'sac.lr' = 'big'", bad);
  write_text(bad, "seed = 1\n[sweep]\nmodel.ensemble = 5,7\n");
  RESOLVE_BAD("bad.ini:3: sweep.model.ensemble: model.ensemble changes tensor shapes", bad);
  /* commands other than train and config refuse a [sweep] section */
  char out[4096];
  int rc = resolve_child(2, ARGV(path), 0, out, sizeof out);
  CHECK(rc == 1 && strstr(out, "s.ini:8: [sweep] seed: sweeps are read by `mbpo train`"),
        "exit %d: '%s'", rc, out);
  sweep_free(&s);
}

/* `mbpo config` lists the population after the settings. */
static void test_config_command(void) {
  const char* bin = getenv("MBPO_BIN");
  if (!bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  char cmd[1024], out[16384];
  snprintf(cmd, sizeof cmd,
           "'%s' config hopper 'sweep.seed=0,1' 'sweep.rollout_schedule=20:150:1:15;20:150:1:1' 2>&1",
           bin);
  FILE* p = popen(cmd, "r");
  if (!p) SKIP("popen failed");
  size_t len = fread(out, 1, sizeof out - 1, p);
  out[len] = 0;
  int st = pclose(p);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
  CHECK(strstr(out, "population: 4 runs"), "no population line in:\n%s", out);
  CHECK(strstr(out, "\n  runs/hopper-mbpo-rollout_schedule_20_150_1_1-s1   seed=1  "
                    "rollout.max_length=1\n"),
        "no run line in:\n%s", out);
}

/* The listing of sweep_print. */
static void test_print(void) {
  sweep_spec s;
  sweep_init(&s);
  add_ok(&s, "seed", "0,1");
  add_ok(&s, "sac.lr", "1e-4,3e-4");
  add_ok(&s, "zip", "seed,sac.lr");
  int n;
  mbpo_config* c = expand_ok(&s, &n);
  char buf[4096] = "";
  FILE* f = fmemopen(buf, sizeof buf - 1, "w");
  if (f && c) {
    sweep_print(c, n, f);
    fclose(f);
    CHECK(strstr(buf, "population: 2 runs") &&
              strstr(buf, "  runs/hopper-mbpo-sac_lr_0.0001-s0  seed=0  sac.lr=0.0001\n") &&
              strstr(buf, "  runs/hopper-mbpo-sac_lr_0.0003-s1  seed=1  sac.lr=0.0003\n"),
          "listing:\n%s", buf);
  }
  free(c);
  sweep_free(&s);
}

int main(void) {
  const char* t = getenv("TMPDIR");
  snprintf(g_tmp, sizeof g_tmp, "%s/test_sweep.XXXXXX", t && t[0] ? t : "/tmp");
  if (!mkdtemp(g_tmp)) {
    perror("mkdtemp");
    return 2;
  }
  RUN(test_product);
  RUN(test_zip);
  RUN(test_schedule_alias);
  RUN(test_tags_and_folders);
  RUN(test_errors);
  RUN(test_no_sweep_equals_config);
  RUN(test_cli);
  RUN(test_ini_section);
  RUN(test_config_command);
  RUN(test_print);
  char path[600];
  snprintf(path, sizeof path, "%s/s.ini", g_tmp);
  remove(path);
  snprintf(path, sizeof path, "%s/bad.ini", g_tmp);
  remove(path);
  rmdir(g_tmp);
  return test_done();
}
