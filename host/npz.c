/* npz.c: .npz archives, writing and reading (npz.h).
 *
 * Zip layout written (APPNOTE 6.3; little-endian throughout):
 *   per entry   local header (30 bytes) + name + [ZIP64 extra: usize, csize]  + data
 *   directory   per entry: central header (46 bytes) + name + [ZIP64 extra: the fields that
 *               overflow, in the order usize, csize, offset]
 *   end         [ZIP64 end record (56) + locator (20)] + end record (22)
 * The local header goes out with zero CRC/sizes and is patched once the entry's data is written
 * (in the output buffer while it is still there, else with pwrite), so no data descriptors. */
#include "npz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define ZLIB_CONST
#include <zlib.h>

#include "log.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_END 0x06054b50u
#define SIG_END64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define DOS_DATE 0x0021u /* 1980-01-01 */
#define DOS_TIME 0x0000u
#define OUT_BUF (4u << 20)        /* writer's output buffer */
#define IN_CHUNK (1u << 20)       /* reader's input chunk (file source) */
#define Z_STEP (1u << 30)         /* largest amount handed to zlib at once (its counts are uInt) */
#define CD_MAX (256ull << 20)     /* largest central directory the reader accepts */
#define ENTRY_MAX (1ull << 42)    /* largest entry (compressed or not) the reader accepts */
#define DEFLATE_RATIO 1032ull     /* deflate's maximum compression ratio */

static long long g_fail_after = -1;
static unsigned long long g_z64_limit = 0xFFFFFFFFull, g_z64_count = 0xFFFFull;

void npz_test_hooks(long long fail_after, unsigned long long zip64_limit,
                    unsigned long long zip64_count) {
  g_fail_after = fail_after;
  g_z64_limit = zip64_limit > 0xFFFFFFFFull ? 0xFFFFFFFFull : zip64_limit;
  g_z64_count = zip64_count > 0xFFFFull ? 0xFFFFull : zip64_count;
}

static void seterr(char* err, int errlen, const char* fmt, ...) MBPO_PRINTF(3, 4);
static void seterr(char* err, int errlen, const char* fmt, ...) {
  if (!err || errlen <= 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, (size_t)errlen, fmt, ap);
  va_end(ap);
}

