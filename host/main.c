/* main.c: the `mbpo` command line: usage, dispatch to the subcommands, and the subcommands. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze.h"
#include "cli.h"
#include "mbpo.h"
#include "threads.h"
#include "config.h"
#include "env.h"
#include "evaluate_cmd.h"
#include "log.h"
#include "sweep.h"
#include "plot.h"
#include "backend.h"
#include "ranks.h"
#include "run.h"
#include "summary.h"

/** One subcommand: its name, argument synopsis, description and entry point. The entry point gets
 *  the arguments from the command name on (argv[0] = the command name). */
typedef struct command {
  const char* name;
  const char* synopsis;
  const char* summary; /* one line for the command list */
  const char* help;
  int (*run)(int argc, char** argv);
} command;

static const char* const g_preset_help =
    "A preset is a task name (hopper, walker2d, halfcheetah, ant, humanoid, inverted_pendulum: the\n"
    "paper's settings for that task, embedded in the binary), the path of an .ini file, or a run\n"
    "folder (its config.ini). Then key=value arguments override single settings, in order; `mbpo\n"
    "config` lists every setting with its allowed values. --model-dir DIR is model_dir=DIR.\n";

static void print_usage(FILE* f);
static const command* find_command(const char* name);

static void print_command_usage(const command* c, FILE* f) {
  fprintf(f, "usage: mbpo %s %s\n\n%s", c->name, c->synopsis, c->help);
  if (strchr(c->synopsis, '=')) fputs(g_preset_help, f);
}

/* --help or -h anywhere among a command's arguments */
static int wants_help(int argc, char** argv) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
  return 0;
}

/* ---- commands ----------------------------------------------------------------------------- */

static int cmd_envs(int argc, char** argv) {
  mbpo_config cfg;
  cli_resolve_config(argc, argv, 1, &cfg);
  int failed = cli_print_envs(stdout, cfg.model_dir);
  if (failed) {
    fprintf(stderr, "mbpo: error: %d of %d task models did not load\n", failed, env_ntasks());
    return 1;
  }
  return 0;
}

static int cmd_config(int argc, char** argv) {
  int ini = 0, n = 0;
  char** args = (char**)calloc((size_t)argc + 1, sizeof *args);
  if (!args) mbpo_fatal("out of memory");
  for (int i = 0; i < argc; i++) {
    if (i > 0 && strcmp(argv[i], "--ini") == 0) ini = 1;
    else args[n++] = argv[i];
  }
  mbpo_config* cfgs = NULL;
  int nrun = 0;
  cli_resolve_population(n, args, 1, &cfgs, &nrun);
  free(args);
  if (ini) cfg_write_ini(&cfgs[0], stdout);
  else cfg_print(&cfgs[0], stdout);
  if (nrun > 1 && ini) mbpo_note("a sweep of %d runs: this is the first run's configuration", nrun);
  else if (nrun > 1) sweep_print(cfgs, nrun, stdout);
  free(cfgs);
  return 0;
}

/* The shared shape of the commands that are not built yet: the whole configuration is resolved and
 * checked, so bad input fails the same way it will once they are. */
static int not_built(const char* name, const char* issue, int argc, char** argv, int need_preset) {
  if (need_preset && !cli_preset_arg(argc, argv, 1)) {
    print_command_usage(find_command(name), stderr);
    mbpo_fatal("%s needs a preset or .ini file as its first argument", name);
  }
  mbpo_config cfg;
  cli_resolve_config(argc, argv, 1, &cfg);
  fprintf(stderr, "mbpo: %s is not built yet%s\n", name, issue);
  return 2;
}

/* The tag of a sweep's runs without the suffixes the sweep added ("-<key>_<value>"): the longest
 * prefix common to all tags, cut before the first "-<letter>" where they start to differ. */
static void base_tag(const mbpo_config* cfgs, int n, char* out, int len) {
  snprintf(out, (size_t)len, "%s", cfgs[0].tag);
  size_t common = strlen(out);
  for (int i = 1; i < n; i++) {
    size_t k = 0;
    while (k < common && cfgs[i].tag[k] == out[k]) k++;
    common = k;
  }
  if (common == strlen(out)) return; /* all equal (a sweep of seeds only) */
  while (common > 0 && !(out[common - 1] == '-' && isalpha((unsigned char)out[common]))) common--;
  out[common > 0 ? common - 1 : 0] = '\0';
}

/* After a population (rank 0, once every rank is done): <run_dir>/<task>-<tag>-summary/ of all its
 * runs. A failure is a warning: the runs themselves are complete. */
