/* halfcheetah.c: PLACEHOLDER until the task is authored (no model yet). */
#include "env.h"
#include "termination.h"
const env_task env_task_halfcheetah = {
    .name = "halfcheetah", .gym_id = "HalfCheetah-v2", .asset = "halfcheetah.xml", .obs_dim = 17, .act_dim = 6,
    .frame_skip = 5, .max_steps = 1000, .term = TERM_HALFCHEETAH,
};