static void put16(unsigned char* p, unsigned v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}
static void put32(unsigned char* p, unsigned long v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char* p, unsigned long long v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static unsigned get16(const unsigned char* p) { return (unsigned)p[0] | ((unsigned)p[1] << 8); }
static unsigned long get32(const unsigned char* p) {
  return (unsigned long)p[0] | ((unsigned long)p[1] << 8) | ((unsigned long)p[2] << 16) |
         ((unsigned long)p[3] << 24);
}
static unsigned long long get64(const unsigned char* p) {
  return (unsigned long long)get32(p) | ((unsigned long long)get32(p + 4) << 32);
}

/* CRC-32 of any length (zlib's length argument is a uInt). */
static unsigned long crc_update(unsigned long crc, const unsigned char* p, size_t n) {
  while (n > 0) {
    size_t k = n < Z_STEP ? n : Z_STEP;
    crc = crc32(crc, p, (uInt)k);
    p += k;
    n -= k;
  }
  return crc;
}

/* ============================================ writer ============================================ */

typedef struct wentry {
  char* name; /* "<name>.npy" */
  const void* data;
  void* owned; /* the copy, for npz_add */
  int type, ndim, level;
  long shape[NPY_MAX_DIMS];
  size_t nbytes;
  /* filled while writing */
  unsigned long long offset, csize, usize;
  unsigned long crc;
} wentry;

struct npz_writer {
  wentry* e;
  int n, cap, level;
  char err[300]; /* first npz_add error ("" = none) */
};

npz_writer* npz_begin(void) {
  npz_writer* w = calloc(1, sizeof *w);
  if (w) w->level = NPZ_DEFAULT_LEVEL;
  return w;
}

int npz_set_level(npz_writer* w, int level) {
  if (!w || level < NPZ_FAST || level > 9) return -1;
  w->level = level;
  return 0;
}

static int add_entry(npz_writer* w, const char* name, const void* data, int type, int ndim,
                     const long* shape, int copy) {
  if (!w) return -1;
  if (w->err[0]) return -1; /* the writer already failed */
  size_t nl = name ? strlen(name) : 0;
  if (nl == 0 || nl + 4 > NPZ_NAME_MAX) {
    mbpo_fmt(w->err, sizeof w->err, "array name %s (1 to %d bytes)", nl ? "too long" : "empty",
             NPZ_NAME_MAX - 4);
    return -1;
  }
  if (npy_type_size(type) == 0 || ndim < 0 || ndim > NPY_MAX_DIMS || (ndim > 0 && !shape)) {
    mbpo_fmt(w->err, sizeof w->err, "array '%.200s': bad type %d or ndim %d", name, type, ndim);
    return -1;
  }
  size_t count = 1;
  int zero = 0;
  for (int i = 0; i < ndim; i++) {
    /* each dimension < 2^40 keeps the .npy header short and the product checkable */
    if (shape[i] < 0 || shape[i] >= (1L << 40)) {
      mbpo_fmt(w->err, sizeof w->err, "array '%.200s': bad dimension %ld", name, shape[i]);
      return -1;
    }
    if (shape[i] == 0) zero = 1;
    else if (!zero) {
      if (count > ((size_t)1 << 40) / (size_t)shape[i]) {
        mbpo_fmt(w->err, sizeof w->err, "array '%.200s': too many elements", name);
        return -1;
      }
      count *= (size_t)shape[i];
    }
  }
  if (zero) count = 0;
  size_t nbytes = count * (size_t)npy_type_size(type);
  if (nbytes > 0 && !data) {
    mbpo_fmt(w->err, sizeof w->err, "array '%.200s': no data", name);
    return -1;
  }
  if (w->n == w->cap) {
    int cap = w->cap ? 2 * w->cap : 16;
    wentry* e = realloc(w->e, (size_t)cap * sizeof *e);
    if (!e) goto oom;
    w->e = e;
    w->cap = cap;
  }
  wentry* e = &w->e[w->n];
  memset(e, 0, sizeof *e);
  e->name = malloc(nl + 5);
  if (!e->name) goto oom;
  memcpy(e->name, name, nl);
  memcpy(e->name + nl, ".npy", 5);
  if (copy && nbytes > 0) {
    e->owned = malloc(nbytes);
    if (!e->owned) {
      free(e->name);
      goto oom;
    }
    memcpy(e->owned, data, nbytes);
    e->data = e->owned;
  } else {
    e->data = data;
  }
  e->type = type;
  e->ndim = ndim;
  e->level = w->level;
  for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
  e->nbytes = nbytes;
  w->n++;
  return 0;
oom:
  mbpo_fmt(w->err, sizeof w->err, "out of memory adding array '%.200s'", name);
  return -1;
}

int npz_add(npz_writer* w, const char* name, const void* data, int type, int ndim, const long* shape) {
  return add_entry(w, name, data, type, ndim, shape, 1);
}
int npz_add_ref(npz_writer* w, const char* name, const void* data, int type, int ndim,
                const long* shape) {
  return add_entry(w, name, data, type, ndim, shape, 0);
}
int npz_add_f32(npz_writer* w, const char* name, const float* data, int ndim, const long* shape) {
  return npz_add(w, name, data, NPY_F32, ndim, shape);
}
int npz_add_i32(npz_writer* w, const char* name, const int* data, int ndim, const long* shape) {
  return npz_add(w, name, data, NPY_I32, ndim, shape);
}
int npz_add_u8(npz_writer* w, const char* name, const unsigned char* data, int ndim,
               const long* shape) {
  return npz_add(w, name, data, NPY_U8, ndim, shape);
}
int npz_add_f64(npz_writer* w, const char* name, const double* data, int ndim, const long* shape) {
  return npz_add(w, name, data, NPY_F64, ndim, shape);
}
int npz_add_i64(npz_writer* w, const char* name, const long long* data, int ndim,
                const long* shape) {
  return npz_add(w, name, data, NPY_I64, ndim, shape);
}
int npz_add_scalar(npz_writer* w, const char* name, double value) {
  return npz_add(w, name, &value, NPY_F64, 0, NULL);
}

void npz_abort(npz_writer* w) {
  if (!w) return;
  for (int i = 0; i < w->n; i++) {
    free(w->e[i].name);
    free(w->e[i].owned);
  }
  free(w->e);
  free(w);
}

/* ---- buffered output to a file descriptor, with patching and the fault hook ---- */

typedef struct ostream {
  int fd;
  unsigned char* buf;
  size_t used, cap;
  unsigned long long pos;     /* file offset of buf[0] */
  unsigned long long written; /* bytes handed to the kernel (for the fault hook) */
  int err;                    /* errno of the first failure, 0 = none */
} ostream;

/* How many of n bytes the fault hook lets through (sets o->err when it cuts). */
static size_t fault_allow(ostream* o, size_t n) {
  if (g_fail_after < 0) return n;
  unsigned long long lim = (unsigned long long)g_fail_after;
  size_t k = o->written >= lim ? 0 : (lim - o->written < n ? (size_t)(lim - o->written) : n);
  if (k < n) o->err = ENOSPC;
  return k;
}

static int os_pwrite(ostream* o, const unsigned char* p, size_t n, unsigned long long off) {
  if (o->err) return -1;
  size_t allow = fault_allow(o, n);
  while (allow > 0) {
    ssize_t r = pwrite(o->fd, p, allow, (off_t)off);
    if (r < 0) {
      if (errno == EINTR) continue;
      o->err = errno;
      return -1;
    }
    if (r == 0) {
      o->err = EIO;
      return -1;
    }
    p += r;
    off += (unsigned long long)r;
    o->written += (unsigned long long)r;
    allow -= (size_t)r;
    n -= (size_t)r;
  }
  if (n > 0 && !o->err) o->err = ENOSPC;
  return o->err ? -1 : 0;
}

static int os_flush(ostream* o) {
  if (o->used == 0) return o->err ? -1 : 0;
  int rc = os_pwrite(o, o->buf, o->used, o->pos);
  o->pos += o->used;
  o->used = 0;
  return rc;
}

static int os_put(ostream* o, const void* data, size_t n) {
  const unsigned char* p = (const unsigned char*)data;
  while (n > 0) {
    if (o->err) return -1;
    if (o->used == o->cap && os_flush(o) != 0) return -1;
    size_t k = o->cap - o->used < n ? o->cap - o->used : n;
    memcpy(o->buf + o->used, p, k);
    o->used += k;
    p += k;
    n -= k;
  }
  return o->err ? -1 : 0;
}

static unsigned long long os_tell(const ostream* o) { return o->pos + o->used; }

/* Overwrite n bytes at file offset off (already written or still buffered). */
static int os_patch(ostream* o, unsigned long long off, const unsigned char* p, size_t n) {
  if (off < o->pos) {
    size_t k = o->pos - off < n ? (size_t)(o->pos - off) : n;
    if (os_pwrite(o, p, k, off) != 0) return -1;
    off += k;
    p += k;
    n -= k;
  }
  if (n > 0) memcpy(o->buf + (off - o->pos), p, n);
  return o->err ? -1 : 0;
}

/* Deflate n bytes into the output (flush = Z_FINISH on the last piece); crc accumulates. */
static int os_deflate(ostream* o, z_stream* z, const unsigned char* p, size_t n, int finish) {
  size_t left = n;
  for (;;) {
    if (z->avail_in == 0 && left > 0) {
      size_t k = left < Z_STEP ? left : Z_STEP;
      z->next_in = p;
      z->avail_in = (uInt)k;
      p += k;
      left -= k;
    }
    if (o->used == o->cap && os_flush(o) != 0) return -1;
    z->next_out = o->buf + o->used;
    z->avail_out = (uInt)(o->cap - o->used);
    int flush = (finish && left == 0) ? Z_FINISH : Z_NO_FLUSH;
    int rc = deflate(z, flush);
    o->used = o->cap - z->avail_out;
    if (rc == Z_STREAM_END) return 0;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      o->err = EIO;
      return -1;
    }
    if (!finish && left == 0 && z->avail_in == 0) return 0;
  }
}

