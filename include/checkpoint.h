/* checkpoint.h: the checkpoint format (.npz, format version CKPT_VERSION).
 *
 * One archive holds everything a run needs to continue exactly where it stopped: the resolved
 * config.ini text, every parameter and optimiser state (sac/..., model/...), the normaliser and
 * the elites, both replay pools (physical layout, so that uniform index draws pick the same rows),
 * the running episode, the live environment's MuJoCo state (qpos, qvel, qacc_warmstart, time and
 * the lagged xpos/xipos that rewards read), the loop counters (from which every random stream
 * continues), the current epoch's accumulators and the row waiting for its evaluation together
 * with the policy snapshot being evaluated, and the TensorBoard event file's name and length
 * (tboard/file, tboard/bytes: a resume cuts the file back to that; absent in checkpoints written
 * before them, which makes a resume start a new event file). Names and shapes are listed by `python -c "import
 * numpy; print(dict(numpy.load('ckpt.npz')))"`. */
#ifndef MBPO_CHECKPOINT_H
#define MBPO_CHECKPOINT_H

/** Format version written into every checkpoint ("format_version"). */
#define CKPT_VERSION 1

/** Name of the file in the run folder that names the newest checkpoint. */
#define CKPT_LATEST "checkpoint.latest"

struct mbpo_state; /* mbpo_run.h */

/** Write run s's whole state to path atomically; elapsed = wall seconds so far. The device
 *  backend's state must be in the host components first (mbpo_backend.snapshot). Returns 0, or -1
 *  with err (the previous file at path is left intact). */
int ckpt_save(struct mbpo_state* s, const char* path, double elapsed, char* err, int errlen);

/** Restore a run's state from path into s, built from the same config. Returns 0, or -1 with err
 *  (truncated, corrupt, another format version, task or shape). */
int ckpt_load(struct mbpo_state* s, const char* path, double* elapsed, char* err, int errlen);

#endif
