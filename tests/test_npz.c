/* test_npz.c: .npz archives (npz.h).
 *
 * Round trips (every type, 0-d / empty / 8-d shapes, names, every compression level, both readers:
 * file and memory), byte-for-byte determinism, a ~50 MB array with write/read throughput printed,
 * ZIP64 (through the test hook's lowered limits, and for real with 70000 entries), writer argument
 * errors, atomicity (a failed write at any point leaves the previous archive intact and no .tmp),
 * and malformed input: every truncation, byte flips through headers and data, and hand-made
 * archives (decompression bomb, impossible sizes, unsupported method, encryption, overlapping or
 * duplicate entries, long names, offsets out of range, bad ZIP64 records). Every malformed input
 * must give an error, never a crash: run it under `make SAN=1` too (build-san/tests/test_npz).
 * NPZ_DEBUG=1 prints the reason for every refused input. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "clock.h"
#include "npz.h"
#include "test.h"

static char g_dir[256];

/* A path in the test folder (one of 8 rotating buffers: copy it to keep it longer). */
static const char* tpath(const char* name) {
  static char buf[8][512];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
  return buf[k];
}

static int exists(const char* path) { return access(path, F_OK) == 0; }

/* Read a whole file (exact-size allocation, so ASan sees any overread). */
static unsigned char* slurp(const char* path, size_t* n) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* b = malloc(len > 0 ? (size_t)len : 1);
  if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *n = (size_t)len;
  return b;
}

static int spit(const char* path, const void* b, size_t n) {
  FILE* f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(b, 1, n, f) == n;
  return (fclose(f) == 0 && ok) ? 0 : -1;
}

static unsigned g16(const unsigned char* p) { return (unsigned)p[0] | ((unsigned)p[1] << 8); }
static unsigned long g32(const unsigned char* p) {
  return (unsigned long)g16(p) | ((unsigned long)g16(p + 2) << 16);
}
static void p16(unsigned char* p, unsigned v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}
static void p32(unsigned char* p, unsigned long v) {
  p16(p, (unsigned)(v & 0xFFFF));
  p16(p + 2, (unsigned)(v >> 16));
}

/* ---- a reference set of arrays ---- */

typedef struct arr {
  const char* name;
  int type, ndim;
  long shape[NPY_MAX_DIMS];
  void* data;
  size_t bytes;
} arr;

enum { NREF = 12 };
static arr g_ref[NREF];

static void ref_init(void) {
  static const struct {
    const char* name;
    int type, ndim;
    long shape[8];
  } d[NREF] = {
      {"f32_2d", NPY_F32, 2, {3, 4}},
      {"i32_1d", NPY_I32, 1, {7}},
      {"u8_3d", NPY_U8, 3, {2, 3, 5}},
      {"f64_0d", NPY_F64, 0, {0}},
      {"i64_1d", NPY_I64, 1, {5}},
      {"f32_empty", NPY_F32, 1, {0}},
      {"i32_empty_3d", NPY_I32, 3, {3, 0, 2}},
      {"u8_0d", NPY_U8, 0, {0}},
      {"f64_8d", NPY_F64, 8, {1, 2, 1, 2, 1, 2, 1, 3}},
      {"nested/name.with.dots", NPY_F32, 2, {17, 33}},
      {"i64_0d", NPY_I64, 0, {0}},
      {"x", NPY_U8, 1, {300}},
  };
  unsigned s = 12345;
  for (int i = 0; i < NREF; i++) {
    arr* a = &g_ref[i];
    a->name = d[i].name;
    a->type = d[i].type;
    a->ndim = d[i].ndim;
    size_t count = 1;
    for (int k = 0; k < a->ndim; k++) count *= (size_t)(a->shape[k] = d[i].shape[k]);
    a->bytes = count * (size_t)npy_type_size(a->type);
    a->data = malloc(a->bytes ? a->bytes : 1);
    unsigned char* b = a->data;
    for (size_t k = 0; k < a->bytes; k++) {
      s = s * 1664525u + 1013904223u;
      b[k] = (unsigned char)(k % 7 == 0 ? 0 : s >> 24);
    }
  }
}

static void ref_free(void) {
  for (int i = 0; i < NREF; i++) free(g_ref[i].data);
}

static int write_ref(const char* path, int level, char* err, int errlen) {
  npz_writer* w = npz_begin();
  npz_set_level(w, level);
  for (int i = 0; i < NREF; i++)
    npz_add(w, g_ref[i].name, g_ref[i].data, g_ref[i].type, g_ref[i].ndim, g_ref[i].shape);
  return npz_finish(w, path, err, errlen);
}

/* Every reference array present and equal. Returns the number of mismatches. */
static int check_ref(npz_archive* a, const char* what) {
  int bad = 0;
  CHECK(npz_count(a) == NREF, "%s: %d entries", what, npz_count(a));
  for (int i = 0; i < NREF && i < npz_count(a); i++) {
    const arr* r = &g_ref[i];
    CHECK(strcmp(npz_name(a, i), r->name) == 0, "%s: entry %d is %s", what, i, npz_name(a, i));
    CHECK(npz_find(a, r->name) == i, "%s: find %s", what, r->name);
    npy_array x;
    char err[256];
    if (npz_get(a, r->name, &x, err, sizeof err) != 0) {
      CHECK(0, "%s: get %s: %s", what, r->name, err);
      bad++;
      continue;
    }
    int same = x.type == r->type && x.ndim == r->ndim &&
               x.count * (size_t)npy_type_size(x.type) == r->bytes &&
               memcmp(x.data, r->data, r->bytes) == 0;
    for (int k = 0; k < r->ndim && same; k++) same = x.shape[k] == r->shape[k];
    CHECK(same, "%s: %s differs (type %d ndim %d count %zu)", what, r->name, x.type, x.ndim, x.count);
    bad += !same;
    npy_free(&x);
  }
  return bad;
}

