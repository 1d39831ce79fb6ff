/* test_fuzz_corpus.c: the libFuzzer corpora of the config reader and the checkpoint (.npz) reader,
 * replayed through the fuzz targets themselves (tests/fuzz_config.c, tests/fuzz_npz.c, included
 * here), so every input keeps passing the targets' checks: no crash, no sanitizer report (under
 * make SAN=1), and for the config reader the round trips and the unchanged config on a failed load
 * (the target aborts otherwise).
 *
 * tests/fuzz_corpus/<name>.hex holds one input per line in hex ('#' lines are comments): each
 * fuzzer's corpus after a run of 10+ minutes, merged (-merge=1) to the inputs that add coverage.
 * To refresh: run the fuzzer (build lines in the fuzz_*.c headers), merge into an empty folder, and
 * write each file's bytes as one hex line. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLVMFuzzerTestOneInput fuzz_config_one
#include "fuzz_config.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_npz_one
#include "fuzz_npz.c"
#undef LLVMFuzzerTestOneInput

#include "test.h"

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Feed every input of the corpus file to fn; returns the number of inputs, -1 when the file is
 * missing, -2 - line for a malformed line. */
static long replay(const char* path, int (*fn)(const uint8_t*, size_t)) {
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  size_t cap = 1 << 16;
  char* line = (char*)malloc(cap);
  uint8_t* buf = (uint8_t*)malloc(cap / 2 + 1);
  long n = 0, lineno = 0;
  for (;;) {
    size_t len = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF && ch != '\n') {
      if (len + 1 >= cap) {
        cap *= 2;
        line = (char*)realloc(line, cap);
        buf = (uint8_t*)realloc(buf, cap / 2 + 1);
      }
      line[len++] = (char)ch;
    }
    if (ch == EOF && len == 0) break;
    lineno++;
    if (len == 0 || line[0] == '#') continue;
    if (len % 2) {
      n = -2 - lineno;
      break;
    }
    size_t k = 0;
    for (; k < len / 2; k++) {
      int hi = hexval(line[2 * k]), lo = hexval(line[2 * k + 1]);
      if (hi < 0 || lo < 0) break;
      buf[k] = (uint8_t)(hi << 4 | lo);
    }
    if (k != len / 2) {
      n = -2 - lineno;
      break;
    }
    /* an exact-size copy, so that ASan sees any read past the input */
    uint8_t* in = (uint8_t*)malloc(k ? k : 1);
    memcpy(in, buf, k);
    fn(in, k);
    free(in);
    n++;
  }
  fclose(f);
  free(line);
  free(buf);
  return n;
}

static void check_corpus(const char* name, int (*fn)(const uint8_t*, size_t)) {
  const char* root = getenv("MBPO_ROOT");
  char path[4200];
  snprintf(path, sizeof path, "%s/tests/fuzz_corpus/%s.hex", root ? root : ".", name);
  long n = replay(path, fn);
  CHECK(n != -1, "cannot read %s", path);
  CHECK(n >= -1, "%s: line %ld is not hex", path, -2 - n);
  CHECK(n != 0, "%s holds no input", path);
  if (n > 0 && getenv("TEST_VERBOSE")) fprintf(stderr, "  %s: %ld inputs\n", path, n);
}

static void test_config_corpus(void) { check_corpus("config", fuzz_config_one); }

static void test_npz_corpus(void) { check_corpus("npz", fuzz_npz_one); }

int main(void) {
  RUN(test_config_corpus);
  RUN(test_npz_corpus);
  return test_done();
}
