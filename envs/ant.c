/* ant.c: PLACEHOLDER until the task is authored (no model yet). */
#include "env.h"
#include "termination.h"
const env_task env_task_ant = {
    .name = "ant", .gym_id = "AntTruncatedObs-v2", .asset = "ant.xml", .obs_dim = 27, .act_dim = 8,
    .frame_skip = 5, .max_steps = 1000, .term = TERM_ANT,
};