static void test_roundtrip(void) {
  char err[256];
  const char* p = tpath("rt.npz");
  CHECK(write_ref(p, NPZ_DEFAULT_LEVEL, err, sizeof err) == 0, "write: %s", err);
  CHECK(!exists(tpath("rt.npz.tmp")), "temporary file left behind");
  npz_archive* a = npz_open(p, err, sizeof err);
  CHECK(a != NULL, "open: %s", err);
  if (!a) return;
  check_ref(a, "file");
  CHECK(npz_name(a, -1) == NULL && npz_name(a, NREF) == NULL, "names out of range");
  CHECK(npz_find(a, "nope") == -1, "find of a missing name");
  npy_array x;
  CHECK(npz_get(a, "nope", &x, err, sizeof err) != 0 && strstr(err, "nope"), "missing: %s", err);
  CHECK(npz_get(a, "f32_2d.npy", &x, err, sizeof err) != 0, "names are given without .npy");
  npz_close(a);
  size_t n;
  unsigned char* b = slurp(p, &n);
  a = npz_open_mem(b, n, err, sizeof err);
  CHECK(a != NULL, "open_mem: %s", err);
  if (a) check_ref(a, "memory");
  npz_close(a);
  free(b);
  /* an empty archive */
  npz_writer* w = npz_begin();
  CHECK(npz_finish(w, tpath("empty.npz"), err, sizeof err) == 0, "empty: %s", err);
  a = npz_open(tpath("empty.npz"), err, sizeof err);
  CHECK(a && npz_count(a) == 0, "empty archive: %s", a ? "count" : err);
  npz_close(a);
  /* the conveniences */
  w = npz_begin();
  float f[2] = {1.5f, -2};
  int i4[2] = {-7, 9};
  unsigned char u[3] = {1, 2, 255};
  double d[1] = {0.125};
  long long i8[2] = {-(1LL << 40), 3};
  long s2 = 2, s3 = 3, s1 = 1;
  npz_add_f32(w, "f", f, 1, &s2);
  npz_add_i32(w, "i", i4, 1, &s2);
  npz_add_u8(w, "u", u, 1, &s3);
  npz_add_f64(w, "d", d, 1, &s1);
  npz_add_i64(w, "l", i8, 1, &s2);
  npz_add_scalar(w, "s", 42.5);
  CHECK(npz_finish(w, tpath("conv.npz"), err, sizeof err) == 0, "conveniences: %s", err);
  a = npz_open(tpath("conv.npz"), err, sizeof err);
  CHECK(a && npz_count(a) == 6, "conveniences: %s", a ? "count" : err);
  if (a && npz_get(a, "s", &x, err, sizeof err) == 0) {
    CHECK(x.type == NPY_F64 && x.ndim == 0 && x.count == 1 && ((double*)x.data)[0] == 42.5, "scalar");
    npy_free(&x);
  }
  if (a && npz_get(a, "l", &x, err, sizeof err) == 0) {
    CHECK(x.type == NPY_I64 && ((long long*)x.data)[0] == -(1LL << 40), "i64");
    npy_free(&x);
  }
  npz_close(a);
}

static void test_levels(void) {
  char err[256];
  static const int levels[] = {NPZ_FAST, 0, 1, 6, 9};
  for (int k = 0; k < 5; k++) {
    const char* p = tpath("lv.npz");
    CHECK(write_ref(p, levels[k], err, sizeof err) == 0, "level %d: %s", levels[k], err);
    size_t n;
    unsigned char* b = slurp(p, &n);
    CHECK(b && g16(b + 8) == (levels[k] == 0 ? 0u : 8u), "level %d: method %u", levels[k], g16(b + 8));
    npz_archive* a = npz_open_mem(b, n, err, sizeof err);
    CHECK(a != NULL, "level %d: %s", levels[k], err);
    if (a) check_ref(a, "level");
    npz_close(a);
    free(b);
  }
  /* levels can change between entries */
  npz_writer* w = npz_begin();
  long sh = 1000;
  float* v = calloc(1000, sizeof *v);
  for (int k = 0; k < 6; k++) {
    char name[8];
    snprintf(name, sizeof name, "a%d", k);
    npz_set_level(w, levels[k % 5]);
    npz_add_f32(w, name, v, 1, &sh);
  }
  free(v);
  CHECK(npz_set_level(w, 10) == -1 && npz_set_level(w, -2) == -1, "bad levels accepted");
  CHECK(npz_finish(w, tpath("mixed.npz"), err, sizeof err) == 0, "mixed: %s", err);
  npz_archive* a = npz_open(tpath("mixed.npz"), err, sizeof err);
  for (int k = 0; a && k < 6; k++) {
    npy_array x;
    int rc = npz_get(a, npz_name(a, k), &x, err, sizeof err);
    CHECK(rc == 0 && x.count == 1000, "mixed entry %d: %s", k, err);
    if (rc == 0) npy_free(&x);
  }
  npz_close(a);
}

static void test_deterministic(void) {
  char err[256];
  size_t n1, n2;
  write_ref(tpath("d1.npz"), NPZ_FAST, err, sizeof err);
  write_ref(tpath("d2.npz"), NPZ_FAST, err, sizeof err);
  unsigned char* a = slurp(tpath("d1.npz"), &n1);
  unsigned char* b = slurp(tpath("d2.npz"), &n2);
  CHECK(a && b && n1 == n2 && memcmp(a, b, n1) == 0, "two writes of the same arrays differ");
  free(a);
  free(b);
}

/* ~50 MB: pool-like float rows (random walks, actions, rewards, dones); the entry is larger than
 * the writer's buffer, so its local header is patched on disk. */
