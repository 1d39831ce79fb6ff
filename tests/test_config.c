/* test_config.c: the settings table, value parsing, INI files, presets, validation, and the `mbpo`
 * command line's answers to good and bad input (through the real binary, MBPO_BIN). */
#include <dirent.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "env.h"
#include "sh_capture.h"
#include "test.h"
#include "tmp_files.h"

/* ---- helpers ------------------------------------------------------------------------------ */


static const char* tmp_path(const char* name, char* buf, size_t n) {
  if (strlen(g_tmp) + strlen(name) + 2 > n) exit(2);
  snprintf(buf, n, "%.200s/%.200s", g_tmp, name);
  return buf;
}

static int count_entries(const char* dir) {
  DIR* d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent* e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

static long get_long(const mbpo_config* c, const cfg_desc* d) {
  return *(const long*)((const char*)c + d->offset);
}
static double get_double(const mbpo_config* c, const cfg_desc* d) {
  return *(const double*)((const char*)c + d->offset);
}
static int get_int(const mbpo_config* c, const cfg_desc* d) {
  return *(const int*)((const char*)c + d->offset);
}

/* cfg_set that must succeed */
static int set_ok(mbpo_config* c, const char* key, const char* value) {
  char err[512] = "";
  int r = cfg_set(c, key, value, err, sizeof err);
  CHECK(r == 0, "%s=%s: %s", key, value, err);
  return r;
}

/* cfg_set that must fail with a message containing want (NULL: any message); the value stays */
static void set_bad(const char* key, const char* value, const char* want) {
  mbpo_config c, before;
  char err[512] = "";
  cfg_defaults(&c);
  before = c;
  int r = cfg_set(&c, key, value, err, sizeof err);
  CHECK(r != 0, "%s=%s was accepted", key, value);
  CHECK(err[0], "%s=%s: no message", key, value);
  if (want) CHECK(strstr(err, want) != NULL, "%s=%s: message '%s' lacks '%s'", key, value, err, want);
  CHECK(cfg_equal(&c, &before), "%s=%s: a failed set changed the config", key, value);
}

/* Run `mbpo ARGS` (cwd = the repo root unless dir is given). Captures stdout and/or stderr into
 * out (what = "out", "err", "both", or "none" when args redirect themselves). Returns the exit status, -1 when killed by a signal. */
static int run_cli(const char* dir, const char* args, const char* what, char* out, size_t n) {
  const char* bin = getenv("MBPO_BIN");
  char cmd[4096];
  const char* redir = strcmp(what, "out") == 0    ? "2>/dev/null"
                      : strcmp(what, "err") == 0  ? "2>&1 >/dev/null"
                      : strcmp(what, "both") == 0 ? "2>&1"
                                                  : ""; /* "none": args redirect themselves */
  snprintf(cmd, sizeof cmd, "%s%s%s'%s' %s %s", dir ? "cd '" : "", dir ? dir : "", dir ? "' && " : "",
           bin, args, redir);
  return sh_read(cmd, out, n);
}

/* ---- the table and the defaults ---------------------------------------------------------- */

#define COUNT_(kind, f, key, def, lo, hi, extra, help) +1
#define CHECK_ROW_(K, f, key, def, lo, hi, extra, help)                                       \
  do {                                                                                          \
    const cfg_desc* d_ = cfg_find(key);                                                         \
    CHECK(d_ != NULL, "%s not found", key);                                                     \
    if (d_) {                                                                                   \
      CHECK(d_->offset == offsetof(mbpo_config, f), "%s: offset", key);                          \
      CHECK(d_->kind == CFG_##K, "%s: kind", key);                                                  \
    }                                                                                           \
  } while (0);

static void test_table(void) {
  CHECK(cfg_count() == 0 MBPO_SETTINGS(COUNT_), "cfg_count %d", cfg_count());
  MBPO_SETTINGS(CHECK_ROW_)
  for (int i = 0; i < cfg_count(); i++) {
    const cfg_desc* d = cfg_at(i);
    CHECK(cfg_find(d->key) == d, "%s is not unique", d->key);
    CHECK(d->help && d->help[0], "%s has no help", d->key);
    if (d->kind == CFG_INT || d->kind == CFG_FLT)
      CHECK(d->lo <= d->def && d->def <= d->hi, "%s: default outside its range", d->key);
  }
  CHECK(cfg_at(-1) == NULL && cfg_at(cfg_count()) == NULL, "cfg_at out of range");
  CHECK(cfg_find("nope") == NULL && cfg_find(NULL) == NULL, "cfg_find of unknown keys");
}

static void test_defaults(void) {
  mbpo_config c;
  char err[512];
  cfg_defaults(&c);
  for (int i = 0; i < cfg_count(); i++) {
    const cfg_desc* d = cfg_at(i);
    const char* p = (const char*)&c + d->offset;
    switch (d->kind) {
      case CFG_INT: CHECK(get_long(&c, d) == (long)d->def, "%s", d->key); break;
      case CFG_FLT: CHECK(get_double(&c, d) == d->def, "%s", d->key); break;
      case CFG_BOOL:
      case CFG_ENUM: CHECK(get_int(&c, d) == (int)d->def, "%s", d->key); break;
      case CFG_STR: CHECK(strcmp(p, d->extra) == 0, "%s = '%s'", d->key, p); break;
      case CFG_LIST: {
        char buf[256];
        cfg_format_value(&c, d, buf, sizeof buf);
        mbpo_config e;
        cfg_defaults(&e);
        CHECK(cfg_set(&e, d->key, d->extra, err, sizeof err) == 0, "%s: %s", d->key, err);
        CHECK(cfg_equal(&c, &e), "%s default %s != %s", d->key, buf, d->extra);
        break;
      }
    }
  }
  /* the official values (docs/algorithm.md §3, §7, §10) */
  CHECK(strcmp(c.task, "hopper") == 0, "task");
  CHECK(c.model_ensemble == 7 && c.model_elites == 5 && c.model_hidden == 200 && c.model_layers == 4,
        "model shape");
  CHECK(c.model_weight_decay.n == 5 && c.model_weight_decay.v[0] == 2.5e-5 &&
            c.model_weight_decay.v[4] == 1e-4,
        "weight decay");
  CHECK(c.sac_batch == 256 && c.sac_real_ratio == 0.05 && c.sac_lr == 3e-4 && c.model_lr == 1e-3,
        "sac");
  CHECK(c.rollout_batch == 100000 && c.real_pool_size == 1000000, "pools");
  CHECK(c.device == CFG_DEVICE_AUTO && c.tf32 == 0, "device");
  CHECK(cfg_validate(&c, err, sizeof err) == 0, "defaults do not validate: %s", err);
}

/* ---- one value ---------------------------------------------------------------------------- */

static void test_set_int(void) {
  mbpo_config c;
  cfg_defaults(&c);
  set_ok(&c, "steps", "125000");
  CHECK(c.steps == 125000, "%ld", c.steps);
  set_ok(&c, "steps", "1e6");
  CHECK(c.steps == 1000000, "%ld", c.steps);
  set_ok(&c, "steps", "2.5e4");
  CHECK(c.steps == 25000, "%ld", c.steps);
  set_ok(&c, "seed", " +7 ");
  CHECK(c.seed == 7, "%ld", c.seed);
  set_ok(&c, "seed", "2147483647");
  CHECK(c.seed == 2147483647L, "%ld", c.seed);
  set_bad("seed", "12abc", "not an integer");
  set_bad("seed", "1.5", "not an integer");
  set_bad("seed", "1e-1", "not an integer");
  set_bad("seed", "0x10", "not an integer");
  set_bad("seed", "", "no value");
  set_bad("seed", "  ", "no value");
  set_bad("seed", "nan", "not an integer");
  set_bad("seed", "-1", "out of range [0, 2147483647]");
  set_bad("seed", "1e400", "out of range");
  set_bad("seed", "99999999999999999999999", "out of range");
  set_bad("model.ensemble", "65", "out of range [1, 64]");
  char err[256];
  CHECK(cfg_set(&c, "model.ensemble", "0", err, sizeof err) != 0, "accepted");
  CHECK(strcmp(err, "setting 'model.ensemble' = 0 is out of range [1, 64]") == 0, "%s", err);
}

static void test_set_float(void) {
  mbpo_config c;
  cfg_defaults(&c);
  set_ok(&c, "sac.lr", "1e-4");
  CHECK(c.sac_lr == 1e-4, "%g", c.sac_lr);
  set_ok(&c, "sac.target_entropy", "-0.05");
  CHECK(c.sac_target_entropy == -0.05, "%g", c.sac_target_entropy);
  set_ok(&c, "sac.gamma", "1");
  CHECK(c.sac_gamma == 1.0, "%g", c.sac_gamma);
  set_ok(&c, "sac.tau", ".5");
  CHECK(c.sac_tau == 0.5, "%g", c.sac_tau);
  set_bad("sac.lr", "nan", "not a finite number");
  set_bad("sac.lr", "inf", "not a finite number");
  set_bad("sac.lr", "-inf", "not a finite number");
  set_bad("sac.lr", "1e-3x", "not a finite number");
  set_bad("sac.lr", "0x1p-3", "not a finite number");
  set_bad("sac.lr", "1e999", "out of range");
  set_bad("sac.lr", "2", "setting 'sac.lr' = 2 is out of range [1e-8, 1]");
  set_bad("sac.gamma", "-0.1", "out of range [0, 1]");
}

static void test_set_bool_enum(void) {
  mbpo_config c;
  cfg_defaults(&c);
  const char* yes[] = {"true", "1", "yes", "on", "TRUE", "On"};
  const char* no[] = {"false", "0", "no", "off", "False", "NO"};
  for (int i = 0; i < 6; i++) {
    set_ok(&c, "tf32", yes[i]);
    CHECK(c.tf32 == 1, "%s", yes[i]);
    set_ok(&c, "tf32", no[i]);
    CHECK(c.tf32 == 0, "%s", no[i]);
  }
  set_bad("tf32", "maybe", "not a boolean");
  set_bad("tf32", "2", "not a boolean");
  set_ok(&c, "device", "cpu");
  CHECK(c.device == CFG_DEVICE_CPU, "%d", c.device);
  set_ok(&c, "device", "cuda");
  CHECK(c.device == CFG_DEVICE_CUDA, "%d", c.device);
  set_bad("device", "gpu", "not one of: auto, cuda, cpu");
  set_bad("device", "CPUx", "auto, cuda, cpu");
}

static void test_set_list_str(void) {
  mbpo_config c;
  cfg_defaults(&c);
  set_ok(&c, "model.weight_decay", "1e-5, 2e-5 ,3e-5");
  CHECK(c.model_weight_decay.n == 3 && c.model_weight_decay.v[1] == 2e-5, "n %d",
        c.model_weight_decay.n);
  set_ok(&c, "model.weight_decay", "0");
  CHECK(c.model_weight_decay.n == 1 && c.model_weight_decay.v[0] == 0, "n %d",
        c.model_weight_decay.n);
  set_ok(&c, "model.weight_decay", "1,1,1,1,1,1,1,1");
  CHECK(c.model_weight_decay.n == CFG_LIST_MAX, "n %d", c.model_weight_decay.n);
  set_bad("model.weight_decay", "1,1,1,1,1,1,1,1,1", "more than 8");
  set_bad("model.weight_decay", ",", "comma-separated");
  set_bad("model.weight_decay", "1,,2", "comma-separated");
  set_bad("model.weight_decay", "1,x", "item 2 'x' is not a number");
  set_bad("model.weight_decay", "1e-5,2", "item 2 = 2 is out of range [0, 1]");
  set_bad("model.weight_decay", "nan", "not a number");

  set_ok(&c, "tag", "my-run_1.a");
  CHECK(strcmp(c.tag, "my-run_1.a") == 0, "%s", c.tag);
  set_ok(&c, "model_dir", "");
  CHECK(c.model_dir[0] == 0, "empty string");
  char s[CFG_STR_MAX + 1];
  memset(s, 'a', CFG_STR_MAX - 1);
  s[CFG_STR_MAX - 1] = 0;
  set_ok(&c, "run_dir", s);
  CHECK(strlen(c.run_dir) == CFG_STR_MAX - 1, "len %zu", strlen(c.run_dir));
  s[CFG_STR_MAX - 1] = 'a';
  s[CFG_STR_MAX] = 0;
  set_bad("run_dir", s, "at most 255");
  set_bad("tag", "a\nb", "control character");
  set_bad("tag", " x", "spaces");
}

static void test_unknown_keys(void) {
  CHECK(strcmp(cfg_closest_key("model.lrr"), "model.lr") == 0, "%s", cfg_closest_key("model.lrr"));
  CHECK(strcmp(cfg_closest_key("sac.lrr"), "sac.lr") == 0, "%s", cfg_closest_key("sac.lrr"));
  CHECK(strcmp(cfg_closest_key("seeds"), "seed") == 0, "%s", cfg_closest_key("seeds"));
  CHECK(strcmp(cfg_closest_key("ensemble"), "model.ensemble") == 0, "%s",
        cfg_closest_key("ensemble"));
  CHECK(strcmp(cfg_closest_key("rollout.max_len"), "rollout.max_length") == 0, "%s",
        cfg_closest_key("rollout.max_len"));
  const char* lr = cfg_closest_key("lr");
  CHECK(strcmp(lr, "model.lr") == 0 || strcmp(lr, "sac.lr") == 0, "%s", lr);
  set_bad("model.lrr", "1", "unknown setting 'model.lrr' (did you mean 'model.lr'?)");
  set_bad("modle.lr", "1", "(did you mean 'model.lr'?)");
  set_bad("lr", "1", "did you mean 'model.lr' or 'sac.lr'?");
  set_bad("batch", "1", "'model.batch', 'rollout.batch' or 'sac.batch'");
  set_bad("", "1", "unknown setting ''");
}

/* every setting: format -> parse gives the same value */
static void test_format_round_trip(void) {
  mbpo_config a, b;
  char buf[512], err[512];
  cfg_defaults(&a);
  set_ok(&a, "sac.lr", "0.1");
  set_ok(&a, "model.lr", "0.00033333333333333332");
  set_ok(&a, "sac.target_entropy", "-123.456789012345678");
  set_ok(&a, "model.weight_decay", "0.1,0.30000000000000004,1e-7,0.3333333333333333");
  set_ok(&a, "device", "cuda");
  set_ok(&a, "tf32", "on");
  set_ok(&a, "tag", "a;b");
  cfg_defaults(&b);
  for (int i = 0; i < cfg_count(); i++) {
    const cfg_desc* d = cfg_at(i);
    cfg_format_value(&a, d, buf, sizeof buf);
    CHECK(cfg_set(&b, d->key, buf, err, sizeof err) == 0, "%s = %s: %s", d->key, buf, err);
  }
  CHECK(cfg_equal(&a, &b), "round trip through cfg_format_value differs");
  cfg_format_value(&a, cfg_find("sac.lr"), buf, sizeof buf);
  CHECK(strcmp(buf, "0.1") == 0, "shortest form: %s", buf);
  cfg_format_value(&a, cfg_find("device"), buf, sizeof buf);
  CHECK(strcmp(buf, "cuda") == 0, "%s", buf);
  cfg_format_value(&a, cfg_find("tf32"), buf, sizeof buf);
  CHECK(strcmp(buf, "true") == 0, "%s", buf);
  b.model_weight_decay.v[3] = nextafter(b.model_weight_decay.v[3], 1.0);
  CHECK(!cfg_equal(&a, &b), "cfg_equal misses a list difference");
}

/* ---- INI files ---------------------------------------------------------------------------- */

static void test_ini_round_trip(void) {
  mbpo_config a, b;
  char path[512], err[1024];
  cfg_defaults(&a);
  set_ok(&a, "task", "walker2d");
  set_ok(&a, "seed", "123456");
  set_ok(&a, "model.lr", "0.00033333333333333332");
  set_ok(&a, "sac.target_entropy", "-2.7182818284590451");
  set_ok(&a, "model.weight_decay", "0.1,0.30000000000000004,1e-7,0.3333333333333333,5e-324");
  set_ok(&a, "device", "cpu");
  set_ok(&a, "tf32", "yes");
  set_ok(&a, "model_dir", "");
  set_ok(&a, "run_dir", "/tmp/some dir/runs");
  tmp_path("round.ini", path, sizeof path);
  FILE* f = fopen(path, "w");
  CHECK(f != NULL, "cannot write %s", path);
  if (!f) return;
  cfg_write_ini(&a, f);
  fclose(f);
  /* read over a different starting point: every setting is in the file */
  cfg_defaults(&b);
  set_ok(&b, "model.ensemble", "3");
  set_ok(&b, "model_dir", "/x");
  CHECK(cfg_load_ini(&b, path, err, sizeof err) == 0, "%s", err);
  CHECK(cfg_equal(&a, &b) == 1, "written and read back configs differ");
  /* the same through the text reader, and the file's shape */
  char* text = NULL;
  size_t len = 0;
  FILE* m = open_memstream(&text, &len);
  cfg_write_ini(&a, m);
  fclose(m);
  cfg_defaults(&b);
  CHECK(cfg_load_ini_text(&b, text, "mem", err, sizeof err) == 0, "%s", err);
  CHECK(cfg_equal(&a, &b) == 1, "text round trip differs");
  CHECK(strstr(text, "\n[model]\n") && strstr(text, "\n[sac]\n") && strstr(text, "\n[rollout]\n"),
        "sections missing");
  CHECK(strstr(text, "\ntask = walker2d\n") && strstr(text, "\nlr = 0.0003333333333333333\n"),
        "values missing:\n%s", text);
  CHECK(strstr(text, "# ensemble members (range [1, 64])\nensemble = 7\n"), "help comment");
  /* top-level keys come before the first section */
  CHECK(strstr(text, "\nseed = ") < strstr(text, "\n["), "top-level keys first");
  free(text);
}

static void test_ini_errors(void) {
  struct {
    const char* text;
    const char* want;
  } cases[] = {
      {"task = hopper\n\n[model]\nlrr = 1e-3\n",
       ":4: unknown setting 'model.lrr' (did you mean 'model.lr'?)"},
      {"[model]\nensemble = 0\n", ":2: setting 'model.ensemble' = 0 is out of range [1, 64]"},
      {"seed = 1\nbogus line\n", ":2: syntax error"},
      {"seed = 1\n[model\nlr = 1\n", ":2: syntax error"},
      {"[model]\nlr = 0.002\nlr = 0.003\n", ":3: setting 'model.lr' is set twice (first on line 2)"},
      {"[modle]\nlr = 1\n", ":2: unknown setting 'modle.lr' (did you mean 'model.lr'?)"},
      {"seed = 12abc\n", ":1: setting 'seed' = '12abc' is not an integer"},
      {"device = gpu\n", ":1: setting 'device' = 'gpu' is not one of: auto, cuda, cpu"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char path[512], err[1024] = "", want[1024], name[32];
    mbpo_config c, before;
    snprintf(name, sizeof name, "bad%zu.ini", (size_t)(i % 1000));
    tmp_path(name, path, sizeof path);
    write_text(path, cases[i].text);
    cfg_defaults(&c);
    before = c;
    CHECK(cfg_load_ini(&c, path, err, sizeof err) != 0, "case %zu accepted", i);
    snprintf(want, sizeof want, "%s%s", path, cases[i].want);
    CHECK(strncmp(err, want, strlen(want)) == 0, "case %zu: '%s' does not start with '%s'", i, err,
          want);
    CHECK(cfg_equal(&c, &before), "case %zu: a failed load changed the config", i);
  }
  /* what is fine: indented keys, inline ';' comments, '#' and ';' comment lines, dotted keys at
   * the top level, a cut long comment */
  char long_comment[400];
  memset(long_comment, 'x', sizeof long_comment - 1);
  long_comment[sizeof long_comment - 1] = 0;
  char text[1200], path[512], err[1024] = "";
  snprintf(text, sizeof text,
           "; comment\n# %s\nmodel.lr = 0.5\n[sac]\n  lr = 0.1 ; inline comment\n\tgamma = 0.9\n",
           long_comment);
  tmp_path("good.ini", path, sizeof path);
  write_text(path, text);
  mbpo_config c;
  cfg_defaults(&c);
  CHECK(cfg_load_ini(&c, path, err, sizeof err) == 0, "%s", err);
  CHECK(c.model_lr == 0.5 && c.sac_lr == 0.1 && c.sac_gamma == 0.9, "%g %g %g", c.model_lr, c.sac_lr,
        c.sac_gamma);
  /* a long setting line is an error, not two lines */
  snprintf(text, sizeof text, "seed = 1\ntag = %s\n", long_comment);
  write_text(path, text);
  CHECK(cfg_load_ini(&c, path, err, sizeof err) != 0, "a long line was accepted");
  CHECK(strstr(err, ":2: line is too long"), "%s", err);
  CHECK(cfg_load_ini(&c, "/nonexistent/x.ini", err, sizeof err) != 0 &&
            strstr(err, "/nonexistent/x.ini"),
        "%s", err);
}

/* ---- presets ------------------------------------------------------------------------------ */

static void test_presets(void) {
  /* docs/algorithm.md §3, Tables A and B */
  static const struct {
    const char* task;
    long steps, E, init, G, F, emin, emax, kmin, kmax, retain, hidden;
    double H;
  } t[] = {
      {"hopper", 125000, 1000, 5000, 20, 250, 20, 150, 1, 15, 1, 200, -1},
      {"walker2d", 300000, 1000, 5000, 20, 250, 20, 150, 1, 1, 1, 200, -3},
      {"halfcheetah", 400000, 1000, 5000, 40, 250, 20, 150, 1, 1, 1, 200, -3},
      {"ant", 300000, 1000, 5000, 20, 250, 20, 100, 1, 25, 1, 200, -4},
      {"humanoid", 300000, 1000, 5000, 20, 1000, 20, 300, 1, 25, 5, 400, -2},
      {"inverted_pendulum", 20000, 250, 500, 10, 250, 1, 15, 1, 1, 1, 200, -0.05},
  };
  const char* root = getenv("MBPO_ROOT");
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    mbpo_config c, f, d;
    char err[1024] = "", path[1024];
    cfg_defaults(&c);
    CHECK(cfg_load_preset(&c, t[i].task, err, sizeof err) == 0, "%s: %s", t[i].task, err);
    CHECK(cfg_validate(&c, err, sizeof err) == 0, "%s: %s", t[i].task, err);
    CHECK(strcmp(c.task, t[i].task) == 0, "%s: task %s", t[i].task, c.task);
    CHECK(c.steps == t[i].steps && c.epoch_length == t[i].E && c.init_steps == t[i].init,
          "%s: steps %ld E %ld init %ld", t[i].task, c.steps, c.epoch_length, c.init_steps);
    CHECK(c.sac_updates == t[i].G && c.model_train_freq == t[i].F, "%s: G %ld F %ld", t[i].task,
          c.sac_updates, c.model_train_freq);
    CHECK(c.rollout_min_epoch == t[i].emin && c.rollout_max_epoch == t[i].emax &&
              c.rollout_min_length == t[i].kmin && c.rollout_max_length == t[i].kmax,
          "%s: schedule", t[i].task);
    CHECK(c.model_retain_epochs == t[i].retain && c.model_hidden == t[i].hidden,
          "%s: retain %ld hidden %ld", t[i].task, c.model_retain_epochs, c.model_hidden);
    CHECK(c.sac_target_entropy == t[i].H, "%s: target entropy %g", t[i].task, c.sac_target_entropy);
    /* what a preset does not set keeps the table default */
    cfg_defaults(&d);
    CHECK(c.model_ensemble == d.model_ensemble && c.sac_real_ratio == d.sac_real_ratio &&
              c.rollout_batch == d.rollout_batch && c.sac_batch == d.sac_batch,
          "%s: shared settings", t[i].task);
    /* "name.ini" and the file on disk give the same */
    snprintf(path, sizeof path, "%s.ini", t[i].task);
    cfg_defaults(&f);
    CHECK(cfg_load_preset(&f, path, err, sizeof err) == 0 && cfg_equal(&c, &f), "%s: %s", path, err);
    snprintf(path, sizeof path, "%s/configs/%s.ini", root ? root : ".", t[i].task);
    cfg_defaults(&f);
    CHECK(cfg_load_preset(&f, path, err, sizeof err) == 0, "%s: %s", path, err);
    CHECK(cfg_equal(&c, &f), "%s: the file and the embedded preset differ (rebuild?)", path);
  }
  /* spot checks as the issue lists them */
  mbpo_config c;
  char err[1024] = "";
  cfg_defaults(&c);
  CHECK(cfg_load_preset(&c, "hopper", err, sizeof err) == 0 && c.sac_updates == 20, "hopper G");
  CHECK(cfg_load_preset(&c, "halfcheetah", err, sizeof err) == 0 && c.sac_updates == 40, "cheetah G");
  cfg_defaults(&c);
  CHECK(cfg_load_preset(&c, "humanoid", err, sizeof err) == 0 && c.model_train_freq == 1000 &&
            c.model_hidden == 400 && c.model_retain_epochs == 5,
        "humanoid");
  cfg_defaults(&c);
  CHECK(cfg_load_preset(&c, "inverted_pendulum", err, sizeof err) == 0 && c.epoch_length == 250 &&
            c.init_steps == 500,
        "inverted_pendulum");
  /* unknown preset: the list */
  mbpo_config before = c;
  CHECK(cfg_load_preset(&c, "hoper", err, sizeof err) != 0, "unknown preset accepted");
  CHECK(strstr(err, "unknown preset 'hoper'") &&
            strstr(err, "hopper, walker2d, halfcheetah, ant, humanoid, inverted_pendulum"),
        "%s", err);
  CHECK(cfg_equal(&c, &before), "a failed preset changed the config");
  CHECK(cfg_load_preset(&c, "nodir/hopper.ini", err, sizeof err) != 0, "missing file accepted");
}

static void test_validate(void) {
  struct {
    const char* key;
    const char* value;
    const char* want;
  } cases[] = {
      {"task", "foo",
       "unknown task 'foo'; tasks: hopper, walker2d, halfcheetah, ant, humanoid, inverted_pendulum"},
      {"model.elites", "8", "model.elites = 8 is more than model.ensemble = 7"},
      {"rollout.min_epoch", "151", "rollout.min_epoch = 151 is after rollout.max_epoch = 150"},
      {"rollout.min_length", "16", "rollout.min_length = 16 is more than rollout.max_length = 15"},
      {"model.layers", "3", "model.weight_decay has 5 values; model.layers = 3 needs 4"},
      {"sac.real_ratio", "0.001", "0 real rows"},
      {"model.train_freq", "1001", "model.train_freq = 1001 is longer than epoch_length = 1000"},
      {"tf32", "1", "tf32 = 1 is not implemented yet"},
      {"min_pool", "2000000", "min_pool = 2000000 is more than real_pool_size"},
      {"rollout.batch", "100000000", "model pool"},
      {"tag", "a/b", "tag 'a/b'"},
      {"tag", "", "tag ''"},
      {"run_dir", "", "run_dir is empty"},
      {"model_dir", "/nonexistent/models", "model_dir '/nonexistent/models' is not a directory"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mbpo_config c;
    char err[1024] = "";
    cfg_defaults(&c);
    set_ok(&c, cases[i].key, cases[i].value);
    CHECK(cfg_validate(&c, err, sizeof err) != 0, "%s=%s validated", cases[i].key, cases[i].value);
    CHECK(strstr(err, cases[i].want) != NULL, "%s=%s: '%s' lacks '%s'", cases[i].key,
          cases[i].value, err, cases[i].want);
  }
  /* fine: equal schedule bounds, no real data, init_steps beyond steps, out-of-range by code */
  mbpo_config c;
  char err[1024] = "";
  cfg_defaults(&c);
  set_ok(&c, "rollout.min_epoch", "150");
  set_ok(&c, "sac.real_ratio", "0");
  set_ok(&c, "init_steps", "200000");
  set_ok(&c, "model.elites", "7");
  CHECK(cfg_validate(&c, err, sizeof err) == 0, "%s", err);
  c.model_ensemble = 0; /* set by code, bypassing cfg_set */
  CHECK(cfg_validate(&c, err, sizeof err) != 0 && strstr(err, "out of range"), "%s", err);
  cfg_defaults(&c);
  c.device = 7;
  CHECK(cfg_validate(&c, err, sizeof err) != 0, "enum index out of range validated");
}

/* ---- the command line ---------------------------------------------------------------------- */

static void test_cli_help(void) {
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  static char out[65536];
  int rc = run_cli(NULL, "--help", "out", out, sizeof out);
  CHECK(rc == 0, "mbpo --help: exit %d", rc);
  CHECK(strstr(out, "train") && strstr(out, "config") && strstr(out, "envs") && strstr(out, "eval"),
        "usage lacks commands:\n%s", out);
  rc = run_cli(NULL, "", "out", out, sizeof out);
  CHECK(rc == 0 && strstr(out, "usage: mbpo"), "mbpo: exit %d", rc);
  rc = run_cli(NULL, "help", "out", out, sizeof out);
  CHECK(rc == 0 && strstr(out, "usage: mbpo"), "mbpo help: exit %d", rc);
  rc = run_cli(NULL, "config --help", "out", out, sizeof out);
  CHECK(rc == 0 && strstr(out, "usage: mbpo config"), "mbpo config --help: exit %d\n%s", rc, out);
  rc = run_cli(NULL, "train --help", "out", out, sizeof out);
  CHECK(rc == 0 && strstr(out, "usage: mbpo train"), "mbpo train --help: exit %d\n%s", rc, out);
  rc = run_cli(NULL, "help envs", "out", out, sizeof out);
  CHECK(rc == 0 && strstr(out, "usage: mbpo envs"), "mbpo help envs: exit %d\n%s", rc, out);
  rc = run_cli(NULL, "frobnicate", "err", out, sizeof out);
  CHECK(rc != 0 && rc != -1 && strstr(out, "unknown command 'frobnicate'") && strstr(out, "usage"),
        "unknown command: exit %d\n%s", rc, out);
}

static void test_cli_config(void) {
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  static char out[65536];
  int rc = run_cli(NULL, "config humanoid seed=3 sac.lr=1e-4", "out", out, sizeof out);
  CHECK(rc == 0, "exit %d", rc);
  CHECK(strstr(out, "model.hidden") && strstr(out, " 400 ") && strstr(out, "sac.lr") &&
            strstr(out, "0.0001") && strstr(out, "[1, 64]") && strstr(out, "auto|cuda|cpu"),
        "config table:\n%s", out);
  /* --ini from any folder (the embedded preset) reads back as the same configuration */
  char cmd[600], path[512], err[1024] = "";
  tmp_path("resolved.ini", path, sizeof path);
  snprintf(cmd, sizeof cmd, "config ant sac.lr=1e-4 --model-dir . --ini > '%s'", path);
  rc = run_cli(g_tmp, cmd, "none", out, sizeof out);
  CHECK(rc == 0, "config --ini: exit %d\n%s", rc, out);
  mbpo_config a, b;
  cfg_defaults(&a);
  cfg_defaults(&b);
  CHECK(cfg_load_preset(&a, "ant", err, sizeof err) == 0, "%s", err);
  set_ok(&a, "sac.lr", "1e-4");
  set_ok(&a, "model_dir", ".");
  CHECK(cfg_load_ini(&b, path, err, sizeof err) == 0, "%s", err);
  CHECK(cfg_equal(&a, &b), "mbpo config --ini does not read back as the resolved config");
  /* a run folder: its config.ini */
  snprintf(cmd, sizeof cmd, "config '%s' seed=9", g_tmp);
  write_text(tmp_path("config.ini", path, sizeof path), "task = walker2d\n[sac]\nupdates = 7\n");
  rc = run_cli(NULL, cmd, "out", out, sizeof out);
  CHECK(rc == 0 && strstr(out, "walker2d"), "run folder: exit %d", rc);
  remove(path);
  remove(tmp_path("resolved.ini", path, sizeof path));
}

static void test_cli_bad_input(void) {
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  char path[512], args[1024];
  static char out[65536];
  write_text(tmp_path("typo.ini", path, sizeof path), "task = hopper\nseed = 1\n\n[model]\nlrr = 1e-3\n");
  struct {
    const char* args; /* %s = the typo file */
    const char* want[3];
  } cases[] = {
      {"config %s", {"typo.ini:5:", "unknown setting 'model.lrr'", "did you mean 'model.lr'"}},
      {"train %s", {"typo.ini:5:", "did you mean 'model.lr'", NULL}},
      {"config hopper model.lrr=1e-3",
       {"argument 'model.lrr=1e-3'", "unknown setting 'model.lrr'", "did you mean 'model.lr'"}},
      {"train hopper sac.lrr=1e-3", {"argument 'sac.lrr=1e-3'", "did you mean 'sac.lr'", NULL}},
      {"train hopper seed=12abc", {"argument 'seed=12abc'", "not an integer", NULL}},
      {"train hopper sac.lr=abc", {"argument 'sac.lr=abc'", "not a finite number", NULL}},
      {"train hopper model.ensemble=0", {"'model.ensemble' = 0 is out of range [1, 64]", NULL, NULL}},
      {"train hopper device=gpu", {"'gpu'", "auto, cuda, cpu", NULL}},
      {"train hopper task=foo",
       {"unknown task 'foo'", "hopper, walker2d, halfcheetah, ant, humanoid, inverted_pendulum", NULL}},
      {"train hoper", {"unknown preset 'hoper'", "hopper, walker2d", "inverted_pendulum"}},
      {"train hopper seed", {"argument 'seed'", "key=value", NULL}},
      {"config hopper seed=1 steps", {"argument 'steps'", "key=value", NULL}},
      {"train hopper model.elites=8", {"model.elites = 8 is more than model.ensemble = 7", NULL, NULL}},
      {"train", {"needs a preset", NULL, NULL}},
      {"train hopper --frob", {"unknown option '--frob'", NULL, NULL}},
      {"train hopper --model-dir", {"--model-dir needs a folder", NULL, NULL}},
      {"eval hopper lr=1", {"did you mean 'model.lr' or 'sac.lr'", NULL, NULL}},
      {"envs --model-dir /nonexistent/models", {"not a directory", NULL, NULL}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    /* each run in an empty folder with run_dir inside it: nothing may appear there */
    char dir[600], cmd[2048];
    snprintf(dir, sizeof dir, "%s/case%zu", g_tmp, i);
    mkdir(dir, 0700);
    snprintf(args, sizeof args, cases[i].args, path);
    /* device=cpu: were a refusal to break, the run would not take a GPU */
    snprintf(cmd, sizeof cmd, "%s run_dir='%s/runs'%s", args, dir, strstr(args, "device=") ? "" : " device=cpu");
    int with_run_dir = strncmp(args, "train ", 6) == 0 && !strstr(args, "--model-dir");
    int rc = run_cli(dir, with_run_dir ? cmd : args, "err", out, sizeof out);
    CHECK(rc > 0, "`mbpo %s`: exit %d", args, rc);
    for (int j = 0; j < 3 && cases[i].want[j]; j++)
      CHECK(strstr(out, cases[i].want[j]) != NULL, "`mbpo %s`: stderr lacks '%s':\n%s", args,
            cases[i].want[j], out);
    CHECK(strstr(out, "mbpo: error: ") != NULL, "`mbpo %s`: no error line:\n%s", args, out);
    CHECK(count_entries(dir) == 0, "`mbpo %s` wrote into its folder", args);
    rmdir(dir);
  }
}

static void test_cli_envs(void) {
  if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  static char out[65536];
  int rc = run_cli(NULL, "envs", "out", out, sizeof out);
  /* every model is embedded in the binary: all of them load, so `mbpo envs` exits 0 and names
   * every task (exit 1, a model that failed to load, is a failure here) */
  CHECK(rc == 0 && !strstr(out, "error:"), "mbpo envs: exit %d\n%s", rc, out);
  const char* tasks[] = {"hopper ", "walker2d ", "halfcheetah ", "ant ", "humanoid ", "inverted_pendulum "};
  for (int i = 0; i < 6; i++) {
    int found = strncmp(out, tasks[i], strlen(tasks[i])) == 0;
    for (const char* p = strchr(out, '\n'); p && !found; p = strchr(p + 1, '\n'))
      found = strncmp(p + 1, tasks[i], strlen(tasks[i])) == 0;
    CHECK(found, "mbpo envs has no row for %s:\n%s", tasks[i], out);
  }
  /* inverted_pendulum's row: InvertedPendulum-v2, 4 obs, 1 act, [-3, 3], dt 0.04, version */
  const char* row = NULL;
  for (const char* p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (strncmp(p, "inverted_pendulum ", 18) == 0) row = p;
  CHECK(row != NULL, "no inverted_pendulum row:\n%s", out);
  if (!row) return;
  char line[512];
  size_t len = strcspn(row, "\n");
  if (len >= sizeof line) len = sizeof line - 1;
  memcpy(line, row, len);
  line[len] = 0;
  char name[64], gym[64], range[64], dt[32], mass[32], version[128];
  int obs = 0, act = 0;
  int n = sscanf(line, "%63s %63s %d %d %63[^]]] %31s %31s %127s", name, gym, &obs, &act, range, dt,
                 mass, version);
  CHECK(n == 8, "row does not parse (%d fields): %s", n, line);
  CHECK(strcmp(gym, "InvertedPendulum-v2") == 0 && obs == 4 && act == 1, "row: %s", line);
  CHECK(strstr(line, "[-3, 3]") != NULL, "control range: %s", line);
  CHECK(n < 6 || fabs(atof(dt) - 0.04) < 1e-12, "dt: %s", line);
  CHECK(n < 7 || atof(mass) > 0, "mass: %s", line);
  CHECK(strstr(line, "InvertedPendulum-v2/" ENV_VERSION) != NULL, "version: %s", line);
  /* a model that cannot load: `mbpo envs --model-dir` with a folder lacking the XML files says so and
   * exits 1 */
  char dir[600];
  snprintf(dir, sizeof dir, "%s/empty-models", g_tmp);
  mkdir(dir, 0700);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "envs --model-dir '%s'", dir);
  rc = run_cli(NULL, cmd, "out", out, sizeof out);
  CHECK(rc == 1 && strstr(out, "error"), "mbpo envs --model-dir (empty folder): exit %d\n%s", rc, out);
  rmdir(dir);
}

int main(void) {
  snprintf(g_tmp, sizeof g_tmp, "/tmp/mbpo_test_config_XXXXXX");
  if (!mkdtemp(g_tmp)) {
    perror("mkdtemp");
    return 2;
  }
  RUN(test_table);
  RUN(test_defaults);
  RUN(test_set_int);
  RUN(test_set_float);
  RUN(test_set_bool_enum);
  RUN(test_set_list_str);
  RUN(test_unknown_keys);
  RUN(test_format_round_trip);
  RUN(test_ini_round_trip);
  RUN(test_ini_errors);
  RUN(test_presets);
  RUN(test_validate);
  RUN(test_cli_help);
  RUN(test_cli_config);
  RUN(test_cli_bad_input);
  RUN(test_cli_envs);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
  return test_done();
}
