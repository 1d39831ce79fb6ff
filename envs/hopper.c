/* hopper.c: PLACEHOLDER until the task is authored (no model yet). */
#include "env.h"
#include "termination.h"
const env_task env_task_hopper = {
    .name = "hopper", .gym_id = "Hopper-v2", .asset = "hopper.xml", .obs_dim = 11, .act_dim = 3,
    .frame_skip = 4, .max_steps = 1000, .term = TERM_HOPPER,
};
