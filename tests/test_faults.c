/* test_faults.c: checkpoints that cannot be written during a real training loop (the real binary).
 *
 * What a run does (host/mbpo_epoch.c): a checkpoint that cannot be written is a warning naming the
 * checkpoint that is kept; the run goes on (the next epoch-end checkpoint tries again), the
 * previous checkpoints and checkpoint.latest stay byte for byte, no temporary file is left behind.
 * When the run's final checkpoint could not be written the run exits 1 after its last epoch, saying
 * which checkpoint a resume would continue from. Once the fault is gone, `mbpo train --resume`
 * continues from that checkpoint and ends with the uninterrupted run's progress.csv and TensorBoard
 * scalars.
 *
 * Each case: a run interrupted in epoch 1 (MBPO_TEST_INTERRUPT_STEP: its epoch-0 and interrupt
 * checkpoints exist); a resume under the fault, which trains the remaining epochs and fails every
 * checkpoint; a resume without it. Faults, all real kernel errors:
 *  - file size limit (RLIMIT_FSIZE below a checkpoint's size, SIGXFSZ ignored: writes fail with
 *    EFBIG); runs everywhere;
 *  - disk full (ENOSPC): the run folder on a 4 MiB tmpfs filled up by a filler file; needs the right
 *    to mount (root), skipped otherwise;
 *  - unwritable run folder (EACCES): the folder made read-only (mode 0555) while its files stay
 *    writable; as root the resume runs as user nobody (root ignores the mode).
 * Every run says device=cpu (the checkpoint writer under test is the host's on either backend). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "csv_read.h"
#include "events_text.h"
#include "test.h"
#include "tmp_files.h"

#define ARGS                                                                                      \
  "inverted_pendulum steps=300 epoch_length=100 init_steps=100 min_pool=250 model.train_freq=50 " \
  "rollout.batch=500 model.hidden=32 sac.hidden=32 sac.updates=2 model.max_epochs=5 "             \
  "eval.episodes=2 max_path_length=100 checkpoint.every=1 rollout.min_epoch=0 "                   \
  "rollout.max_epoch=2 rollout.max_length=3 device=cpu"

enum { FAULT_NONE, FAULT_FSIZE, FAULT_NOBODY };

static char g_dir[] = "/tmp/mbpo-faults-XXXXXX";
static const char* g_bin;
static int g_have_full; /* the uninterrupted reference run exists */

/* Run a shell command with a fault applied to it; returns its exit status (128 + signal). */
static int run_cmd(const char* cmd, int fault) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return 127;
  if (pid == 0) {
    if (fault == FAULT_FSIZE) {
      signal(SIGXFSZ, SIG_IGN); /* ignored dispositions survive exec: writes fail with EFBIG */
      struct rlimit rl = {64 << 10, 64 << 10};
      if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(126);
    } else if (fault == FAULT_NOBODY && geteuid() == 0) {
      if (setgid(65534) != 0 || setuid(65534) != 0) _exit(126);
    }
    execl("/bin/sh", "sh", "-c", cmd, (char*)NULL);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return 127;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char* slurp(const char* path, size_t* len) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char* b = (char*)malloc(cap + 1);
  size_t r;
  while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap) b = (char*)realloc(b, (cap *= 2) + 1);
  }
  fclose(f);
  if (b) b[n] = '\0';
  if (len) *len = n;
  return b;
}

/* The checkpoint files of a run folder (ckpt-*.npz, checkpoint.latest) with their bytes. */
typedef struct snap {
  int n;
  char name[32][256];
  char* data[32];
  size_t len[32];
} snap;

static void snap_take(snap* s, const char* dir) {
  memset(s, 0, sizeof *s);
  DIR* d = opendir(dir);
  if (!d) return;
  struct dirent* de;
  while ((de = readdir(d)) && s->n < 32) {
    if (strncmp(de->d_name, "ckpt-", 5) != 0 && strcmp(de->d_name, "checkpoint.latest") != 0) continue;
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    snprintf(s->name[s->n], sizeof s->name[0], "%s", de->d_name);
    s->data[s->n] = slurp(p, &s->len[s->n]);
    s->n++;
  }
  closedir(d);
}

static void snap_free(snap* s) {
  for (int i = 0; i < s->n; i++) free(s->data[i]);
  s->n = 0;
}

