/* cli.c: what the `mbpo` subcommands share (cli.h): configuration from arguments, the task table. */
#include "cli.h"

#include <string.h>
#include <sys/stat.h>

#include "env.h"
#include "log.h"

static int is_override(const char* a) { return strchr(a, '=') != NULL; }

static int is_option(const char* a) { return a[0] == '-' && a[1] != 0; }

const char* cli_preset_arg(int argc, char** argv, int first) {
  if (first >= argc) return NULL;
  const char* a = argv[first];
  return (is_option(a) || is_override(a)) ? NULL : a;
}

/* Load the preset argument over c: a run folder (its config.ini), a file or a preset name. */
static void load_preset_arg(mbpo_config* c, const char* arg) {
  char err[1200];
  struct stat sb;
  if (stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    char path[4200];
    mbpo_fmt(path, sizeof path, "%s/config.ini", arg);
    if (cfg_load_ini(c, path, err, sizeof err)) mbpo_fatal("%s", err);
    return;
  }
  if (cfg_load_preset(c, arg, err, sizeof err)) mbpo_fatal("%s", err);
}

static void set_or_die(mbpo_config* c, const char* arg, const char* key, const char* value) {
  char err[1200];
  if (cfg_set(c, key, value, err, sizeof err)) mbpo_fatal("argument '%s': %s", arg, err);
}

int cli_resolve_config(int argc, char** argv, int first, mbpo_config* out) {
  mbpo_config c;
  char err[1200];
  cfg_defaults(&c);
  const char* preset = cli_preset_arg(argc, argv, first);
  int i = first;
  if (preset) {
    load_preset_arg(&c, preset);
    i++;
  }
  char preset_task[CFG_STR_MAX];
  memcpy(preset_task, c.task, sizeof preset_task);
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
    set_or_die(&c, a, key, eq + 1);
  }
  if (cfg_validate(&c, err, sizeof err)) mbpo_fatal("%s", err);
  if (strcmp(c.task, preset_task) != 0 && env_find(c.task) != NULL) {
    if (preset)
      mbpo_warn("task=%s replaces the task of preset '%s'; its other settings (G, rollout schedule, "
                "...) stay as that preset has them (the %s preset: `mbpo config %s`)",
                c.task, preset, c.task, c.task);
    else
      mbpo_warn("task=%s without a preset: the other settings keep the defaults (the hopper values); "
                "the %s preset has the paper's settings for it: `mbpo config %s`",
                c.task, c.task, c.task);
  }
  *out = c;
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
