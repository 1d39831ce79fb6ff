/* tool_npz_read.c: list an .npz archive as the engine reads it, for tests/test_npz.py.
 *
 *   tool_npz_read IN.npz
 *
 * Prints "count N", then one line per entry in archive order:
 *   NAME<TAB>DTYPE<TAB>SHAPE<TAB>CRC     DTYPE one of f4 i4 u1 f8 i8; SHAPE "3,4" ("" for 0-d);
 *                                         CRC = CRC-32 of the array's data bytes, 8 hex digits
 *   NAME<TAB>error<TAB>MESSAGE            when the entry cannot be read
 * Exit status: 0 when the archive opened (even if entries failed), 1 when it did not
 * ("error: MESSAGE" on stdout), 2 for bad usage. */
#include <stdio.h>
#include <zlib.h>

#include "npz.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: tool_npz_read IN.npz\n");
    return 2;
  }
  static const char* const dtype[] = {"f4", "i4", "u1", "f8", "i8"};
  char err[512];
  npz_archive* a = npz_open(argv[1], err, sizeof err);
  if (!a) {
    printf("error: %s\n", err);
    return 1;
  }
  printf("count %d\n", npz_count(a));
  for (int i = 0; i < npz_count(a); i++) {
    const char* name = npz_name(a, i);
    npy_array x;
    if (npz_get(a, name, &x, err, sizeof err) != 0) {
      printf("%s\terror\t%s\n", name, err);
      continue;
    }
    printf("%s\t%s\t", name, dtype[x.type]);
    for (int d = 0; d < x.ndim; d++) printf("%s%ld", d ? "," : "", x.shape[d]);
    size_t bytes = x.count * (size_t)npy_type_size(x.type);
    unsigned long crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < bytes; off += 1u << 30) {
      size_t k = bytes - off < (1u << 30) ? bytes - off : (1u << 30);
      crc = crc32(crc, (const unsigned char*)x.data + off, (unsigned)k);
    }
    printf("\t%08lx\n", crc);
    npy_free(&x);
  }
  npz_close(a);
  return 0;
}
