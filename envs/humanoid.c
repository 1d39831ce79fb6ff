/* humanoid.c: PLACEHOLDER until the task is authored (no model yet). */
#include "env.h"
#include "termination.h"
const env_task env_task_humanoid = {
    .name = "humanoid", .gym_id = "HumanoidTruncatedObs-v2", .asset = "humanoid.xml", .obs_dim = 45, .act_dim = 17,
    .frame_skip = 5, .max_steps = 1000, .term = TERM_HUMANOID,
};