static void test_large(void) {
  const long rows = 500000, cols = 25; /* 50 MB */
  size_t count = (size_t)rows * (size_t)cols;
  float* v = malloc(count * sizeof *v);
  double st[25] = {0};
  unsigned s = 1;
  for (size_t i = 0; i < count; i++) {
    int j = (int)(i % (size_t)cols);
    s = s * 1664525u + 1013904223u;
    double u = (s >> 8) / 16777216.0;
    if (j < 22) v[i] = (float)(st[j] = 0.99 * st[j] + (u - 0.5) * 0.1);
    else if (j < 24) v[i] = (float)(2 * u - 1);
    else v[i] = u < 0.001f;
  }
  long sh[2] = {rows, cols};
  static const int levels[] = {NPZ_FAST, 0};
  for (int k = 0; k < 2; k++) {
    char err[256];
    const char* p = tpath("large.npz");
    npz_writer* w = npz_begin();
    npz_set_level(w, levels[k]);
    npz_add_ref(w, "pool/obs", v, NPY_F32, 2, sh);
    double t0 = now_s();
    int rc = npz_finish(w, p, err, sizeof err);
    double t1 = now_s();
    CHECK(rc == 0, "write: %s", err);
    struct stat st_;
    stat(p, &st_);
    npz_archive* a = npz_open(p, err, sizeof err);
    npy_array x;
    double t2 = now_s();
    rc = a ? npz_get(a, "pool/obs", &x, err, sizeof err) : -1;
    double t3 = now_s();
    CHECK(rc == 0, "read: %s", err);
    if (rc == 0) {
      CHECK(x.count == count && memcmp(x.data, v, count * sizeof *v) == 0, "large array differs");
      npy_free(&x);
    }
    npz_close(a);
    double mb = (double)(count * sizeof *v) / 1e6;
    printf("  npz %s: %.0f MB -> %.1f%%, write %.0f MB/s (fsync included), read %.0f MB/s\n",
           levels[k] == 0 ? "stored" : "fast (deflate, Z_RLE)", mb,
           100.0 * (double)st_.st_size / (mb * 1e6), mb / (t1 - t0), mb / (t3 - t2));
  }
  free(v);
}

static int file_has(const char* path, const char* sig4) {
  size_t n;
  unsigned char* b = slurp(path, &n);
  int found = 0;
  for (size_t i = 0; b && i + 4 <= n && !found; i++) found = memcmp(b + i, sig4, 4) == 0;
  free(b);
  return found;
}

static void test_zip64_hook(void) {
  char err[256];
  /* limit 0: every size, offset and the count in ZIP64 form; limit 300: some of each */
  static const unsigned long long limits[] = {0, 300, 5000};
  for (int k = 0; k < 3; k++) {
    npz_test_hooks(-1, limits[k], k == 2 ? 0xFFFF : limits[k]);
    const char* p = tpath("z64.npz");
    int rc = write_ref(p, k == 1 ? 0 : NPZ_FAST, err, sizeof err);
    npz_test_hooks(-1, 0xFFFFFFFFull, 0xFFFF);
    CHECK(rc == 0, "zip64 write: %s", err);
    CHECK(file_has(p, "PK\x06\x06") == (k < 2), "ZIP64 end record presence (limit %llu)", limits[k]);
    size_t n;
    unsigned char* b = slurp(p, &n);
    if (k == 0) CHECK(b && g32(b + 18) == 0xFFFFFFFFul && g16(b + 28) == 20, "local ZIP64 extra");
    npz_archive* a = npz_open_mem(b, n, err, sizeof err);
    CHECK(a != NULL, "zip64 open (limit %llu): %s", limits[k], err);
    if (a) check_ref(a, "zip64");
    npz_close(a);
    /* every truncation fails */
    int opened = 0;
    for (size_t len = 0; b && len < n; len++) {
      unsigned char* c = malloc(len ? len : 1);
      memcpy(c, b, len);
      npz_archive* t = npz_open_mem(c, len, err, sizeof err);
      opened += t != NULL;
      npz_close(t);
      free(c);
    }
    CHECK(opened == 0, "%d truncated ZIP64 archives opened", opened);
    free(b);
  }
}

/* More than 65535 entries: the real ZIP64 end record. */
static void test_zip64_count(void) {
  char err[256];
  const int n = 70000;
  npz_writer* w = npz_begin();
  npz_set_level(w, 0);
  for (int k = 0; k < n; k++) {
    char name[16];
    int v[2] = {k, -k};
    long sh = 2;
    snprintf(name, sizeof name, "e%05d", k);
    npz_add_i32(w, name, v, 1, &sh);
  }
  const char* p = tpath("many.npz");
  CHECK(npz_finish(w, p, err, sizeof err) == 0, "write: %s", err);
  CHECK(file_has(p, "PK\x06\x06"), "no ZIP64 end record");
  npz_archive* a = npz_open(p, err, sizeof err);
  CHECK(a && npz_count(a) == n, "open: %s", a ? "count" : err);
  static const int probe[] = {0, 65534, 65535, 65536, 69999};
  for (int k = 0; a && k < 5; k++) {
    char name[16];
    npy_array x;
    snprintf(name, sizeof name, "e%05d", probe[k]);
    int rc = npz_get(a, name, &x, err, sizeof err);
    CHECK(rc == 0 && ((int*)x.data)[0] == probe[k] && ((int*)x.data)[1] == -probe[k], "%s: %s", name,
          err);
    CHECK(strcmp(npz_name(a, probe[k]), name) == 0, "order");
    if (rc == 0) npy_free(&x);
  }
  npz_close(a);
  unlink(p);
}

