/* cli.c: what the `mbpo` subcommands share (cli.h): configuration from arguments, the options of
 * the commands that read run folders, the task table. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "env.h"
#include "log.h"
#include "sweep.h"

static int is_override(const char* a) { return strchr(a, '=') != NULL; }

static int is_option(const char* a) { return a[0] == '-' && a[1] != 0; }

const char* cli_preset_arg(int argc, char** argv, int first) {
  if (first >= argc) return NULL;
  const char* a = argv[first];
  return (is_option(a) || is_override(a)) ? NULL : a;
}

/* A [sweep] section's key: into the sweep, or refused where sweeps are not read. */
static int sweep_section_key(void* user, const char* key, const char* value, char* err, int errlen) {
  if (!user) {
    mbpo_fmt(err, errlen, "[sweep] %s: sweeps are read by `mbpo train` and `mbpo config` only", key);
    return -1;
  }
  return sweep_add((sweep_spec*)user, key, value, err, errlen);
}

/* Load the preset argument over c: a run folder (its config.ini), a file or a preset name; the keys
 * of a [sweep] section go to sweep (NULL: refused). */
static void load_preset_arg(mbpo_config* c, const char* arg, sweep_spec* sweep) {
  char err[1200];
  struct stat sb;
  char path[4200];
  if (stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    mbpo_fmt(path, sizeof path, "%s/config.ini", arg);
    arg = path;
  }
  if (cfg_load_preset_section(c, arg, "sweep", sweep_section_key, sweep, err, sizeof err))
    mbpo_fatal("%s", err);
}

static void set_or_die(mbpo_config* c, const char* arg, const char* key, const char* value) {
  char err[1200];
  if (cfg_set(c, key, value, err, sizeof err)) mbpo_fatal("argument '%s': %s", arg, err);
}

/* Resolve argv[first..] into *out as cli_resolve_config documents, without cfg_validate; sweep.*
 * arguments and [sweep] keys go to sweep (NULL: refused). Returns the preset argument or NULL, and
 * the task the preset (or the defaults) had in preset_task (CFG_STR_MAX). */
static const char* resolve_args(int argc, char** argv, int first, mbpo_config* out,
                                sweep_spec* sweep, char* preset_task) {
  mbpo_config c;
  char err[1200];
  int plain_arg[256]; /* per setting: the argument that set it plainly (0 = none) */
  memset(plain_arg, 0, sizeof plain_arg);
  cfg_defaults(&c);
  const char* preset = cli_preset_arg(argc, argv, first);
  int i = first;
  if (preset) {
    load_preset_arg(&c, preset, sweep);
    i++;
  }
  memcpy(preset_task, c.task, CFG_STR_MAX);
  for (; i < argc; i++) {
    const char* a = argv[i];
    if (strcmp(a, "--model-dir") == 0) {
      if (i + 1 >= argc) mbpo_fatal("--model-dir needs a folder");
      set_or_die(&c, a, "model_dir", argv[++i]);
      continue;
    }
    if (strncmp(a, "--model-dir=", 12) == 0) {
      set_or_die(&c, a, "model_dir", a + 12);
      continue;
    }
    if (is_option(a)) mbpo_fatal("unknown option '%s'", a);
    const char* eq = strchr(a, '=');
    if (!eq)
      mbpo_fatal("argument '%s' is not key=value%s", a,
                 i == first ? "" : " (only the first argument can name a preset)");
    if (eq == a) mbpo_fatal("argument '%s' has no key before '='", a);
    char key[256];
    if ((size_t)(eq - a) >= sizeof key) mbpo_fatal("argument '%.40s...': key is too long", a);
    memcpy(key, a, (size_t)(eq - a));
    key[eq - a] = 0;
    if (strncmp(key, "sweep.", 6) == 0) {
      if (!sweep) mbpo_fatal("argument '%s': sweeps are read by `mbpo train` and `mbpo config` only", a);
      if (sweep_add(sweep, key, eq + 1, err, sizeof err))
        mbpo_fatal("argument '%.80s%s': %s", a, strlen(a) > 80 ? "..." : "", err);
      continue;
    }
    set_or_die(&c, a, key, eq + 1);
    for (int k = 0; k < cfg_count() && k < 256; k++)
      if (strcmp(cfg_at(k)->key, key) == 0) plain_arg[k] = i;
  }
  /* a setting both swept and given plainly: the plain argument would be ignored */
  for (int k = 0; sweep && k < cfg_count() && k < 256; k++) {
    const char* by = plain_arg[k] ? sweep_setter(sweep, cfg_at(k)->key) : NULL;
    if (by)
      mbpo_fatal("argument '%s': %s is also swept by sweep.%s; give one of them (sweep.%s=... "
                 "replaces a preset's sweep list)",
                 argv[plain_arg[k]], cfg_at(k)->key, by, by);
  }
  *out = c;
  return preset;
}

/* The warning when task= replaced the preset's task (its other settings stay). */
static void warn_task_change(const mbpo_config* c, const char* preset, const char* preset_task) {
  if (strcmp(c->task, preset_task) != 0 && env_find(c->task) != NULL) {
    if (preset)
      mbpo_warn("task=%s replaces the task of preset '%s'; its other settings (G, rollout schedule, "
                "...) stay as that preset has them (the %s preset: `mbpo config %s`)",
                c->task, preset, c->task, c->task);
    else
      mbpo_warn("task=%s without a preset: the other settings keep the defaults (the hopper values); "
                "the %s preset has the paper's settings for it: `mbpo config %s`",
                c->task, c->task, c->task);
  }
}

