/* npy.c: .npy reading and writing (npy.h). */
#include "npy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char* const g_descr[] = {"<f4", "<i4", "|u1", "<f8", "<i8"};
static const int g_size[] = {4, 4, 1, 8, 8};

int npy_type_size(int type) { return (type >= 0 && type <= NPY_I64) ? g_size[type] : 0; }

int npy_header(char* buf, int type, int ndim, const long* shape) {
  /* NPY_MAX_DIMS dimensions of up to 20 digits + ", " fit: no truncation is possible */
  char dict[NPY_HEADER_MAX - 64], sh[NPY_MAX_DIMS * 24 + 8] = "";
  int p = 0;
  if (ndim < 0) ndim = 0;
  if (ndim > NPY_MAX_DIMS) ndim = NPY_MAX_DIMS;
  for (int i = 0; i < ndim; i++)
    p += snprintf(sh + p, sizeof sh - (size_t)p, "%ld%s", shape[i], (ndim == 1 || i < ndim - 1) ? ", " : "");
  if (ndim == 1) sh[p - 1] = '\0'; /* "(n,)" */
  int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                   g_descr[type], sh);
  int total = 10 + n + 1;                /* magic(6) ver(2) len(2) dict '\n' */
  int pad = (64 - total % 64) % 64;
  int hlen = n + pad + 1;
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  buf[8] = (char)(hlen & 0xff);
  buf[9] = (char)(hlen >> 8);
  memcpy(buf + 10, dict, (size_t)n);
  memset(buf + 10 + n, ' ', (size_t)pad);
  buf[10 + n + pad] = '\n';
  return 10 + hlen;
}

int npy_save(const char* path, const void* data, int type, int ndim, const long* shape) {
  char hdr[NPY_HEADER_MAX];
  size_t count = 1;
  for (int i = 0; i < ndim; i++) count *= (size_t)shape[i];
  int h = npy_header(hdr, type, ndim, shape);
  FILE* f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(hdr, 1, (size_t)h, f) == (size_t)h &&
           fwrite(data, (size_t)npy_type_size(type), count, f) == count;
  if (fclose(f) != 0) ok = 0;
  return ok ? 0 : -1;
}

int npy_save_f32(const char* path, const float* data, int ndim, const long* shape) {
  return npy_save(path, data, NPY_F32, ndim, shape);
}

int npy_parse(const void* buf, size_t len, npy_array* out, char* err, int errlen) {
  const unsigned char* b = (const unsigned char*)buf;
  memset(out, 0, sizeof *out);
  if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0) {
    mbpo_fmt(err, errlen, "not a .npy array (bad magic)");
    return -1;
  }
  size_t hlen, off;
  if (b[6] == 1) {
    hlen = (size_t)b[8] | ((size_t)b[9] << 8);
    off = 10;
  } else if ((b[6] == 2 || b[6] == 3) && len >= 12) {
    hlen = (size_t)b[8] | ((size_t)b[9] << 8) | ((size_t)b[10] << 16) | ((size_t)b[11] << 24);
    off = 12;
  } else {
    mbpo_fmt(err, errlen, "unsupported .npy version %d", b[6]);
    return -1;
  }
  if (hlen > 4096 || off + hlen > len) {
    mbpo_fmt(err, errlen, "truncated .npy header");
    return -1;
  }
  char h[4097];
  memcpy(h, b + off, hlen);
  h[hlen] = '\0';
  int type = -1;
  for (int t = 0; t <= NPY_I64; t++) {
    char key[32];
    snprintf(key, sizeof key, "'%s'", g_descr[t]);
    if (strstr(h, key)) type = t;
  }
  if (type < 0) {
    mbpo_fmt(err, errlen, "unsupported .npy dtype");
    return -1;
  }
  if (!strstr(h, "'fortran_order': False")) {
    mbpo_fmt(err, errlen, "unsupported .npy order (Fortran)");
    return -1;
  }
  const char* s = strstr(h, "'shape': (");
  if (!s) {
    mbpo_fmt(err, errlen, "no shape in .npy header");
    return -1;
  }
  s += 10;
  int nd = 0;
  size_t count = 1;
  while (*s && *s != ')') {
    while (*s == ' ' || *s == ',') s++;
    if (*s == ')') break;
    char* e;
    long v = strtol(s, &e, 10);
    if (e == s || v < 0 || nd >= NPY_MAX_DIMS) {
      mbpo_fmt(err, errlen, "bad shape in .npy header");
      return -1;
    }
    out->shape[nd++] = v;
    if (v > 0 && count > ((size_t)1 << 40) / (size_t)v) {
      mbpo_fmt(err, errlen, "shape too large in .npy header");
      return -1;
    }
    count *= (size_t)v;
    s = e;
  }
  if (*s != ')') {
    mbpo_fmt(err, errlen, "bad shape in .npy header");
    return -1;
  }
  size_t bytes = count * (size_t)g_size[type];
  if (len - off - hlen != bytes) {
    mbpo_fmt(err, errlen, ".npy data is %zu bytes, shape needs %zu", len - off - hlen, bytes);
    return -1;
  }
  out->type = type;
  out->ndim = nd;
  out->count = count;
  out->data = malloc(bytes ? bytes : 1);
  if (!out->data) {
    mbpo_fmt(err, errlen, "out of memory");
    return -1;
  }
  memcpy(out->data, b + off + hlen, bytes);
  return 0;
}

int npy_load(const char* path, npy_array* out, char* err, int errlen) {
  FILE* f = fopen(path, "rb");
  if (!f) {
    mbpo_fmt(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void* buf = malloc(n > 0 ? (size_t)n : 1);
  int rc = -1;
  if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) rc = npy_parse(buf, (size_t)n, out, err, errlen);
  else mbpo_fmt(err, errlen, "cannot read %s", path);
  free(buf);
  fclose(f);
  return rc;
}

void npy_free(npy_array* a) {
  free(a->data);
  a->data = NULL;
}
