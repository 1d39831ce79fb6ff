/* fuzz_npz.c: libFuzzer entry point for the .npz reader (npz.h). Not built by make.
 *
 * Build and run (from the repository root; clang with libFuzzer, Debian: clang-14 libclang-rt-14-dev):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE \
 *     -Iinclude tests/fuzz_npz.c host/npz.c host/npy.c host/log.c -lz -o /tmp/fuzz_npz
 *   mkdir -p /tmp/npz_corpus && build/tests/tool_npz_write /tmp/npz_corpus/a.npz && \
 *     build/tests/tool_npz_write /tmp/npz_corpus/z.npz --zip64 && \
 *     build/tests/tool_npz_write /tmp/npz_corpus/s.npz --level 0
 *   /tmp/fuzz_npz -max_total_time=300 -max_len=8192 -rss_limit_mb=1024 -malloc_limit_mb=256 \
 *     /tmp/npz_corpus
 *
 * Each input is an archive image: it is opened from memory (npz_open_mem) and, through a memfd,
 * from a file (npz_open), and every entry is read with npz_get. Any crash, sanitizer report,
 * timeout or allocation over -malloc_limit_mb is a bug; put the input in test_npz.c's
 * test_fuzz_regressions. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "npz.h"

static void read_all(npz_archive* a) {
  char err[256];
  for (int i = 0; i < npz_count(a); i++) {
    npy_array x;
    if (npz_get(a, npz_name(a, i), &x, err, sizeof err) == 0) npy_free(&x);
  }
  npy_array x;
  if (npz_get(a, "missing", &x, err, sizeof err) == 0) npy_free(&x);
  npz_close(a);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  char err[256];
  npz_archive* a = npz_open_mem(data, size, err, sizeof err);
  if (a) read_all(a);
  static int fd = -2;
  if (fd == -2) fd = memfd_create("fuzz_npz", 0);
  if (fd >= 0 && ftruncate(fd, 0) == 0 && pwrite(fd, data, size, 0) == (ssize_t)size) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    a = npz_open(path, err, sizeof err);
    if (a) read_all(a);
  }
  return 0;
}