static void test_writer_errors(void) {
  char err[256], longname[NPZ_NAME_MAX + 8];
  float v[4] = {0};
  long sh[2] = {2, 2}, neg[1] = {-1}, huge[2] = {1L << 40, 1};
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  struct {
    const char* what;
    const char* name;
    const void* data;
    int type, ndim;
    const long* shape;
  } bad[] = {
      {"empty name", "", v, NPY_F32, 2, sh},   {"NULL name", NULL, v, NPY_F32, 2, sh},
      {"long name", longname, v, NPY_F32, 2, sh}, {"bad type", "a", v, 9, 2, sh},
      {"ndim 9", "a", v, NPY_F32, 9, sh},      {"negative ndim", "a", v, NPY_F32, -1, sh},
      {"negative dim", "a", v, NPY_F32, 1, neg}, {"huge dim", "a", v, NPY_F32, 2, huge},
      {"NULL data", "a", NULL, NPY_F32, 2, sh}, {"NULL shape", "a", v, NPY_F32, 2, NULL},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    npz_writer* w = npz_begin();
    npz_add_f32(w, "ok", v, 2, sh);
    CHECK(npz_add(w, bad[k].name, bad[k].data, bad[k].type, bad[k].ndim, bad[k].shape) == -1,
          "%s accepted", bad[k].what);
    CHECK(npz_add_f32(w, "later", v, 2, sh) == -1, "%s: the writer goes on after an error", bad[k].what);
    CHECK(npz_finish(w, tpath("bad.npz"), err, sizeof err) == -1, "%s: finish succeeded", bad[k].what);
    CHECK(!exists(tpath("bad.npz")) && !exists(tpath("bad.npz.tmp")), "%s: file written", bad[k].what);
  }
  longname[NPZ_NAME_MAX - 4] = '\0'; /* the longest name accepted */
  npz_writer* w = npz_begin();
  CHECK(npz_add_f32(w, longname, v, 2, sh) == 0, "longest name refused");
  CHECK(npz_finish(w, tpath("long.npz"), err, sizeof err) == 0, "longest name: %s", err);
  npz_archive* a = npz_open(tpath("long.npz"), err, sizeof err);
  CHECK(a && npz_find(a, longname) == 0, "longest name: %s", a ? "not found" : err);
  npz_close(a);
  w = npz_begin();
  npz_add_f32(w, "twice", v, 2, sh);
  npz_add_f32(w, "other", v, 2, sh);
  npz_add_f32(w, "twice", v, 2, sh);
  CHECK(npz_finish(w, tpath("bad.npz"), err, sizeof err) == -1 && strstr(err, "twice"), "duplicate: %s",
        err);
  CHECK(!exists(tpath("bad.npz")), "duplicate: file written");
  CHECK(npz_finish(NULL, tpath("bad.npz"), err, sizeof err) == -1, "NULL writer");
  npz_abort(NULL);
  w = npz_begin();
  npz_add_f32(w, "x", v, 2, sh);
  npz_abort(w);
  CHECK(npz_add(NULL, "x", v, NPY_F32, 2, sh) == -1 && npz_set_level(NULL, 1) == -1, "NULL writer");
}

/* Values of the "B" archive written over "A" in the atomicity test. */
static int write_b(const char* path, char* err, int errlen) {
  const size_t n = 3u << 20; /* 12 MB of noise: compressed, larger than the writer's buffer */
  float* v = malloc(n * sizeof *v);
  unsigned s = 7;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    v[i] = (float)(s >> 8);
  }
  npz_writer* w = npz_begin();
  long sh = (long)n, s1 = 3;
  int small[3] = {1, 2, 3};
  npz_add_i32(w, "small", small, 1, &s1);
  npz_add_ref(w, "big", v, NPY_F32, 1, &sh);
  npz_add_i32(w, "tail", small, 1, &s1);
  int rc = npz_finish(w, path, err, errlen);
  free(v);
  return rc;
}

static void test_atomic(void) {
  char err[256], p[512], tmp[512];
  snprintf(p, sizeof p, "%s", tpath("ck.npz"));
  snprintf(tmp, sizeof tmp, "%s", tpath("ck.npz.tmp"));
  CHECK(write_ref(p, NPZ_FAST, err, sizeof err) == 0, "A: %s", err);
  size_t na;
  unsigned char* A = slurp(p, &na);
  /* a folder that does not exist */
  CHECK(write_ref(tpath("no/such/dir/ck.npz"), NPZ_FAST, err, sizeof err) == -1 && strstr(err, "no/such"),
        "missing folder: %s", err);
  /* the full size of B, then failures after N bytes all through it */
  CHECK(write_b(tpath("b.npz"), err, sizeof err) == 0, "B: %s", err);
  struct stat st;
  stat(tpath("b.npz"), &st);
  long long nb = (long long)st.st_size;
  long long cuts[] = {0, 1, 29, 30, 200, 4096, (4 << 20) - 1, 4 << 20, nb / 2, nb - 200, nb - 22, nb - 1};
  for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
    npz_test_hooks(cuts[k], 0xFFFFFFFFull, 0xFFFF);
    int rc = write_b(p, err, sizeof err);
    npz_test_hooks(-1, 0xFFFFFFFFull, 0xFFFF);
    CHECK(rc == -1 && strstr(err, "No space"), "fault after %lld of %lld bytes: rc %d (%s)", cuts[k], nb, rc,
          err);
    size_t n;
    unsigned char* now = slurp(p, &n);
    CHECK(now && n == na && memcmp(now, A, na) == 0, "fault after %lld bytes: previous archive changed",
          cuts[k]);
    free(now);
    CHECK(!exists(tmp), "fault after %lld bytes: temporary file left", cuts[k]);
  }
  /* the hook counts every byte handed to the kernel, the header patches too: at the file's size
   * the last patch fails, with room for it the write succeeds */
  npz_test_hooks(nb, 0xFFFFFFFFull, 0xFFFF);
  CHECK(write_b(p, err, sizeof err) == -1, "fault hook at the file size: the patches were not counted");
  npz_test_hooks(nb + 64, 0xFFFFFFFFull, 0xFFFF);
  CHECK(write_b(tpath("b2.npz"), err, sizeof err) == 0, "fault hook past the end: %s", err);
  npz_test_hooks(-1, 0xFFFFFFFFull, 0xFFFF);
  /* rename onto a folder fails: temporary removed */
  mkdir(tpath("adir"), 0777);
  CHECK(write_ref(tpath("adir"), NPZ_FAST, err, sizeof err) == -1, "rename onto a folder succeeded");
  CHECK(!exists(tpath("adir.tmp")), "temporary file left after a failed rename");
  rmdir(tpath("adir"));
  /* a writer that failed in npz_add leaves A too */
  npz_writer* w = npz_begin();
  npz_add(w, "", A, NPY_U8, 0, NULL);
  CHECK(npz_finish(w, p, err, sizeof err) == -1, "failed writer wrote");
  size_t n;
  unsigned char* now = slurp(p, &n);
  CHECK(now && n == na && memcmp(now, A, na) == 0, "previous archive changed");
  free(now);
  /* and a good write replaces it */
  CHECK(write_b(p, err, sizeof err) == 0, "B over A: %s", err);
  npz_archive* a = npz_open(p, err, sizeof err);
  CHECK(a && npz_count(a) == 3, "B: %s", a ? "count" : err);
  npz_close(a);
  free(A);
}

