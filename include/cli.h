/* cli.h: what the `mbpo` subcommands share: turning command-line arguments into a validated
 * configuration, the options of the commands that read run folders, and the task table of
 * `mbpo envs`. */
#ifndef MBPO_CLI_H
#define MBPO_CLI_H

#include <stdio.h>

#include "config.h"

/** Resolve the configuration given by argv[first .. argc-1]: defaults, then an optional preset (the
 *  first argument when it is not key=value: a preset name such as "hopper", the path of an .ini
 *  file, or a run folder holding config.ini), then key=value overrides in order (the last one
 *  wins), with "--model-dir DIR" (or --model-dir=DIR) standing for model_dir=DIR; then
 *  cfg_validate. On bad input it reports the error through mbpo_fatal (exit status 1) before
 *  anything is started or written. Returns 0. */
int cli_resolve_config(int argc, char** argv, int first, mbpo_config* out);

/** Resolve argv[first..] like cli_resolve_config, with sweep.* keys expanded into a population. *cfgs is
 *  malloc'ed (n >= 1; no sweep: n = 1 and the config equals cli_resolve_config's). Errors: mbpo_fatal.
 *  sweep.KEY=v1,v2,... arguments and the keys of the preset's [sweep] section give per-run lists
 *  (sweep.h); a setting given both plainly (key=value argument) and swept is an error, while a
 *  setting of the preset is replaced by its sweep. Each run is validated with cfg_validate. */
int cli_resolve_population(int argc, char** argv, int first, mbpo_config** cfgs, int* n);

/** The preset argument that cli_resolve_config would use (argv[first] when it is neither an option
 *  nor key=value), or NULL when none is given. */
const char* cli_preset_arg(int argc, char** argv, int first);

/** An option of a command that takes RUN... arguments and options (plot, summary): its name
 *  ("--y") and an optional second spelling (alias: "--output" beside "-o"; NULL: none). A value
 *  option ("--y COL" or "--y=COL") has value, which gets the value; a flag (value NULL, given
 *  exactly) sets *flag to 1. */
typedef struct cli_opt {
  const char* name;
  const char* alias;
  const char** value;
  int* flag;
} cli_opt;

/** Parse argv[1 .. argc-1] of a command: an option of opts[0 .. nopts-1] is applied; every other
 *  argument, "-" and all after "--" go in order into *args (malloc'ed, NULL-terminated; the caller
 *  frees it), their count into *nargs. Returns 0, or 2 (nothing to free) after printing usage on
 *  stderr and "mbpo: error: unknown option '-x'" or "mbpo: error: --y needs a value". */
int cli_parse_opts(int argc, char** argv, const cli_opt* opts, int nopts, void (*usage)(FILE*),
                   char*** args, int* nargs);

/** Print the table of `mbpo envs` on f: per task its name, gym id, observation and action sizes,
 *  control range, dt, total mass and env-version string, from the model compiled from model_dir
 *  ("" = the embedded models). A model that fails to load gets its error in its row. Returns the
 *  number of tasks whose model did not load. */
int cli_print_envs(FILE* f, const char* model_dir);

#endif
