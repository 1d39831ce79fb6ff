/* run_fixture.h: fake run folders for the tests of the commands that read them (`mbpo plot`,
 * `mbpo summary`): a scratch folder, run folders holding config.ini and progress.csv, and the
 * binary under test (MBPO_BIN) run with its output captured. Include after test.h. */
#ifndef MBPO_RUN_FIXTURE_H
#define MBPO_RUN_FIXTURE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "sh_capture.h"
#include "test.h"
#include "tmp_files.h"


/* Make g_tmp, $TMPDIR/mbpo_test_<name>_XXXXXX (/tmp without TMPDIR). Returns 0, or -1 after
 * perror. */
static int fixture_tmp_make(const char* name) {
  const char* t = getenv("TMPDIR");
  snprintf(g_tmp, sizeof g_tmp, "%.200s/mbpo_test_%.20s_XXXXXX", t && *t ? t : "/tmp", name);
  if (!mkdtemp(g_tmp)) {
    perror("mkdtemp");
    return -1;
  }
  return 0;
}

/* nftw callback of fixture_tmp_remove: remove one entry (the folders after their contents). */
static int fixture_rm_entry(const char* p, const struct stat* sb, int flag, struct FTW* ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

/* Remove g_tmp and all in it, unless TEST_KEEP is set (to look at the files after a failure). */
static void fixture_tmp_remove(void) {
  if (!getenv("TEST_KEEP")) nftw(g_tmp, fixture_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The whole of a file, up to 1 MiB (malloc'ed; NULL when it cannot be read). */
static char* read_text(const char* path) {
  FILE* f = fopen(path, "r");
  if (!f) return NULL;
  char* buf = (char*)calloc(1, 1 << 20);
  if (buf && fread(buf, 1, (1 << 20) - 1, f) == 0) buf[0] = '\0';
  fclose(f);
  return buf;
}

/* The size of path in bytes, -1 when it does not exist. */
static long file_size(const char* path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* The default configuration with task, tag and seed, run_dir g_tmp, device=cpu (the run folders
 * these tests fake say which device they would have trained on, as every test's runs do); exit 2
 * when task or tag is refused. */
static mbpo_config base_cfg(const char* task, const char* tag, long seed) {
  mbpo_config c;
  char err[512];
  cfg_defaults(&c);
  if (cfg_set(&c, "task", task, err, sizeof err) != 0 || cfg_set(&c, "tag", tag, err, sizeof err) != 0 ||
      cfg_set(&c, "device", "cpu", err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    exit(2);
  }
  c.seed = seed;
  snprintf(c.run_dir, sizeof c.run_dir, "%s", g_tmp);
  return c;
}

/* A run folder <root>/<task>-<tag>-s<seed> (root made when missing) with config.ini
 * (cfg_write_ini) and progress.csv (the text progress); its path in out (n bytes) unless out is
 * NULL. Exit 2 when it cannot be made. */
static void make_run(const char* root, const mbpo_config* c, const char* progress, char* out,
                     size_t n) {
  char own[1100], p[1200];
  char* dir = out ? out : own;
  snprintf(dir, out ? n : sizeof own, "%s/%s-%s-s%ld", root, c->task, c->tag, c->seed);
  mkdir(root, 0777);
  if (mkdir(dir, 0777) != 0) {
    fprintf(stderr, "cannot create %s\n", dir);
    exit(2);
  }
  snprintf(p, sizeof p, "%s/config.ini", dir);
  FILE* f = fopen(p, "w");
  if (!f) exit(2);
  cfg_write_ini(c, f);
  fclose(f);
  snprintf(p, sizeof p, "%s/progress.csv", dir);
  write_text(p, progress);
}

/* `[env] $MBPO_BIN <command> ARGS` (args already quoted for the shell), its output (stdout and
 * stderr) in out; the exit status as run_sh gives it. */
static int run_mbpo(const char* env, const char* command, const char* args, char* out, size_t n) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "%s '%s' %s %s", env ? env : "", getenv("MBPO_BIN"), command, args);
  return run_sh(cmd, out, n);
}

/* End the current case as skipped when MBPO_BIN (the binary under test) is not set. */
#define NEED_BIN()                                                                   \
  do {                                                                               \
    if (!getenv("MBPO_BIN")) SKIP("MBPO_BIN is not set (run through tests/run.sh)"); \
  } while (0)

#endif