static void test_open_errors(void) {
  char err[256];
  CHECK(npz_open(tpath("missing.npz"), err, sizeof err) == NULL && strstr(err, "missing.npz"), "%s", err);
  CHECK(npz_open(g_dir, err, sizeof err) == NULL, "a folder opened");
  spit(tpath("zero.npz"), "", 0);
  CHECK(npz_open(tpath("zero.npz"), err, sizeof err) == NULL, "an empty file opened");
  spit(tpath("text.npz"), "this is not a zip archive, just some text of some length.", 57);
  CHECK(npz_open(tpath("text.npz"), err, sizeof err) == NULL, "a text file opened");
  CHECK(npz_open_mem(NULL, 0, err, sizeof err) == NULL, "NULL memory opened");
  if (mkfifo(tpath("fifo"), 0666) == 0) {
    CHECK(npz_open(tpath("fifo"), err, sizeof err) == NULL, "a FIFO opened");
    unlink(tpath("fifo"));
  }
  npz_close(NULL);
  CHECK(npz_count(NULL) == 0 && npz_name(NULL, 0) == NULL && npz_find(NULL, "a") == -1, "NULL archive");
}

/* The small archive the corruption tests work on: 3 entries, deflated, ~400 bytes. */
static unsigned char* small_archive(size_t* n, int level) {
  char err[256];
  npz_writer* w = npz_begin();
  npz_set_level(w, level);
  float f[6] = {1, 2, 3, 4, 5, 6};
  int i[3] = {-1, 0, 1};
  long s2[2] = {2, 3}, s1 = 3;
  npz_add_f32(w, "w", f, 2, s2);
  npz_add_i32(w, "idx", i, 1, &s1);
  npz_add_scalar(w, "t", 0.5);
  if (npz_finish(w, tpath("small.npz"), err, sizeof err) != 0) return NULL;
  return slurp(tpath("small.npz"), n);
}

/* Open buf[0..n) from an exact-size copy and read every entry. Returns -1 when the archive does
 * not open, else the number of entries that failed. */
static int try_all(const unsigned char* buf, size_t n) {
  unsigned char* c = malloc(n ? n : 1);
  memcpy(c, buf, n);
  char err[256];
  npz_archive* a = npz_open_mem(c, n, err, sizeof err);
  int failed = -1;
  if (!a && getenv("NPZ_DEBUG")) fprintf(stderr, "    open: %s\n", err);
  if (a) {
    failed = 0;
    for (int i = 0; i < npz_count(a); i++) {
      npy_array x;
      if (npz_get(a, npz_name(a, i), &x, err, sizeof err) != 0) {
        failed++;
        if (getenv("NPZ_DEBUG")) fprintf(stderr, "    get: %s\n", err);
      }
      else npy_free(&x);
    }
  }
  npz_close(a);
  free(c);
  return failed;
}

static void test_truncated(void) {
  for (int level = 0; level < 2; level++) {
    size_t n;
    unsigned char* b = small_archive(&n, level);
    CHECK(b && try_all(b, n) == 0, "the intact archive fails");
    int opened = 0;
    for (size_t len = 0; b && len < n; len++) opened += try_all(b, len) >= 0;
    CHECK(opened == 0, "%d truncations opened", opened);
    /* and through the file reader, every 7th length */
    for (size_t len = 0; b && len < n; len += 7) {
      char err[256];
      spit(tpath("trunc.npz"), b, len);
      npz_archive* a = npz_open(tpath("trunc.npz"), err, sizeof err);
      CHECK(a == NULL, "file truncated at %zu opened", len);
      npz_close(a);
    }
    free(b);
  }
}

/* Flip bits of every byte: never a crash; any change to an entry's data, CRC or sizes (local or
 * central) gives an error. */
static void test_flipped(void) {
  for (int level = 0; level < 2; level++) {
    size_t n;
    unsigned char* b = small_archive(&n, level);
    if (!b) {
      CHECK(0, "no archive");
      return;
    }
    unsigned long cd = g32(b + n - 6);
    /* data regions and CRC fields, from the directory */
    size_t lo[3], hi[3], crc_at[6];
    int ne = 0;
    for (unsigned long p = cd; ne < 3; ne++) {
      unsigned long off = g32(b + p + 42), cs = g32(b + p + 20);
      lo[ne] = off + 30 + g16(b + off + 26) + g16(b + off + 28);
      hi[ne] = lo[ne] + cs;
      crc_at[2 * ne] = off + 14;
      crc_at[2 * ne + 1] = p + 16;
      p += 46 + g16(b + p + 28) + g16(b + p + 30) + g16(b + p + 32);
    }
    static const unsigned char masks[] = {0x01, 0x10, 0x80, 0xFF};
    int undetected = 0, results[3] = {0, 0, 0};
    for (size_t i = 0; i < n; i++)
      for (int m = 0; m < 4; m++) {
        b[i] ^= masks[m];
        int r = try_all(b, n);
        b[i] ^= masks[m];
        results[r < 0 ? 0 : r == 0 ? 1 : 2]++;
        int in_data = 0;
        /* (the last byte of a deflate stream ends in padding bits that nothing checks) */
        for (int k = 0; k < 3; k++)
          in_data |= (i >= lo[k] && i < hi[k] - (level ? 1 : 0)) ||
                     (i >= crc_at[2 * k] && i < crc_at[2 * k] + 12) || /* local CRC and sizes */
                     (i >= crc_at[2 * k + 1] && i < crc_at[2 * k + 1] + 12);
        if (in_data && r == 0) {
          undetected++;
          if (undetected < 4) fprintf(stderr, "  undetected flip at %zu (^%02x)\n", i, masks[m]);
        }
      }
    CHECK(undetected == 0, "level %d: %d flips of data or directory CRCs went undetected", level,
          undetected);
    if (getenv("TEST_VERBOSE"))
      printf("  level %d: %zu bytes x 4 flips: %d refused at open, %d read fine, %d with entry errors\n",
             level, n, results[0], results[1], results[2]);
    free(b);
  }
}

