/* sweep.h: sweeps: per-run lists of settings that define a population of runs.
 *
 *   mbpo train hopper sweep.seed=0,1,2,3,4 "sweep.rollout_schedule=20:150:1:15;20:150:1:1"
 *
 * or the same keys in a preset's [sweep] section (`seed = 0,1,2,3,4`). A sweep list gives the values
 * of one scalar setting (INT, FLT, BOOL, ENUM kinds of config.h), or, for the alias
 * rollout_schedule, min_epoch:max_epoch:min_length:max_length items that set the four rollout.*
 * settings. The population is the Cartesian product of the lists in the order given (the last
 * varies fastest); the keys of a sweep.zip group (`sweep.zip=seed,sac.lr`, groups separated by ';')
 * vary together as one factor, placed where the first of them was given. Each run's tag is the base
 * tag plus "-<key>_<value>" per swept key other than seed, so every run has its own folder
 * <run_dir>/<task>-<tag>-s<seed>. Settings that change tensor shapes or the loop's lockstep, or that
 * belong to the process, cannot be swept. */
#ifndef MBPO_SWEEP_H
#define MBPO_SWEEP_H

#include <stdio.h>

#include "config.h"

/** Most runs in one population. */
#define SWEEP_MAX_RUNS 256
/** Most swept keys in one sweep. */
#define SWEEP_MAX_KEYS 16

/** The values of one swept key. */
typedef struct sweep_list {
  char key[64];  /* a setting ("sac.lr") or the alias "rollout_schedule" */
  int n;         /* values */
  char** values; /* canonical text of each (as cfg_format_value writes it; the alias "20:150:1:15") */
} sweep_list;

/** A sweep: the swept keys in the order given and the zip groups. Start with sweep_init; free with
 *  sweep_free. */
typedef struct sweep_spec {
  int nlist;
  sweep_list list[SWEEP_MAX_KEYS];
  char zip[512]; /* the sweep.zip text, resolved by sweep_expand ("" = none) */
} sweep_spec;

/** An empty sweep. */
void sweep_init(sweep_spec* s);

/** Free the value lists (s is empty afterwards). */
void sweep_free(sweep_spec* s);

/** Add the list for key ("seed", "sac.lr", "rollout_schedule", or "zip"; a "sweep." prefix is
 *  accepted) from its text ("0,1,2"; the alias's items are separated by ';' or ','). Each value is
 *  parsed and range-checked as the setting itself would be. A key given again replaces its list in
 *  place. 0, or -1 with err naming the key (unknown key: the closest valid one; a setting that cannot
 *  be swept: why). */
int sweep_add(sweep_spec* s, const char* key, const char* value, char* err, int errlen);

/** The swept key ("sac.lr", "rollout_schedule") that sets the setting cfg_key, or NULL. */
const char* sweep_setter(const sweep_spec* s, const char* cfg_key);

/** Expand s over base into the population: *cfgs (malloc'ed, *n >= 1 runs; an empty sweep gives
 *  base alone), each run validated with cfg_validate. 0, or -1 with err (zip groups of unequal
 *  length, more than SWEEP_MAX_RUNS runs, two runs with the same folder, a run that does not
 *  validate, named by its swept values); *cfgs is then NULL. */
int sweep_expand(const sweep_spec* s, const mbpo_config* base, mbpo_config** cfgs, int* n,
                 char* err, int errlen);

/** Print the population, one line per run: its folder and the settings in which the runs differ. */
void sweep_print(const mbpo_config* cfgs, int n, FILE* f);

/** Reader of the keys of an extra INI section (key without the section prefix): 0, or -1 with err. */
typedef int (*cfg_section_fn)(void* user, const char* key, const char* value, char* err, int errlen);

/** cfg_load_preset, with every key of [section] handed to fn instead of being refused as an unknown
 *  setting (fn NULL: cfg_load_preset). Defined in config.c, beside the INI reader. */
int cfg_load_preset_section(mbpo_config* c, const char* arg, const char* section,
                            cfg_section_fn fn, void* user, char* err, int errlen);

#endif
