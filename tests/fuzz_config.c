/* fuzz_config.c: libFuzzer entry point for the configuration reader (config.h). Not built by make.
 *
 * Build and run (from the repository root, after `make` has built build/libmbpo.a, which supplies
 * the task table that cfg_validate consults; clang with libFuzzer, Debian: clang-14
 * libclang-rt-14-dev). host/config.c and host/log.c are compiled instrumented and win over the
 * copies in the archive:
 *
 *   clang -g -O1 -std=c11 -Wall -Wextra -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=undefined -D_GNU_SOURCE -Iinclude -Ienvs \
 *     tests/fuzz_config.c host/config.c host/log.c build/libmbpo.a -fopenmp=libgomp \
 *     -lmujoco -lopenblas -linih -lz -lm -lpthread -o /tmp/fuzz_config
 *   mkdir -p /tmp/config_corpus && cp configs/[a-z]*.ini /tmp/config_corpus/
 *   /tmp/fuzz_config -max_total_time=600 -max_len=4096 -timeout=2 -rss_limit_mb=1024 \
 *     /tmp/config_corpus
 *
 * Each input goes three ways:
 *  (a) as INI text through cfg_load_ini_text over the defaults. A failed load must leave the
 *      config unchanged and give a message; a config that loads and passes cfg_validate is written
 *      with cfg_write_ini and read back, and must read back without error and cfg_equal;
 *  (b) the same bytes through a memfd and cfg_load_ini: when the input holds no NUL byte, the
 *      outcome (success, resulting config) must be the one of (a);
 *  (c) split at the first '=' into key and value for cfg_set: a failure leaves the config
 *      unchanged; a success formats (cfg_format_value) to text that cfg_set reads back equal.
 * Any crash, sanitizer report, abort, exit (mbpo_fatal) or timeout is a bug; put the input in
 * tests/test_config_fuzz.c. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

static void fail(const char* what, const char* err, const char* text) {
  fprintf(stderr, "fuzz_config: %s\n  err: %s\n  text:\n%s\n", what, err, text ? text : "");
  abort();
}

/* a's outcome: 0 ok / -1 failed; on failure c must still be `before` and err must be set */
static void check_failed_load(const mbpo_config* c, const mbpo_config* before, const char* err) {
  if (!cfg_equal(c, before)) fail("a failed load changed the config", err, NULL);
  if (!err[0]) fail("a failed load gave no message", err, NULL);
}

static void round_trip(const mbpo_config* c) {
  char* buf = NULL;
  size_t n = 0;
  FILE* m = open_memstream(&buf, &n);
  if (!m) return;
  cfg_write_ini(c, m);
  fclose(m);
  char err[1024] = "";
  mbpo_config back;
  cfg_defaults(&back);
  if (cfg_load_ini_text(&back, buf, "written", err, sizeof err) != 0)
    fail("the written config does not read back", err, buf);
  if (!cfg_equal(c, &back)) fail("the written config reads back different", err, buf);
  if (cfg_validate(&back, err, sizeof err) != 0) fail("the read-back config is invalid", err, buf);
  free(buf);
}

static int load_file(mbpo_config* c, const uint8_t* data, size_t size, char* err, int errlen) {
  static int fd = -2;
  if (fd == -2) fd = memfd_create("fuzz_config", 0);
  if (fd < 0) return -2;
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) return -2;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  return cfg_load_ini(c, path, err, errlen);
}

static void set_one(const char* text) {
  char key[512], err[1024] = "";
  const char* eq = strchr(text, '=');
  const char* value = eq ? eq + 1 : NULL;
  size_t klen = eq ? (size_t)(eq - text) : strlen(text);
  if (klen >= sizeof key) klen = sizeof key - 1;
  memcpy(key, text, klen);
  key[klen] = 0;
  mbpo_config c, before;
  cfg_defaults(&c);
  before = c;
  if (cfg_set(&c, key, value, err, sizeof err) != 0) {
    if (!cfg_equal(&c, &before)) fail("a failed cfg_set changed the config", err, text);
    if (!err[0]) fail("a failed cfg_set gave no message", err, text);
    if (!cfg_find(key) && !cfg_closest_key(key)) fail("no closest key", err, text);
    return;
  }
  const cfg_desc* d = cfg_find(key);
  if (!d) fail("cfg_set took an unknown key", err, text);
  char v[CFG_STR_MAX + 64];
  cfg_format_value(&c, d, v, sizeof v);
  mbpo_config again = before;
  if (cfg_set(&again, key, v, err, sizeof err) != 0) fail("a formatted value does not read back", err, v);
  if (!cfg_equal(&c, &again)) fail("a formatted value reads back different", err, v);
  if (cfg_validate(&c, err, sizeof err) == 0) round_trip(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  char* text = (char*)malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  int has_nul = memchr(data, 0, size) != NULL;

  /* (a) INI text over the defaults */
  char err[1024] = "";
  mbpo_config def, a;
  cfg_defaults(&def);
  a = def;
  int ra = cfg_load_ini_text(&a, text, "fuzz", err, sizeof err);
  if (ra != 0) check_failed_load(&a, &def, err);
  else if (cfg_validate(&a, err, sizeof err) == 0) round_trip(&a);
  static FILE* null;
  if (!null) null = fopen("/dev/null", "w");
  if (null && ra == 0) cfg_print(&a, null);

  /* (b) the same bytes from a file */
  char ferr[1024] = "";
  mbpo_config b = def;
  int rb = load_file(&b, data, size, ferr, sizeof ferr);
  if (rb != -2) {
    if (rb != 0) check_failed_load(&b, &def, ferr);
    if (!has_nul && (rb != ra || !cfg_equal(&a, &b))) fail("file and text loads differ", ferr, text);
  }

  /* (c) key=value */
  set_one(text);
  free(text);
  return 0;
}