/* A hand-made zip: entries stored (method 0) with correct CRCs, unless told otherwise. */
typedef struct zent {
  const char* name;
  const void* data;
  size_t n;
  int method;     /* written as the method field; data is given as it is stored */
  unsigned flags; /* general purpose flags */
  long long usize; /* -1: n */
  long long crc;   /* -1: computed over data */
} zent;

static size_t zip_build(unsigned char* out, const zent* e, int ne) {
  size_t p = 0, off[16];
  for (int i = 0; i < ne; i++) {
    size_t nl = strlen(e[i].name);
    unsigned long crc = e[i].crc >= 0 ? (unsigned long)e[i].crc : crc32(0, e[i].data, (unsigned)e[i].n);
    off[i] = p;
    p32(out + p, 0x04034b50);
    p16(out + p + 4, 20);
    p16(out + p + 6, e[i].flags);
    p16(out + p + 8, (unsigned)e[i].method);
    p32(out + p + 10, 0);
    p32(out + p + 14, crc);
    p32(out + p + 18, (unsigned long)e[i].n);
    p32(out + p + 22, (unsigned long)(e[i].usize >= 0 ? e[i].usize : (long long)e[i].n));
    p16(out + p + 26, (unsigned)nl);
    p16(out + p + 28, 0);
    memcpy(out + p + 30, e[i].name, nl);
    memcpy(out + p + 30 + nl, e[i].data, e[i].n);
    p += 30 + nl + e[i].n;
  }
  size_t cd = p;
  for (int i = 0; i < ne; i++) {
    size_t nl = strlen(e[i].name);
    unsigned long crc = e[i].crc >= 0 ? (unsigned long)e[i].crc : crc32(0, e[i].data, (unsigned)e[i].n);
    memset(out + p, 0, 46);
    p32(out + p, 0x02014b50);
    p16(out + p + 4, 20);
    p16(out + p + 6, 20);
    p16(out + p + 8, e[i].flags);
    p16(out + p + 10, (unsigned)e[i].method);
    p32(out + p + 16, crc);
    p32(out + p + 20, (unsigned long)e[i].n);
    p32(out + p + 24, (unsigned long)(e[i].usize >= 0 ? e[i].usize : (long long)e[i].n));
    p16(out + p + 28, (unsigned)nl);
    p32(out + p + 42, (unsigned long)off[i]);
    memcpy(out + p + 46, e[i].name, nl);
    p += 46 + nl;
  }
  memset(out + p, 0, 22);
  p32(out + p, 0x06054b50);
  p16(out + p + 8, (unsigned)ne);
  p16(out + p + 10, (unsigned)ne);
  p32(out + p + 12, (unsigned long)(p - cd));
  p32(out + p + 16, (unsigned long)cd);
  return p + 22;
}

/* A valid .npy image of n float32 zeros. */
static size_t npy_zeros(unsigned char* out, long n) {
  int h = npy_header((char*)out, NPY_F32, 1, &n);
  memset(out + h, 0, (size_t)n * 4);
  return (size_t)h + (size_t)n * 4;
}

static size_t deflate_buf(unsigned char* out, size_t cap, const unsigned char* in, size_t n) {
  z_stream z;
  memset(&z, 0, sizeof z);
  deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  z.next_in = (unsigned char*)in;
  z.avail_in = (unsigned)n;
  z.next_out = out;
  z.avail_out = (unsigned)cap;
  deflate(&z, Z_FINISH);
  size_t k = z.total_out;
  deflateEnd(&z);
  return k;
}

/* Open the image; expect the open (get_name NULL) or the get of get_name to fail with a message
 * containing want. */
static void expect_error(const char* what, const unsigned char* b, size_t n, const char* get_name,
                         const char* want) {
  unsigned char* c = malloc(n ? n : 1);
  memcpy(c, b, n);
  char err[256] = "";
  npz_archive* a = npz_open_mem(c, n, err, sizeof err);
  if (!get_name) {
    CHECK(a == NULL, "%s: opened", what);
  } else if (!a) {
    CHECK(0, "%s: did not open: %s", what, err);
  } else {
    npy_array x;
    int rc = npz_get(a, get_name, &x, err, sizeof err);
    CHECK(rc == -1, "%s: read", what);
    if (rc == 0) npy_free(&x);
  }
  CHECK(!want || strstr(err, want), "%s: message '%s' lacks '%s'", what, err, want);
  npz_close(a);
  free(c);
}