int cli_resolve_config(int argc, char** argv, int first, mbpo_config* out) {
  mbpo_config c;
  char err[1200], preset_task[CFG_STR_MAX];
  const char* preset = resolve_args(argc, argv, first, &c, NULL, preset_task);
  if (cfg_validate(&c, err, sizeof err)) mbpo_fatal("%s", err);
  warn_task_change(&c, preset, preset_task);
  *out = c;
  return 0;
}

int cli_resolve_population(int argc, char** argv, int first, mbpo_config** cfgs, int* n) {
  mbpo_config base;
  char err[1200], preset_task[CFG_STR_MAX];
  sweep_spec sweep;
  sweep_init(&sweep);
  const char* preset = resolve_args(argc, argv, first, &base, &sweep, preset_task);
  if (sweep_expand(&sweep, &base, cfgs, n, err, sizeof err)) mbpo_fatal("%s", err);
  warn_task_change(&base, preset, preset_task);
  sweep_free(&sweep);
  return 0;
}

/* The value of option name at argv[*i] ("--y COL" or "--y=COL"; *i advances past a separate
 * value): NULL when argv[*i] is not that option, and then *missing = 1 when it is but no value
 * follows. */
static const char* opt_value(int argc, char** argv, int* i, const char* name, int* missing) {
  size_t l = strlen(name);
  if (strncmp(argv[*i], name, l) != 0) return NULL;
  if (argv[*i][l] == '=') return argv[*i] + l + 1;
  if (argv[*i][l] != '\0') return NULL;
  if (*i + 1 >= argc) {
    *missing = 1;
    return NULL;
  }
  return argv[++*i];
}

/* Apply argv[*i] when it is one of opts: 1; 0 when it is none of them; -1 when it is a value
 * option without its value. */
static int apply_opt(int argc, char** argv, int* i, const cli_opt* opts, int nopts) {
  const char* a = argv[*i];
  for (int k = 0; k < nopts; k++) {
    const cli_opt* o = &opts[k];
    if (!o->value) {
      if (strcmp(a, o->name) != 0 && !(o->alias && strcmp(a, o->alias) == 0)) continue;
      *o->flag = 1;
      return 1;
    }
    int missing = 0;
    const char* v = opt_value(argc, argv, i, o->name, &missing);
    if (!v && !missing && o->alias) v = opt_value(argc, argv, i, o->alias, &missing);
    if (missing) return -1;
    if (v) {
      *o->value = v;
      return 1;
    }
  }
  return 0;
}

int cli_parse_opts(int argc, char** argv, const cli_opt* opts, int nopts, void (*usage)(FILE*),
                   char*** args, int* nargs) {
  char** runs = (char**)calloc((size_t)argc + 1, sizeof(char*));
  if (!runs) mbpo_fatal("out of memory");
  int n = 0, options = 1;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (!options || a[0] != '-' || a[1] == '\0') {
      runs[n++] = argv[i];
      continue;
    }
    if (strcmp(a, "--") == 0) {
      options = 0;
      continue;
    }
    const int r = apply_opt(argc, argv, &i, opts, nopts);
    if (r > 0) continue;
    usage(stderr);
    if (r < 0) fprintf(stderr, "mbpo: error: %s needs a value\n", a);
    else fprintf(stderr, "mbpo: error: unknown option '%s'\n", a);
    free(runs);
    return 2;
  }
  *args = runs;
  *nargs = n;
  return 0;
}

/* "[-1, 1]", "[-0.4, 0.4]", "unlimited": the distinct control ranges of the actuators. */
static void control_range(const mjModel* m, char* buf, int n) {
  int len = 0, shown = 0;
  buf[0] = 0;
  for (int i = 0; i < m->nu && len < n; i++) {
    int limited = m->actuator_ctrllimited[i];
    double lo = m->actuator_ctrlrange[2 * i], hi = m->actuator_ctrlrange[2 * i + 1];
    int dup = 0;
    for (int j = 0; j < i && !dup; j++)
      dup = m->actuator_ctrllimited[j] == limited &&
            (!limited || (m->actuator_ctrlrange[2 * j] == lo && m->actuator_ctrlrange[2 * j + 1] == hi));
    if (dup) continue;
    if (shown == 3) {
      len += snprintf(buf + len, (size_t)(n - len), ", ...");
      break;
    }
    const char* sep = shown++ ? ", " : "";
    if (limited) len += snprintf(buf + len, (size_t)(n - len), "%s[%g, %g]", sep, lo, hi);
    else len += snprintf(buf + len, (size_t)(n - len), "%sunlimited", sep);
  }
}

int cli_print_envs(FILE* f, const char* model_dir) {
  int failed = 0;
  fprintf(f, "%-18s %-24s %4s %4s  %-14s %-7s %-10s %s\n", "task", "gym id", "obs", "act",
          "control range", "dt", "mass (kg)", "env version");
  for (int i = 0; i < env_ntasks(); i++) {
    const env_task* t = env_task_at(i);
    char err[1200], range[128], version[160];
    fprintf(f, "%-18s %-24s %4d %4d  ", t->name, t->gym_id, t->obs_dim, t->act_dim);
    mjModel* m = env_load_model(t, model_dir ? model_dir : "", err, sizeof err);
    if (!m) {
      fprintf(f, "error: %s\n", err);
      failed++;
      continue;
    }
    control_range(m, range, sizeof range);
    mbpo_fmt(version, sizeof version, "%s/%s", t->gym_id, ENV_VERSION);
    fprintf(f, "%-14s %-7g %-10.6g %s\n", range, m->opt.timestep * t->frame_skip,
            env_total_mass(m), version);
    mj_deleteModel(m);
  }
  fflush(f);
  return failed;
}
