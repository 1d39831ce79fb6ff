/* tmp_files.h: a test program's scratch folder and writing files into it (header-only, for the
 * tests that build config files and run folders). */
#ifndef MBPO_TMP_FILES_H
#define MBPO_TMP_FILES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_tmp[256] __attribute__((unused)); /* the scratch folder of this test program */

/** Write text to path; exit 2 when it cannot (the fixture is broken, not the code under test). */
static inline void write_text(const char* path, const char* text) {
  FILE* f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
  fputs(text, f);
  fclose(f);
}

/** The end of a test program's scratch folder dir: removed when no test failed (failed = 0) and
 *  TEST_KEEP is unset, else kept and named on stderr for a look. */
static inline void tmp_dir_done(const char* dir, int failed) {
  if (!failed && !getenv("TEST_KEEP")) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", dir);
  } else {
    fprintf(stderr, "  files kept in %s\n", dir);
  }
}

#endif