static void test_crafted(void) {
  unsigned char* out = malloc(1 << 22);
  unsigned char* npy = malloc(1 << 21);
  unsigned char* def = malloc(1 << 20);
  size_t nn = npy_zeros(npy, 1000), n;
  zent ok = {"a.npy", npy, nn, 0, 0, -1, -1};
  /* the builder itself makes valid archives */
  n = zip_build(out, &ok, 1);
  CHECK(try_all(out, n) == 0, "hand-made archive refused");
  /* a trailing archive comment is fine */
  memcpy(out + n, "comment", 7);
  p16(out + n - 2, 7);
  CHECK(try_all(out, n + 7) == 0, "archive with a comment refused");
  p16(out + n - 2, 8);
  expect_error("comment length past the end", out, n + 7, NULL, NULL);
  /* data descriptor flag (sizes in the directory are what count) */
  zent dd = ok;
  dd.flags = 8;
  n = zip_build(out, &dd, 1);
  CHECK(try_all(out, n) == 0, "data descriptor flag refused");
  /* not a .npy: the entry names itself in the error */
  zent txt = {"notes.txt", "hello", 5, 0, 0, -1, -1};
  n = zip_build(out, &txt, 1);
  expect_error("not a .npy entry", out, n, "notes.txt", "notes.txt");
  /* unsupported method, encryption */
  zent m = ok;
  m.method = 12;
  n = zip_build(out, &m, 1);
  expect_error("bzip2 method", out, n, "a", "method 12");
  m.method = 8;
  m.flags = 1;
  n = zip_build(out, &m, 1);
  expect_error("encrypted", out, n, NULL, "encrypted");
  /* stored with a size that differs from the stored bytes */
  zent s = ok;
  s.usize = (long long)nn + 1;
  n = zip_build(out, &s, 1);
  expect_error("stored size mismatch", out, n, "a", "impossible");
  /* CRC mismatch */
  s = ok;
  s.crc = 1234;
  n = zip_build(out, &s, 1);
  expect_error("CRC", out, n, "a", "CRC");
  /* decompression bomb: 1 MB of zeros deflates to ~1 KB; declared smaller than it inflates */
  unsigned char* npy2 = malloc(1 << 21);
  size_t big = npy_zeros(npy2, 250000);
  size_t dn = deflate_buf(def, 1 << 20, npy2, big);
  zent bomb = {"bomb.npy", def, dn, 8, 0, 4096, 0};
  n = zip_build(out, &bomb, 1);
  expect_error("bomb (declared small)", out, n, "bomb", "more than");
  /* declared far beyond what the compressed size can hold: refused before allocating */
  bomb.usize = 0xFFFFFFF0LL;
  n = zip_build(out, &bomb, 1);
  expect_error("bomb (declared huge)", out, n, "bomb", "impossible");
  /* declared larger than it inflates */
  bomb.usize = (long long)big + 100;
  n = zip_build(out, &bomb, 1);
  expect_error("short inflate", out, n, "bomb", "inflates to");
  /* the right declaration works, with the right CRC */
  bomb.usize = (long long)big;
  bomb.crc = (long long)crc32(0, npy2, (unsigned)big);
  n = zip_build(out, &bomb, 1);
  CHECK(try_all(out, n) == 0, "valid deflated entry refused");
  /* deflate data followed by junk inside the entry */
  memcpy(def + dn, "JUNK", 4);
  bomb.n = dn + 4;
  n = zip_build(out, &bomb, 1);
  expect_error("junk after the deflate stream", out, n, "bomb", "ends before");
  /* truncated deflate stream */
  bomb.n = dn / 2;
  n = zip_build(out, &bomb, 1);
  expect_error("truncated deflate stream", out, n, "bomb", NULL);
  /* garbage deflate data */
  memset(def, 0xFF, 64);
  bomb.n = 64;
  n = zip_build(out, &bomb, 1);
  expect_error("garbage deflate data", out, n, "bomb", NULL);
  /* duplicates: the same name, and "a" next to "a.npy" */
  zent two[2] = {ok, ok};
  n = zip_build(out, two, 2);
  expect_error("duplicate names", out, n, NULL, "two entries");
  two[1].name = "a";
  n = zip_build(out, two, 2);
  expect_error("a and a.npy", out, n, NULL, "two entries");
  /* overlapping entries: the second entry's offset points at the first */
  two[1].name = "b.npy";
  n = zip_build(out, two, 2);
  size_t cd = g32(out + n - 6);
  size_t cd2 = cd + 46 + 5;
  p32(out + cd2 + 42, 0);
  expect_error("overlapping entries", out, n, NULL, "overlap");
  /* offsets out of range */
  n = zip_build(out, &ok, 1);
  cd = g32(out + n - 6);
  p32(out + cd + 42, (unsigned long)cd);
  expect_error("local offset at the directory", out, n, NULL, "out of range");
  p32(out + cd + 42, 0xFFFFFFF0ul);
  expect_error("local offset past the end", out, n, NULL, "out of range");
  p32(out + cd + 42, 0);
  p32(out + cd + 20, (unsigned long)nn + 1);
  expect_error("compressed size past the directory", out, n, NULL, "out of range");
  p32(out + cd + 20, (unsigned long)nn);
  p32(out + n - 6, (unsigned long)cd + 1);
  expect_error("directory offset off by one", out, n, NULL, NULL);
  p32(out + n - 6, 0xFFFFFFF0ul);
  expect_error("directory offset past the end", out, n, NULL, NULL);
  p32(out + n - 6, (unsigned long)cd);
  p32(out + n - 10, 0xFFFFFFF0ul);
  expect_error("directory size past the end", out, n, NULL, NULL);
  p32(out + n - 10, 46 + 5);
  p16(out + n - 12, 0xFFFF);
  p16(out + n - 14, 0xFFFF);
  expect_error("entry count beyond the directory", out, n, NULL, "do not fit");
  p16(out + n - 12, 1);
  p16(out + n - 14, 2);
  expect_error("entries on another disk", out, n, NULL, "multi-disk");
  p16(out + n - 14, 1);
  p16(out + n - 18, 1);
  expect_error("another disk", out, n, NULL, "multi-disk");
  p16(out + n - 18, 0);
  CHECK(try_all(out, n) == 0, "restored archive refused");
  /* local header differs from the directory */
  out[30] = 'b';
  expect_error("local name differs", out, n, "a", "disagrees");
  out[30] = 'a';
  p32(out, 0x04034b51);
  expect_error("local signature", out, n, "a", "local header");
  p32(out, 0x04034b50);
  p16(out + 28, 60000); /* local extra runs past the data */
  expect_error("local extra length", out, n, "a", "past");
  p16(out + 28, 0);
  p32(out + cd, 0x02014b51);
  expect_error("central signature", out, n, NULL, "signature");
  p32(out + cd, 0x02014b50);
  /* name lengths: zero, past the directory, over NPZ_NAME_MAX */
  p16(out + cd + 28, 0);
  expect_error("empty name", out, n, NULL, NULL);
  p16(out + cd + 28, 6);
  expect_error("name past the directory", out, n, NULL, NULL);
  p16(out + cd + 28, 5);
  p16(out + cd + 30, 2); /* extra field past the directory */
  expect_error("extra past the directory", out, n, NULL, NULL);
  p16(out + cd + 30, 0);
  CHECK(try_all(out, n) == 0, "restored archive refused");
  {
    char lname[NPZ_NAME_MAX + 2];
    memset(lname, 'n', sizeof lname - 1);
    lname[sizeof lname - 1] = '\0';
    zent ln = ok;
    ln.name = lname;
    n = zip_build(out, &ln, 1);
    expect_error("name too long", out, n, NULL, "too long");
    lname[NPZ_NAME_MAX] = '\0';
    n = zip_build(out, &ln, 1);
    CHECK(try_all(out, n) == 0, "longest name refused");
  }
  /* a NUL byte in a name */
  zent nul = ok;
  nul.name = "a\001npy";
  n = zip_build(out, &nul, 1);
  cd = g32(out + n - 6);
  out[cd + 47] = 0;
  expect_error("NUL in a name", out, n, NULL, "NUL");
  free(out);
  free(npy);
  free(npy2);
  free(def);
}