/* The files after the fault are the files before it, byte for byte, and nothing else. */
static void snap_same(const snap* a, const snap* b) {
  int extra = 0;
  for (int i = 0; i < b->n; i++) extra += strcmp(b->name[i], "ckpt-best.npz") == 0;
  for (int i = 0; i < a->n; i++) extra -= strcmp(a->name[i], "ckpt-best.npz") == 0;
  CHECK(a->n + extra == b->n, "%d checkpoint files before the fault, %d after", a->n, b->n);
  for (int i = 0; i < b->n; i++) {
    int j = 0;
    while (j < a->n && strcmp(a->name[j], b->name[i]) != 0) j++;
    if (j == a->n && strcmp(b->name[i], "ckpt-best.npz") == 0) { /* a hard link to a kept one */
      int same = 0;
      for (int k = 0; k < a->n && !same; k++)
        same = a->len[k] == b->len[i] && a->data[k] && b->data[i] && memcmp(a->data[k], b->data[i], a->len[k]) == 0;
      CHECK(same, "new ckpt-best.npz is none of the kept checkpoints");
      continue;
    }
    if (j == a->n) {
      CHECK(0, "new file %s after the fault", b->name[i]);
      continue;
    }
    CHECK(a->data[j] && b->data[i] && a->len[j] == b->len[i] && memcmp(a->data[j], b->data[i], a->len[j]) == 0,
          "%s changed", a->name[j]);
  }
}

/* The run finished after the fault ends like the uninterrupted one. */
static void same_as_full(const char* run) {
  if (!g_have_full) return;
  char a[600], b[700];
  const char* files[] = {"progress.csv", "model_train.csv"};
  for (int i = 0; i < 2; i++) { /* every column by name but the timing ones (csv_read.h) */
    snprintf(a, sizeof a, "%s/inverted_pendulum-full-s0/%s", g_dir, files[i]);
    snprintf(b, sizeof b, "%s/%s", run, files[i]);
    int d = csv_compare(files[i], a, b, -1, 0, NULL, NULL);
    CHECK(d == 0, "%s differs from the uninterrupted run's (%d cells; -1: shape)", files[i], d);
  }
  snprintf(a, sizeof a, "%s/inverted_pendulum-full-s0", g_dir);
  int fa, fb, ea, eb;
  char *x = read_events(a, &fa, &ea), *y = read_events(run, &fb, &eb);
  CHECK(x && y && fb == 1 && strcmp(x, y) == 0, "TensorBoard events (%d files) differ from the uninterrupted run's", fb);
  free(x);
  free(y);
}

static int has_tmp(const char* dir) {
  DIR* d = opendir(dir);
  if (!d) return 0;
  struct dirent* de;
  int n = 0;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    n += l > 4 && strcmp(de->d_name + l - 4, ".tmp") == 0;
  }
  closedir(d);
  return n;
}

/* Interrupted run in run_dir with tag; then a resume under the fault (prepared by `before`, which
 * may be NULL, and undone by `after`); then a resume without it. */
