/* tool_policy_act.c: the engine's deterministic actions of a run's policy, for tests.
 *
 *   tool_policy_act <run folder> [checkpoint.npz] < observations
 *
 * Loads the policy as `mbpo eval` does (run_policy_load: config.ini, then the checkpoint that
 * checkpoint.latest names, or the one given) and reads observations from stdin, obs_dim numbers
 * each (whitespace-separated). For each it prints one line: the act_dim policy actions
 * tanh(mu) (sac_act, deterministic) followed by the act_dim environment actions
 * (env_rescale_action: the control range), all as %.9g. Exit status 1 on bad input. */
#include <stdio.h>
#include <stdlib.h>

#include "env.h"
#include "evaluate_cmd.h"
#include "sac.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s <run folder> [checkpoint.npz] < observations\n", argv[0]);
    return 1;
  }
  char err[9000];
  run_policy p;
  if (run_policy_load(argv[1], argc > 2 ? argv[2] : NULL, &p, err, sizeof err) != 0) {
    fprintf(stderr, "tool_policy_act: %s\n", err);
    return 1;
  }
  mjModel* m = env_load_model(p.task, p.cfg.model_dir, err, sizeof err);
  if (!m) {
    fprintf(stderr, "tool_policy_act: %s\n", err);
    return 1;
  }
  env* e = env_create(p.task, m, (rng_key){0, 0}, 0);
  int od = p.task->obs_dim, ad = p.task->act_dim, rc = 0;
  float obs[ENV_MAX_OBS], act[ENV_MAX_ACT];
  double ctrl[ENV_MAX_ACT];
  for (;;) {
    int i = 0;
    for (; i < od; i++)
      if (scanf("%f", &obs[i]) != 1) break;
    if (i == 0) break;
    if (i < od) {
      fprintf(stderr, "tool_policy_act: an observation needs %d numbers\n", od);
      rc = 1;
      break;
    }
    sac_act(p.agent, obs, 1, 1, (rng_key){0, 0}, 0, 0, act);
    env_rescale_action(e, act, ctrl);
    for (int j = 0; j < ad; j++) printf("%s%.9g", j ? " " : "", (double)act[j]);
    for (int j = 0; j < ad; j++) printf(" %.9g", ctrl[j]);
    putchar('\n');
  }
  env_destroy(e);
  mj_deleteModel(m);
  run_policy_free(&p);
  return rc;
}