/* ZIP64 fields made wrong, starting from an archive written with every field in ZIP64 form. */
static void test_crafted_zip64(void) {
  char err[256];
  npz_test_hooks(-1, 0, 0);
  float v[3] = {1, 2, 3};
  long sh = 3;
  npz_writer* w = npz_begin();
  npz_add_f32(w, "v", v, 1, &sh);
  int rc = npz_finish(w, tpath("z.npz"), err, sizeof err);
  npz_test_hooks(-1, 0xFFFFFFFFull, 0xFFFF);
  CHECK(rc == 0, "%s", err);
  size_t n;
  unsigned char* b = slurp(tpath("z.npz"), &n);
  if (!b) return;
  CHECK(try_all(b, n) == 0, "ZIP64 archive refused");
  size_t eocd = n - 22, loc = eocd - 20, z64 = loc - 56;
  CHECK(g32(b + loc) == 0x07064b50 && g32(b + z64) == 0x06064b50, "layout");
  unsigned long long cd = g32(b + z64 + 48);
  struct {
    const char* what;
    size_t at;
    int width;
    unsigned long long value;
  } bad[] = {
      {"locator offset past the end", loc + 8, 8, 1ull << 40},
      {"locator offset after the locator", loc + 8, 8, loc},
      {"locator offset inside the directory", loc + 8, 8, cd + 1},
      {"locator disk", loc + 4, 4, 1},
      {"locator total disks", loc + 16, 4, 2},
      {"ZIP64 record signature", z64, 4, 0x06064b51},
      {"ZIP64 record size", z64 + 4, 8, 1ull << 50},
      {"ZIP64 record size small", z64 + 4, 8, 10},
      {"ZIP64 entry count", z64 + 32, 8, 1ull << 40},
      {"ZIP64 entries on this disk", z64 + 24, 8, 2},
      {"ZIP64 directory size", z64 + 40, 8, 1ull << 62},
      {"ZIP64 directory offset", z64 + 48, 8, ~0ull},
      {"ZIP64 directory offset + 1", z64 + 48, 8, cd + 1},
      {"ZIP64 disk", z64 + 16, 4, 3},
      {"central ZIP64 extra size", cd + 46 + 5 + 2, 2, 8},
      {"central ZIP64 extra id", cd + 46 + 5, 2, 7},
      {"central ZIP64 extra size past the field", cd + 46 + 5 + 2, 2, 200},
      {"central ZIP64 usize", cd + 46 + 5 + 4, 8, 1ull << 41},
      {"central ZIP64 csize", cd + 46 + 5 + 12, 8, 1ull << 41},
      {"central ZIP64 offset", cd + 46 + 5 + 20, 8, ~0ull - 5},
      {"central ZIP64 offset 1", cd + 46 + 5 + 20, 8, 1},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    unsigned char* c = malloc(n);
    memcpy(c, b, n);
    for (int i = 0; i < bad[k].width; i++) c[bad[k].at + (size_t)i] = (unsigned char)(bad[k].value >> (8 * i));
    int r = try_all(c, n);
    CHECK(r != 0, "%s: accepted", bad[k].what);
    free(c);
  }
  free(b);
}

/* Inputs found by tests/fuzz_npz.c (regressions): each must be refused without a crash. */
static void test_fuzz_regressions(void) {
  /* an end record alone: 0 entries, valid */
  static const unsigned char empty[22] = {0x50, 0x4b, 0x05, 0x06};
  CHECK(try_all(empty, sizeof empty) == 0, "the empty archive");
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/mbpo_test_npz_XXXXXX");
  if (!mkdtemp(g_dir)) {
    perror("mkdtemp");
    return 1;
  }
  ref_init();
  RUN(test_roundtrip);
  RUN(test_levels);
  RUN(test_deterministic);
  RUN(test_large);
  RUN(test_zip64_hook);
  RUN(test_zip64_count);
  RUN(test_writer_errors);
  RUN(test_atomic);
  RUN(test_open_errors);
  RUN(test_truncated);
  RUN(test_flipped);
  RUN(test_crafted);
  RUN(test_crafted_zip64);
  RUN(test_fuzz_regressions);
  ref_free();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
  return test_done();
}