/* Write one entry: local header, data; then patch the header's CRC and sizes. */
static int write_entry(ostream* o, z_stream* z, int* zlevel, wentry* e) {
  unsigned char npyh[512];
  int hlen = npy_header((char*)npyh, e->type, e->ndim, e->shape);
  int method = e->level == 0 ? 0 : 8;
  e->usize = (unsigned long long)hlen + e->nbytes;
  e->offset = os_tell(o);
  if (method == 8) {
    int zl = e->level == NPZ_FAST ? 1 : e->level;
    int strategy = e->level == NPZ_FAST ? Z_RLE : Z_DEFAULT_STRATEGY;
    if (*zlevel == INT_MIN) { /* first deflated entry */
      memset(z, 0, sizeof *z);
      if (deflateInit2(z, zl, Z_DEFLATED, -15, 8, strategy) != Z_OK) {
        o->err = ENOMEM;
        return -1;
      }
    } else if (deflateReset(z) != Z_OK ||
               (e->level != *zlevel && deflateParams(z, zl, strategy) != Z_OK)) {
      o->err = EIO;
      return -1;
    }
    *zlevel = e->level;
  }
  unsigned long long bound = method == 0 ? e->usize : (unsigned long long)deflateBound(z, (uLong)e->usize);
  int z64 = e->usize >= g_z64_limit || bound >= g_z64_limit;
  size_t nl = strlen(e->name);
  unsigned char h[30 + 20];
  put32(h, SIG_LOCAL);
  put16(h + 4, z64 ? 45 : 20);
  put16(h + 6, 0);
  put16(h + 8, (unsigned)method);
  put16(h + 10, DOS_TIME);
  put16(h + 12, DOS_DATE);
  put32(h + 14, 0);                       /* CRC: patched */
  put32(h + 18, z64 ? 0xFFFFFFFFul : 0);  /* csize: patched */
  put32(h + 22, z64 ? 0xFFFFFFFFul : 0);  /* usize: patched */
  put16(h + 26, (unsigned)nl);
  put16(h + 28, z64 ? 20 : 0);
  if (os_put(o, h, 30) != 0 || os_put(o, e->name, nl) != 0) return -1;
  if (z64) {
    unsigned char x[20] = {0};
    put16(x, 1);
    put16(x + 2, 16);
    if (os_put(o, x, 20) != 0) return -1;
  }
  unsigned long long data_start = os_tell(o);
  unsigned long crc = crc32(0L, Z_NULL, 0);
  crc = crc_update(crc, npyh, (size_t)hlen);
  crc = crc_update(crc, (const unsigned char*)e->data, e->nbytes);
  if (method == 0) {
    if (os_put(o, npyh, (size_t)hlen) != 0 || os_put(o, e->data, e->nbytes) != 0) return -1;
  } else {
    if (os_deflate(o, z, npyh, (size_t)hlen, 0) != 0 ||
        os_deflate(o, z, (const unsigned char*)e->data, e->nbytes, 1) != 0)
      return -1;
  }
  e->csize = os_tell(o) - data_start;
  e->crc = crc;
  if (!z64 && e->csize >= g_z64_limit) { /* cannot happen: bound >= csize */
    o->err = EOVERFLOW;
    return -1;
  }
  unsigned char c[4];
  put32(c, crc);
  if (os_patch(o, e->offset + 14, c, 4) != 0) return -1;
  if (z64) {
    unsigned char s[16];
    put64(s, e->usize);
    put64(s + 8, e->csize);
    return os_patch(o, e->offset + 30 + nl + 4, s, 16);
  }
  unsigned char s[8];
  put32(s, (unsigned long)e->csize);
  put32(s + 4, (unsigned long)e->usize);
  return os_patch(o, e->offset + 18, s, 8);
}

