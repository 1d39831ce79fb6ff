/* tmp_files.h: a test program's scratch folder and writing files into it (header-only, for the
 * tests that build config files and run folders). */
#ifndef MBPO_TMP_FILES_H
#define MBPO_TMP_FILES_H

#include <stdio.h>
#include <stdlib.h>

static char g_tmp[256]; /* the scratch folder of this test program */

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

#endif
