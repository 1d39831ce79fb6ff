/* walker2d.c: PLACEHOLDER until the task is authored (no model yet). */
#include "env.h"
#include "termination.h"
const env_task env_task_walker2d = {
    .name = "walker2d", .gym_id = "Walker2d-v2", .asset = "walker2d.xml", .obs_dim = 17, .act_dim = 6,
    .frame_skip = 4, .max_steps = 1000, .term = TERM_WALKER2D,
};