static int write_central(ostream* o, const wentry* e) {
  size_t nl = strlen(e->name);
  int zu = e->usize >= g_z64_limit, zc = e->csize >= g_z64_limit, zo = e->offset >= g_z64_limit;
  int xl = (zu || zc || zo) ? 4 + 8 * (zu + zc + zo) : 0;
  unsigned char h[46], x[28];
  int ver = xl ? 45 : 20;
  put32(h, SIG_CENTRAL);
  put16(h + 4, (3u << 8) | (unsigned)ver); /* made by: Unix */
  put16(h + 6, (unsigned)ver);
  put16(h + 8, 0);
  put16(h + 10, e->level == 0 ? 0 : 8);
  put16(h + 12, DOS_TIME);
  put16(h + 14, DOS_DATE);
  put32(h + 16, e->crc);
  put32(h + 20, zc ? 0xFFFFFFFFul : (unsigned long)e->csize);
  put32(h + 24, zu ? 0xFFFFFFFFul : (unsigned long)e->usize);
  put16(h + 28, (unsigned)nl);
  put16(h + 30, (unsigned)xl);
  put16(h + 32, 0);                      /* comment */
  put16(h + 34, 0);                      /* disk */
  put16(h + 36, 0);                      /* internal attributes */
  put32(h + 38, 0100644ul << 16);        /* external: -rw-r--r-- */
  put32(h + 42, zo ? 0xFFFFFFFFul : (unsigned long)e->offset);
  if (os_put(o, h, 46) != 0 || os_put(o, e->name, nl) != 0) return -1;
  if (xl) {
    int p = 4;
    put16(x, 1);
    put16(x + 2, (unsigned)(xl - 4));
    if (zu) {
      put64(x + p, e->usize);
      p += 8;
    }
    if (zc) {
      put64(x + p, e->csize);
      p += 8;
    }
    if (zo) put64(x + p, e->offset);
    if (os_put(o, x, (size_t)xl) != 0) return -1;
  }
  return 0;
}

static int write_end(ostream* o, unsigned long long n, unsigned long long cd_off,
                     unsigned long long cd_size) {
  int zn = n >= g_z64_count, zs = cd_size >= g_z64_limit, zo = cd_off >= g_z64_limit;
  if (zn || zs || zo) {
    unsigned char r[56 + 20];
    unsigned long long at = os_tell(o);
    put32(r, SIG_END64);
    put64(r + 4, 44); /* size of the rest of the record */
    put16(r + 12, (3u << 8) | 45);
    put16(r + 14, 45);
    put32(r + 16, 0); /* this disk */
    put32(r + 20, 0); /* disk of the directory */
    put64(r + 24, n);
    put64(r + 32, n);
    put64(r + 40, cd_size);
    put64(r + 48, cd_off);
    put32(r + 56, SIG_LOC64);
    put32(r + 60, 0);
    put64(r + 64, at);
    put32(r + 72, 1); /* total disks */
    if (os_put(o, r, sizeof r) != 0) return -1;
  }
  unsigned char e[22];
  put32(e, SIG_END);
  put16(e + 4, 0);
  put16(e + 6, 0);
  put16(e + 8, zn ? 0xFFFFu : (unsigned)n);
  put16(e + 10, zn ? 0xFFFFu : (unsigned)n);
  put32(e + 12, zs ? 0xFFFFFFFFul : (unsigned long)cd_size);
  put32(e + 16, zo ? 0xFFFFFFFFul : (unsigned long)cd_off);
  put16(e + 20, 0);
  return os_put(o, e, 22);
}

static int cmp_names(const void* a, const void* b) {
  return strcmp(*(char* const*)a, *(char* const*)b);
}

/* The first duplicate name, or NULL. */
static const char* find_duplicate(const npz_writer* w) {
  if (w->n < 2) return NULL;
  char** v = malloc((size_t)w->n * sizeof *v);
  if (!v) return NULL;
  for (int i = 0; i < w->n; i++) v[i] = w->e[i].name;
  qsort(v, (size_t)w->n, sizeof *v, cmp_names);
  const char* dup = NULL;
  for (int i = 1; i < w->n && !dup; i++)
    if (strcmp(v[i - 1], v[i]) == 0) dup = v[i];
  free(v);
  return dup;
}