static void write_summary(const mbpo_config* cfgs, int n) {
  char tag[CFG_STR_MAX], dir[4096], err[4400];
  base_tag(cfgs, n, tag, sizeof tag);
  mbpo_fmt(dir, sizeof dir, "%s/%s-%s-summary", cfgs[0].run_dir, cfgs[0].task, tag);
  char** paths = (char**)calloc((size_t)n, sizeof *paths);
  if (!paths) mbpo_fatal("out of memory");
  for (int i = 0; i < n; i++) {
    paths[i] = (char*)malloc(4096);
    if (!paths[i]) mbpo_fatal("out of memory");
    run_path(&cfgs[i], paths[i], 4096);
  }
  if (summary_write(n, paths, dir, 0, err, sizeof err) != 0) mbpo_warn("no summary: %s", err);
  else mbpo_note("summary of %d runs in %s", n, dir);
  for (int i = 0; i < n; i++) free(paths[i]);
  free(paths);
}

/** `mbpo train <preset> [key=value ...] [sweep.key=v1,v2,...]` (argv[0] = "train") or `mbpo train
 *  --resume RUN...`: resolve and check the configuration (a sweep: the population of its runs), then
 *  run MBPO. Under mpirun each rank trains every size-th run of the population (from its rank on) on
 *  its local GPU, and rank 0 writes the summary. Returns the process exit status. */
int cmd_train(int argc, char** argv) {
  int resume = argc >= 2 && strcmp(argv[1], "--resume") == 0;
  if (resume && argc < 3) mbpo_fatal("usage: mbpo train --resume <run folder>...");
  if (!resume && !cli_preset_arg(argc, argv, 1)) {
    print_command_usage(find_command("train"), stderr);
    mbpo_fatal("train needs a preset or .ini file as its first argument");
  }
  mbpo_config* cfgs = NULL;
  int n = resume ? argc - 2 : 0;
  if (!resume) cli_resolve_population(argc, argv, 1, &cfgs, &n);
  ranks_init();
  int rank = ranks_rank(), size = ranks_size();
  backend_select_gpu(ranks_local());
  /* this rank's runs: every size-th from its rank on */
  int mine = 0;
  mbpo_config* my_cfgs = resume ? NULL : (mbpo_config*)calloc((size_t)n, sizeof *my_cfgs);
  char** my_paths = (char**)calloc((size_t)n, sizeof *my_paths);
  if ((!resume && !my_cfgs) || !my_paths) mbpo_fatal("out of memory");
  for (int i = rank; i < n; i += size) {
    if (resume) my_paths[mine++] = argv[2 + i];
    else my_cfgs[mine++] = cfgs[i];
  }
  if (size > 1)
    mbpo_note("MPI rank %d of %d: %d of the %d runs", rank, size, mine, n);
  int rc = 0;
  if (mine > 0) rc = resume ? mbpo_resume_population(mine, my_paths) : mbpo_train_population(my_cfgs, mine);
  rc = ranks_max(rc); /* waits for every rank */
  if (rank == 0 && !resume && n > 1) write_summary(cfgs, n);
  ranks_finalize();
  free(my_cfgs);
  free(my_paths);
  free(cfgs);
  return rc;
}

static int cmd_eval(int argc, char** argv) { return evalcmd_eval(argc, argv); }

static int cmd_export(int argc, char** argv) { return evalcmd_export(argc, argv); }

static int cmd_bench(int argc, char** argv) { return not_built("bench", "", argc, argv, 0); }

static int cmd_help(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stdout);
    return 0;
  }
  const command* c = find_command(argv[1]);
  if (!c) {
    print_usage(stderr);
    fprintf(stderr, "mbpo: error: unknown command '%s'\n", argv[1]);
    return 2;
  }
  print_command_usage(c, stdout);
  return 0;
}