static void scenario(const char* run_dir, const char* tag, int fault, const char* before,
                     const char* after, const char* errno_text) {
  char cmd[2400], run[600], log[700];
  snprintf(run, sizeof run, "%s/inverted_pendulum-%s-s0", run_dir, tag);
  snprintf(log, sizeof log, "%s/%s.log", g_dir, tag);
  snprintf(cmd, sizeof cmd, "MBPO_TEST_INTERRUPT_STEP=230 %s train " ARGS " run_dir=%s tag=%s > %s 2>&1", g_bin,
           run_dir, tag, log);
  int rc = run_cmd(cmd, FAULT_NONE);
  CHECK(rc == 0, "interrupted run exited %d (%s)", rc, log);
  if (rc != 0) return;
  chmod(log, 0666); /* the resume under the fault may run as nobody */
  snap s0, s1;
  snap_take(&s0, run);
  CHECK(s0.n >= 3, "only %d checkpoint files after the interrupted run", s0.n);
  if (before) {
    snprintf(cmd, sizeof cmd, before, run, run);
    CHECK(run_cmd(cmd, FAULT_NONE) == 0, "preparing the fault failed: %s", cmd);
  }
  /* the resume under the fault trains to the end, warns at each checkpoint, exits 1 */
  snprintf(cmd, sizeof cmd, "%s train --resume %s > %s 2>&1", g_bin, run, log);
  rc = run_cmd(cmd, fault);
  char* out = slurp(log, NULL);
  CHECK(rc == 1, "resume under the fault exited %d, want 1:\n%s", rc, out ? out : "");
  CHECK(out && strstr(out, "checkpoint not written (ckpt-e000001-t000") && strstr(out, errno_text),
        "no warning naming the kept checkpoint and '%s':\n%s", errno_text, out ? out : "");
  CHECK(out && strstr(out, "the final checkpoint could not be written; the newest is") &&
            strstr(out, "mbpo: done: "),
        "the run did not train to the end and say what is kept:\n%s", out ? out : "");
  free(out);
  snap_take(&s1, run);
  snap_same(&s0, &s1);
  CHECK(has_tmp(run) == 0, "temporary files left in %s", run);
  snap_free(&s0);
  snap_free(&s1);
  if (after) {
    snprintf(cmd, sizeof cmd, after, run, run);
    CHECK(run_cmd(cmd, FAULT_NONE) == 0, "undoing the fault failed: %s", cmd);
  }
  /* without the fault the run continues from the kept checkpoint to the uninterrupted result */
  snprintf(cmd, sizeof cmd, "%s train --resume %s > %s 2>&1", g_bin, run, log);
  rc = run_cmd(cmd, FAULT_NONE);
  CHECK(rc == 0, "resume after the fault exited %d (%s)", rc, log);
  if (rc == 0) same_as_full(run);
}

static void test_reference_run(void) {
  if (!g_bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "%s train " ARGS " run_dir=%s tag=full > /dev/null 2>&1", g_bin, g_dir);
  CHECK(run_cmd(cmd, FAULT_NONE) == 0, "uninterrupted run failed");
  g_have_full = !tst_case_failed;
}

static void test_file_size_limit(void) {
  if (!g_bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  scenario(g_dir, "fsize", FAULT_FSIZE, NULL, NULL, "File too large");
}

static void test_disk_full(void) {
  if (!g_bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  char mnt[600];
  snprintf(mnt, sizeof mnt, "%s/small", g_dir);
  if (mkdir(mnt, 0755) != 0) SKIP("cannot create %s", mnt);
  if (mount("tmpfs", mnt, "tmpfs", 0, "size=4m") != 0)
    SKIP("cannot mount a small tmpfs for a full disk (%s; needs root)", strerror(errno));
  /* fill the file system up: dd stops with "No space left on device" */
  scenario(mnt, "full", FAULT_NONE, "dd if=/dev/zero of=%s/../filler bs=64k 2>/dev/null; test -s %s/../filler",
           "rm %s/../filler", "No space left on device");
  if (umount(mnt) != 0) fprintf(stderr, "  cannot unmount %s: %s\n", mnt, strerror(errno));
}

static void test_unwritable_folder(void) {
  if (!g_bin) SKIP("MBPO_BIN is not set (run through tests/run.sh)");
  if (geteuid() == 0 && access(g_bin, X_OK) == 0) {
    /* the resume runs as nobody: the binary and the folders above must let it through */
    struct stat st;
    if (stat(g_bin, &st) != 0 || !(st.st_mode & S_IXOTH)) SKIP("user nobody cannot run %s", g_bin);
  }
  /* as root: the folder is nobody's, read-only for everyone; its files stay writable by nobody */
  const char* before = geteuid() == 0 ? "chown -R 65534:65534 %s && chmod 0555 %s" : "chmod 0555 %s";
  scenario(g_dir, "ro", FAULT_NOBODY, before, "chmod 0755 %s", "Permission denied");
}

int main(void) {
  g_bin = getenv("MBPO_BIN");
  if (!mkdtemp(g_dir)) {
    perror("mkdtemp");
    return 1;
  }
  chmod(g_dir, 0755); /* user nobody reaches the run folders below */
  RUN(test_reference_run);
  RUN(test_file_size_limit);
  RUN(test_disk_full);
  RUN(test_unwritable_folder);
  tmp_dir_done(g_dir, tst_fail);
  return test_done();
}