static void fsync_dir(const char* path) {
  const char* slash = strrchr(path, '/');
  char* dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

int npz_finish(npz_writer* w, const char* path, char* err, int errlen) {
  if (!w) {
    seterr(err, errlen, "no archive (npz_begin failed: out of memory)");
    return -1;
  }
  int rc = -1;
  char* tmp = NULL;
  ostream o = {.fd = -1};
  z_stream z;
  int zlevel = INT_MIN; /* level of the live deflate stream, INT_MIN = none */
  const char* dup;
  if (w->err[0]) {
    seterr(err, errlen, "%s", w->err);
    goto done;
  }
  if ((dup = find_duplicate(w)) != NULL) {
    seterr(err, errlen, "two arrays named '%.*s'", (int)(strlen(dup) - 4), dup);
    goto done;
  }
  size_t pl = path ? strlen(path) : 0;
  if (pl == 0 || !(tmp = malloc(pl + 5))) {
    seterr(err, errlen, pl ? "out of memory" : "empty archive path");
    goto done;
  }
  memcpy(tmp, path, pl);
  memcpy(tmp + pl, ".tmp", 5);
  o.cap = OUT_BUF;
  if (!(o.buf = malloc(o.cap))) {
    seterr(err, errlen, "out of memory");
    goto done;
  }
  o.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (o.fd < 0) {
    seterr(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
    goto done;
  }
  int ok = 1;
  for (int i = 0; i < w->n && ok; i++) ok = write_entry(&o, &z, &zlevel, &w->e[i]) == 0;
  unsigned long long cd_off = os_tell(&o);
  for (int i = 0; i < w->n && ok; i++) ok = write_central(&o, &w->e[i]) == 0;
  if (ok) ok = write_end(&o, (unsigned long long)w->n, cd_off, os_tell(&o) - cd_off) == 0;
  if (ok) ok = os_flush(&o) == 0;
  if (!ok) {
    seterr(err, errlen, "cannot write %s: %s", tmp, strerror(o.err ? o.err : EIO));
    goto done;
  }
  if (fsync(o.fd) != 0) {
    seterr(err, errlen, "cannot write %s: fsync: %s", tmp, strerror(errno));
    goto done;
  }
  int fd = o.fd;
  o.fd = -1;
  if (close(fd) != 0) {
    seterr(err, errlen, "cannot write %s: close: %s", tmp, strerror(errno));
    goto done;
  }
  if (rename(tmp, path) != 0) {
    seterr(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    goto done;
  }
  fsync_dir(path);
  rc = 0;
done:
  if (o.fd >= 0) close(o.fd);
  if (rc != 0 && tmp) unlink(tmp); /* no-op when it was never created */
  if (zlevel != INT_MIN) deflateEnd(&z);
  free(o.buf);
  free(tmp);
  npz_abort(w);
  return rc;
}

/* ============================================ reader ============================================ */

typedef struct rentry {
  char* name; /* as stored, NUL-terminated */
  char* key;  /* name without ".npy" */
  unsigned long long csize, usize, offset;
  unsigned long long limit; /* where the next entry (or the directory) starts */
  unsigned long crc;
  int method;
} rentry;

struct npz_archive {
  int fd;                   /* file source, or -1 */
  const unsigned char* mem; /* memory source */
  unsigned long long size;
  unsigned long long cd_off;
  rentry* e;
  int n;
  int* by_key; /* entry indices sorted by key */
};

/* Read n bytes at off (in range: checked). Returns 0 or -1. */
static int read_at(const npz_archive* a, unsigned long long off, void* buf, size_t n) {
  if (off > a->size || n > a->size - off) return -1;
  if (a->mem) {
    memcpy(buf, a->mem + off, n);
    return 0;
  }
  unsigned char* p = (unsigned char*)buf;
  while (n > 0) {
    ssize_t r = pread(a->fd, p, n, (off_t)off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    off += (unsigned long long)r;
    n -= (size_t)r;
  }
  return 0;
}

void npz_close(npz_archive* a) {
  if (!a) return;
  if (a->fd >= 0) close(a->fd);
  for (int i = 0; i < a->n; i++) free(a->e[i].name);
  free(a->e);
  free(a->by_key);
  free(a);
}

static int cmp_key(const void* x, const void* y) {
  return strcmp((*(rentry* const*)x)->key, (*(rentry* const*)y)->key);
}
static int cmp_off(const void* x, const void* y) {
  unsigned long long a = (*(rentry* const*)x)->offset, b = (*(rentry* const*)y)->offset;
  return a < b ? -1 : a > b;
}

/* Parse the central directory image cd (cd_size bytes, n entries) into a->e. */
static int parse_directory(npz_archive* a, const unsigned char* cd, unsigned long long cd_size,
                           unsigned long long n, char* err, int errlen) {
  a->e = calloc(n ? n : 1, sizeof *a->e);
  if (!a->e) {
    seterr(err, errlen, "out of memory");
    return -1;
  }
  unsigned long long p = 0;
  for (unsigned long long i = 0; i < n; i++) {
    if (cd_size - p < 46 || get32(cd + p) != SIG_CENTRAL) {
      seterr(err, errlen, "bad central directory entry %llu (%s)", i,
             cd_size - p < 46 ? "truncated" : "bad signature");
      return -1;
    }
    const unsigned char* h = cd + p;
    unsigned flags = get16(h + 8), nl = get16(h + 28), xl = get16(h + 30), cl = get16(h + 32);
    unsigned disk = get16(h + 34);
    if (cd_size - p - 46 < (unsigned long long)nl + xl + cl) {
      seterr(err, errlen, "central directory entry %llu runs past the directory", i);
      return -1;
    }
    if (nl == 0 || nl > NPZ_NAME_MAX || memchr(h + 46, 0, nl)) {
      seterr(err, errlen, "entry %llu: bad name (%s)", i,
             nl == 0 ? "empty" : nl > NPZ_NAME_MAX ? "too long" : "NUL byte");
      return -1;
    }
    if (flags & 0x41u) {
      seterr(err, errlen, "entry %llu is encrypted (unsupported)", i);
      return -1;
    }
    rentry* e = &a->e[a->n];
    e->method = (int)get16(h + 10);
    e->crc = get32(h + 16);
    e->csize = get32(h + 20);
    e->usize = get32(h + 24);
    e->offset = get32(h + 42);
    int nu = e->usize == 0xFFFFFFFFull, nc = e->csize == 0xFFFFFFFFull, no = e->offset == 0xFFFFFFFFull,
        nd = disk == 0xFFFFu;
    const unsigned char* x = h + 46 + nl;
    unsigned xp = 0;
    while (xp < xl) {
      if (xl - xp < 4 || xl - xp - 4 < get16(x + xp + 2)) {
        seterr(err, errlen, "entry %llu: malformed extra field", i);
        return -1;
      }
      unsigned id = get16(x + xp), sz = get16(x + xp + 2);
      const unsigned char* d = x + xp + 4;
      if (id == 1) {
        unsigned need = 8u * (unsigned)(nu + nc + no) + 4u * (unsigned)nd, q = 0;
        if (sz < need) {
          seterr(err, errlen, "entry %llu: ZIP64 extra field too short", i);
          return -1;
        }
        if (nu) {
          e->usize = get64(d + q);
          q += 8;
        }
        if (nc) {
          e->csize = get64(d + q);
          q += 8;
        }
        if (no) {
          e->offset = get64(d + q);
          q += 8;
        }
        if (nd) disk = (unsigned)get32(d + q);
        nu = nc = no = nd = 0;
      }
      xp += 4 + sz;
    }
    if (nu || nc || no || nd) {
      seterr(err, errlen, "entry %llu: ZIP64 values missing", i);
      return -1;
    }
    if (disk != 0) {
      seterr(err, errlen, "multi-disk archives are not supported");
      return -1;
    }
    if (e->csize > ENTRY_MAX || e->usize > ENTRY_MAX || e->offset >= a->cd_off ||
        a->cd_off - e->offset < 30ull + nl + e->csize) {
      seterr(err, errlen, "entry %llu: sizes or offset out of range", i);
      return -1;
    }
    if (!(e->name = malloc(2 * (size_t)nl + 2))) {
      seterr(err, errlen, "out of memory");
      return -1;
    }
    memcpy(e->name, h + 46, nl);
    e->name[nl] = '\0';
    e->key = e->name + nl + 1;
    size_t kl = nl >= 4 && memcmp(e->name + nl - 4, ".npy", 4) == 0 ? nl - 4 : nl;
    memcpy(e->key, e->name, kl);
    e->key[kl] = '\0';
    e->limit = 30ull + nl + e->csize; /* minimal extent, checked below */
    a->n++;
    p += 46ull + nl + xl + cl;
  }
  if (p != cd_size) {
    seterr(err, errlen, "central directory size does not match its %llu entries", n);
    return -1;
  }
  /* entries must not overlap (each one's minimal extent ends before the next begins): an
   * archive's total inflated size is then bounded by its own size */
  rentry** ord = malloc((size_t)(n ? n : 1) * sizeof *ord);
  a->by_key = malloc((size_t)(n ? n : 1) * sizeof *a->by_key);
  if (!ord || !a->by_key) {
    free(ord);
    seterr(err, errlen, "out of memory");
    return -1;
  }
  for (int i = 0; i < a->n; i++) ord[i] = &a->e[i];
  qsort(ord, (size_t)a->n, sizeof *ord, cmp_off);
  int bad = 0;
  for (int i = 0; i < a->n && !bad; i++) {
    rentry* e = ord[i];
    unsigned long long next = i + 1 < a->n ? ord[i + 1]->offset : a->cd_off;
    if (next - e->offset < e->limit) bad = 1;
    e->limit = next;
  }
  if (bad) {
    free(ord);
    seterr(err, errlen, "entries overlap");
    return -1;
  }
  qsort(ord, (size_t)a->n, sizeof *ord, cmp_key);
  for (int i = 0; i < a->n; i++) a->by_key[i] = (int)(ord[i] - a->e);
  free(ord);
  for (int i = 1; i < a->n; i++)
    if (strcmp(a->e[a->by_key[i - 1]].key, a->e[a->by_key[i]].key) == 0) {
      seterr(err, errlen, "two entries named '%.200s'", a->e[a->by_key[i]].key);
      return -1;
    }
  return 0;
}

/* Locate the end records and read the directory. */
static npz_archive* open_common(npz_archive* a, char* err, int errlen) {
  unsigned char* tail = NULL;
  unsigned char* cdbuf = NULL;
  if (a->size < 22) {
    seterr(err, errlen, "not a zip archive (%llu bytes)", a->size);
    goto fail;
  }
  size_t tl = a->size < 22 + 0xFFFFull ? (size_t)a->size : 22 + 0xFFFF;
  unsigned long long tail_off = a->size - tl;
  if (!(tail = malloc(tl))) {
    seterr(err, errlen, "out of memory");
    goto fail;
  }
  if (read_at(a, tail_off, tail, tl) != 0) {
    seterr(err, errlen, "read error: %s", strerror(errno ? errno : EIO));
    goto fail;
  }
  /* the end record: the last signature whose comment ends the file exactly */
  long long at = -1;
  for (long long i = (long long)tl - 22; i >= 0; i--)
    if (get32(tail + i) == SIG_END && (unsigned long long)i + 22 + get16(tail + i + 20) == tl) {
      at = i;
      break;
    }
  if (at < 0) {
    seterr(err, errlen, "not a zip archive or truncated (no end of central directory record)");
    goto fail;
  }
  const unsigned char* r = tail + at;
  unsigned long long eocd = tail_off + (unsigned long long)at;
  unsigned long long n = get16(r + 10), cd_size = get32(r + 12), cd_off = get32(r + 16);
  unsigned disk = get16(r + 4), cd_disk = get16(r + 6), n_disk = get16(r + 8);
  unsigned long long cd_end = eocd; /* where the directory must end */
  unsigned char loc[20];
  if (eocd >= 20 && read_at(a, eocd - 20, loc, 20) == 0 && get32(loc) == SIG_LOC64) {
    unsigned long long z = get64(loc + 8);
    unsigned char z64[56];
    if (get32(loc + 4) != 0 || get32(loc + 16) > 1) {
      seterr(err, errlen, "multi-disk archives are not supported");
      goto fail;
    }
    if (z > eocd - 20 || eocd - 20 - z < 56 || read_at(a, z, z64, 56) != 0 ||
        get32(z64) != SIG_END64 || get64(z64 + 4) < 44 || get64(z64 + 4) > eocd - 20 - z - 12) {
      seterr(err, errlen, "bad ZIP64 end of central directory record");
      goto fail;
    }
    disk = get32(z64 + 16) != 0 || get64(z64 + 24) != get64(z64 + 32);
    cd_disk = get32(z64 + 20) != 0;
    n = get64(z64 + 32);
    cd_size = get64(z64 + 40);
    cd_off = get64(z64 + 48);
    cd_end = z;
  } else if (n_disk != n) {
    disk = 1;
  }
  if (disk != 0 || cd_disk != 0) {
    seterr(err, errlen, "multi-disk archives are not supported");
    goto fail;
  }
  if (cd_off > cd_end || cd_size != cd_end - cd_off) {
    seterr(err, errlen, "central directory (offset %llu, %llu bytes) does not end at the end record "
           "(offset %llu): truncated or not a plain zip", cd_off, cd_size, cd_end);
    goto fail;
  }
  if (cd_size > CD_MAX || n > cd_size / 46 || n > INT_MAX) {
    seterr(err, errlen, "central directory of %llu entries in %llu bytes: %s", n, cd_size,
           n > cd_size / 46 ? "entries do not fit" : "too large");
    goto fail;
  }
  a->cd_off = cd_off;
  const unsigned char* cd;
  if (a->mem) {
    cd = a->mem + cd_off;
  } else {
    if (!(cdbuf = malloc(cd_size ? cd_size : 1)) || read_at(a, cd_off, cdbuf, cd_size) != 0) {
      seterr(err, errlen, cdbuf ? "read error" : "out of memory");
      goto fail;
    }
    cd = cdbuf;
  }
  if (parse_directory(a, cd, cd_size, n, err, errlen) != 0) goto fail;
  free(tail);
  free(cdbuf);
  return a;
fail:
  free(tail);
  free(cdbuf);
  npz_close(a);
  return NULL;
}

npz_archive* npz_open(const char* path, char* err, int errlen) {
  /* O_NONBLOCK: opening a FIFO must not hang; refused below as not a regular file */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    seterr(err, errlen, "%s is not a regular file", path);
    close(fd);
    return NULL;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  npz_archive* a = calloc(1, sizeof *a);
  if (!a) {
    seterr(err, errlen, "out of memory");
    close(fd);
    return NULL;
  }
  a->fd = fd;
  a->size = (unsigned long long)st.st_size;
  errno = 0;
  a = open_common(a, err, errlen);
  if (!a && err && errlen > 0) { /* name the file */
    char reason[400];
    snprintf(reason, sizeof reason, "%s", err);
    seterr(err, errlen, "%s: %s", path, reason);
  }
  return a;
}

npz_archive* npz_open_mem(const void* buf, size_t n, char* err, int errlen) {
  npz_archive* a = calloc(1, sizeof *a);
  if (!a) {
    seterr(err, errlen, "out of memory");
    return NULL;
  }
  a->fd = -1;
  a->mem = buf ? (const unsigned char*)buf : (const unsigned char*)"";
  a->size = buf ? n : 0;
  return open_common(a, err, errlen);
}

int npz_count(const npz_archive* a) { return a ? a->n : 0; }

const char* npz_name(const npz_archive* a, int i) {
  return a && i >= 0 && i < a->n ? a->e[i].key : NULL;
}

int npz_find(const npz_archive* a, const char* name) {
  if (!a || !name) return -1;
  int lo = 0, hi = a->n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2, c = strcmp(a->e[a->by_key[mid]].key, name);
    if (c == 0) return a->by_key[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/* Inflate e's csize bytes at data_off into out (usize bytes). Returns 0 or -1 with err. */
static int inflate_entry(const npz_archive* a, const rentry* e, unsigned long long data_off,
                         unsigned char* out, char* err, int errlen) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, -15) != Z_OK) {
    seterr(err, errlen, "out of memory");
    return -1;
  }
  unsigned char* chunk = NULL;
  if (!a->mem && !(chunk = malloc(e->csize < IN_CHUNK ? (e->csize ? e->csize : 1) : IN_CHUNK))) {
    inflateEnd(&z);
    seterr(err, errlen, "out of memory");
    return -1;
  }
  unsigned long long in_done = 0, out_done = 0;
  unsigned char spare[1];
  int rc = -1, zr = Z_OK;
  for (;;) {
    if (z.avail_in == 0 && in_done < e->csize) {
      unsigned long long left = e->csize - in_done;
      size_t k = a->mem ? (left < Z_STEP ? (size_t)left : Z_STEP) : (left < IN_CHUNK ? (size_t)left : IN_CHUNK);
      if (a->mem) {
        z.next_in = a->mem + data_off + in_done;
      } else {
        if (read_at(a, data_off + in_done, chunk, k) != 0) {
          seterr(err, errlen, "entry '%s': read error", e->key);
          break;
        }
        z.next_in = chunk;
      }
      z.avail_in = (uInt)k;
      in_done += k;
    }
    /* output goes to out; once it is full, to a 1-byte spare that must stay empty */
    int full = out_done == e->usize;
    unsigned long long oleft = e->usize - out_done;
    z.next_out = full ? spare : out + out_done;
    z.avail_out = full ? 1 : (uInt)(oleft < Z_STEP ? oleft : Z_STEP);
    uInt in0 = z.avail_in, out0 = z.avail_out;
    zr = inflate(&z, Z_NO_FLUSH);
    if (full && z.avail_out == 0) {
      seterr(err, errlen, "entry '%s' inflates to more than its declared %llu bytes", e->key, e->usize);
      break;
    }
    if (!full) out_done += out0 - z.avail_out;
    if (zr == Z_STREAM_END) {
      if (out_done != e->usize)
        seterr(err, errlen, "entry '%s' inflates to %llu bytes, declared %llu", e->key, out_done, e->usize);
      else if (z.avail_in != 0 || in_done != e->csize)
        seterr(err, errlen, "entry '%s': deflate data ends before its declared %llu bytes", e->key,
               e->csize);
      else
        rc = 0;
      break;
    }
    if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR) {
      seterr(err, errlen, "entry '%s': corrupt deflate data (%s)", e->key, z.msg ? z.msg : "bad stream");
      break;
    }
    if (zr == Z_MEM_ERROR) {
      seterr(err, errlen, "out of memory");
      break;
    }
    if (zr == Z_BUF_ERROR || (z.avail_in == in0 && z.avail_out == out0)) {
      if (z.avail_in == 0 && in_done < e->csize) continue; /* refill */
      seterr(err, errlen, "entry '%s': %s", e->key,
             z.avail_in == 0 ? "truncated deflate data" : "deflate stream makes no progress");
      break;
    }
  }
  inflateEnd(&z);
  free(chunk);
  return rc;
}

int npz_get(npz_archive* a, const char* name, npy_array* out, char* err, int errlen) {
  memset(out, 0, sizeof *out);
  int i = npz_find(a, name);
  if (i < 0) {
    seterr(err, errlen, "no array '%.200s' in the archive", name ? name : "(null)");
    return -1;
  }
  const rentry* e = &a->e[i];
  if (e->method != 0 && e->method != 8) {
    seterr(err, errlen, "entry '%s' uses compression method %d (only 0 stored and 8 deflate are "
           "supported)", e->key, e->method);
    return -1;
  }
  unsigned char h[30];
  size_t nl = strlen(e->name);
  char lname[NPZ_NAME_MAX];
  if (read_at(a, e->offset, h, 30) != 0 || get32(h) != SIG_LOCAL) {
    seterr(err, errlen, "entry '%s': bad local header", e->key);
    return -1;
  }
  unsigned long long data_off = e->offset + 30 + get16(h + 26) + get16(h + 28);
  /* the local copies of name, method and (without a data descriptor) CRC and sizes must agree */
  int agree = get16(h + 26) == nl && read_at(a, e->offset + 30, lname, nl) == 0 &&
              memcmp(lname, e->name, nl) == 0 && get16(h + 8) == (unsigned)e->method;
  if (agree && !(get16(h + 6) & 8u)) {
    unsigned long lc = get32(h + 18), lu = get32(h + 22);
    agree = get32(h + 14) == e->crc && (lc == 0xFFFFFFFFul || lc == e->csize) &&
            (lu == 0xFFFFFFFFul || lu == e->usize);
  }
  if (!agree) {
    seterr(err, errlen, "entry '%s': local header disagrees with the directory", e->key);
    return -1;
  }
  if (data_off > e->limit || e->limit - data_off < e->csize) {
    seterr(err, errlen, "entry '%s': data runs past the entry's extent", e->key);
    return -1;
  }
  if (e->method == 0 ? e->usize != e->csize : e->usize > (e->csize + 1) * DEFLATE_RATIO) {
    seterr(err, errlen, "entry '%s': declared size %llu impossible for %llu %s bytes", e->key,
           e->usize, e->csize, e->method == 0 ? "stored" : "compressed");
    return -1;
  }
  if (e->usize > SIZE_MAX - 1) {
    seterr(err, errlen, "entry '%s' too large", e->key);
    return -1;
  }
  unsigned char* raw = malloc(e->usize ? (size_t)e->usize : 1);
  if (!raw) {
    seterr(err, errlen, "out of memory (entry '%s' is %llu bytes)", e->key, e->usize);
    return -1;
  }
  int rc;
  if (e->method == 0) {
    rc = read_at(a, data_off, raw, (size_t)e->usize);
    if (rc != 0) seterr(err, errlen, "entry '%s': read error", e->key);
  } else {
    rc = inflate_entry(a, e, data_off, raw, err, errlen);
  }
  if (rc == 0) {
    unsigned long crc = crc_update(crc32(0L, Z_NULL, 0), raw, (size_t)e->usize);
    if (crc != e->crc) {
      seterr(err, errlen, "entry '%s': CRC-32 mismatch (%08lx, directory says %08lx): corrupt data",
             e->key, crc, e->crc);
      rc = -1;
    }
  }
  if (rc == 0) {
    char why[256];
    rc = npy_parse(raw, (size_t)e->usize, out, why, sizeof why);
    if (rc != 0) seterr(err, errlen, "entry '%s': %s", e->key, why);
  }
  free(raw);
  return rc;
}