static const command g_commands[] = {
    {"train", "<preset> [key=value ...] | --resume RUN...", "train MBPO (one run, or a sweep's population)",
     "Train MBPO. Progress goes to the terminal; the run folder <run_dir>/<task>-<tag>-s<seed>\n"
     "gets config.ini, progress.csv, model_train.csv, checkpoints and plots.\n"
     "Checkpoints (checkpoint.every epochs, and at the end) let `--resume <run folder>...` continue\n"
     "runs exactly; Ctrl-C finishes the current step, writes a checkpoint and exits (twice: at once).\n"
     "sweep.<key>=v1,v2,... (product over keys; sweep.zip=k1,k2 varies keys together;\n"
     "sweep.rollout_schedule=a:b:c:d;...) trains a population of runs in one process, each with its\n"
     "own folder, then writes <run_dir>/<task>-<tag>-summary/. Under `mpirun -n N` each rank trains\n"
     "every N-th run on its local GPU and rank 0 writes the summary.\n"
     "Example: mbpo train hopper sac.lr=1e-4 seed=3\n"
     "         mbpo train hopper sweep.seed=0,1,2,3,4 sweep.rollout_schedule='20:150:1:15;20:150:1:1'\n\n",
     cmd_train},
    {"eval", "<run folder> [options] [--video FILE]",
     "evaluate a run's policy (deterministic episodes)", evalcmd_eval_help, cmd_eval},
    {"export", "<run folder> [-o FILE] [options]", "export the actor's weights as .npz",
     evalcmd_export_help, cmd_export},
    {"bench", "[preset] [key=value ...]", "benchmark the engine",
     "Benchmark the engine's components and the end-to-end loop.\n\n", cmd_bench},
    {"config", "[preset] [key=value ...] [--ini]", "show the resolved configuration",
     "Print the resolved configuration: every setting with its value, allowed values and help.\n"
     "--ini prints it as an .ini file instead (the form a run folder's config.ini has).\n\n",
     cmd_config},
    {"envs", "[--model-dir DIR]", "list the tasks and their compiled models",
     "List the tasks: gym id, observation and action sizes, control range, dt, total mass and\n"
     "env-version string of each compiled model (the embedded ones, or <DIR>/<task>.xml).\n"
     "Exits non-zero when a model does not load.\n\n",
     cmd_envs},
    {"plot", "RUN... [-o FILE.png|.svg] [options]",
     "plot learning curves (mean ± std per setting)", plot_help, cmd_plot},
    {"summary", "RUN... [-o DIR] [options]",
     "final and best returns per setting: mean ± std, IQM, bootstrap CI", summary_help,
     cmd_summary},
    {"analyze", "<analysis> [RUN] [options]",
     "the paper's experiments: bound, generalization, exploitation, replay", analyze_help,
     cmd_analyze},
    {"help", "[command]", "this text, or a command's usage", "Print the usage of mbpo or of one command.\n\n", cmd_help},
};
#define NCOMMANDS ((int)(sizeof g_commands / sizeof g_commands[0]))

static const command* find_command(const char* name) {
  for (int i = 0; i < NCOMMANDS; i++)
    if (strcmp(g_commands[i].name, name) == 0) return &g_commands[i];
  return NULL;
}

static void print_usage(FILE* f) {
  fprintf(f,
          "usage: mbpo <command> [arguments]\n\n"
          "Model-Based Policy Optimization (Janner et al. 2019) on the MuJoCo benchmark tasks.\n\n"
          "commands:\n");
  for (int i = 0; i < NCOMMANDS; i++) {
    char head[96];
    mbpo_fmt(head, sizeof head, "%s %s", g_commands[i].name, g_commands[i].synopsis);
    fprintf(f, "  %-42s %s\n", head, g_commands[i].summary);
  }
  fprintf(f, "\n%s\n`mbpo <command> --help` shows a command's usage.\n", g_preset_help);
}

static int print_version(void) {
#ifdef MBPO_CUDA
  const char* backends = "cpu, cuda";
#else
  const char* backends = "cpu (built without CUDA)";
#endif
  printf("mbpo: backends %s; MPI %s; environments %s\n", backends, ranks_built() ? "yes" : "no (built without Open MPI)",
         ENV_VERSION);
  /* the GPU's state, so that `make test` and a bug report show an unusable GPU and why */
  char why[512], driver[64];
  if (backend_cuda_probe(why, sizeof why)) printf("mbpo: GPU %s\n", why);
  else if (backend_cuda_built() && backend_gpu_present(driver, sizeof driver))
    printf("mbpo: WARNING: the GPU is not usable: %s\n", why);
  else printf("mbpo: no GPU: %s\n", why);
  return 0;
}

int main(int argc, char** argv) {
  threads_init(argc, argv);
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    print_usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) return print_version();
  const command* c = find_command(argv[1]);
  if (!c) {
    print_usage(stderr);
    fprintf(stderr, "mbpo: error: unknown command '%s'\n", argv[1]);
    return 2;
  }
  if (c->run != cmd_help && wants_help(argc - 1, argv + 1)) {
    print_command_usage(c, stdout);
    return 0;
  }
  return c->run(argc - 1, argv + 1);
}
