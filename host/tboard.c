/* tboard.c: TensorBoard event files for scalars (tboard.h): CRC-32C, TFRecord framing and a
 * hand-written protobuf encoding of tensorflow.Event. */
#include "tboard.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TB_HAVE_SSE42 1
#include <nmmintrin.h>
#else
#define TB_HAVE_SSE42 0
#endif

#define TB_FILE_VERSION "brain.Event:2"
#define TB_AUTO_FLUSH (64u << 10)

struct tboard {
  int fd;
  uint8_t* buf; /* pending records, not yet in the file */
  size_t len, cap;
  uint64_t off; /* bytes of complete records in the file */
  char path[4096];
  char err[512];
};

/* ---- CRC-32C ---------------------------------------------------------------------------------- */

static uint32_t g_crc_table[256];
static int g_crc_hw;
static pthread_once_t g_crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    g_crc_table[i] = c;
  }
#if TB_HAVE_SSE42
  __builtin_cpu_init();
  g_crc_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

uint32_t tboard_crc32c_table(uint32_t crc, const void* data, size_t n) {
  pthread_once(&g_crc_once, crc_init);
  const uint8_t* p = (const uint8_t*)data;
  uint32_t c = ~crc;
  for (size_t i = 0; i < n; i++) c = g_crc_table[(c ^ p[i]) & 0xffu] ^ (c >> 8);
  return ~c;
}

#if TB_HAVE_SSE42
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const uint8_t* p, size_t n) {
  uint32_t c = ~crc;
  while (n > 0 && ((uintptr_t)p & 7u) != 0) {
    c = _mm_crc32_u8(c, *p++);
    n--;
  }
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    memcpy(&w, p, 8); /* little-endian: the instruction takes the bytes in memory order */
    c = (uint32_t)_mm_crc32_u64(c, w);
  }
  while (n-- > 0) c = _mm_crc32_u8(c, *p++);
  return ~c;
}
#endif

uint32_t tboard_crc32c(uint32_t crc, const void* data, size_t n) {
  pthread_once(&g_crc_once, crc_init);
#if TB_HAVE_SSE42
  if (g_crc_hw) return crc_sse42(crc, (const uint8_t*)data, n);
#endif
  return tboard_crc32c_table(crc, data, n);
}

int tboard_crc32c_hw(void) {
  pthread_once(&g_crc_once, crc_init);
  return g_crc_hw;
}

uint32_t tboard_mask_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

/* ---- protobuf encoding ------------------------------------------------------------------------ */

int tboard_varint(uint8_t* out, uint64_t v) {
  int n = 0;
  while (v >= 0x80) {
    out[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[n++] = (uint8_t)v;
  return n;
}

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static void put_le(uint8_t* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) out[i] = (uint8_t)(v >> (8 * i));
}

/* A double as a float: rounded; beyond the float range +-inf (the conversion itself would be
 * undefined in ISO C without Annex F). */
static float to_float(double v) {
  if (v > FLT_MAX) return INFINITY;
  if (v < -FLT_MAX) return -INFINITY;
  return (float)v;
}

/* Size of one Summary.Value {tag = 1 (string), simple_value = 2 (float)}. */
static size_t value_size(size_t taglen) { return 1 + varint_len(taglen) + taglen + 5; }

size_t tboard_encode_event(uint8_t* out, size_t cap, double wall_time, long step,
                           const char* file_version, int n, const char* const* tags,
                           const double* values) {
  size_t summary = 0;
  for (int i = 0; i < n; i++) {
    size_t vs = value_size(strlen(tags[i]));
    summary += 1 + varint_len(vs) + vs;
  }
  uint64_t ustep = (uint64_t)(int64_t)step; /* int64 varint: two's complement, 10 bytes if < 0 */
  size_t fvlen = file_version ? strlen(file_version) : 0;
  size_t total = 9;
  if (step != 0) total += 1 + varint_len(ustep);
  if (file_version) total += 1 + varint_len(fvlen) + fvlen;
  if (n > 0) total += 1 + varint_len(summary) + summary;
  if (total > cap || !out) return total;

  uint8_t* p = out;
  uint64_t bits;
  *p++ = 0x09; /* field 1, fixed64: wall_time */
  memcpy(&bits, &wall_time, 8);
  put_le(p, bits, 8);
  p += 8;
  if (step != 0) {
    *p++ = 0x10; /* field 2, varint: step */
    p += tboard_varint(p, ustep);
  }
  if (file_version) {
    *p++ = 0x1a; /* field 3, length-delimited: file_version */
    p += tboard_varint(p, fvlen);
    memcpy(p, file_version, fvlen);
    p += fvlen;
  }
  if (n > 0) {
    *p++ = 0x2a; /* field 5, length-delimited: summary */
    p += tboard_varint(p, summary);
    for (int i = 0; i < n; i++) {
      size_t tl = strlen(tags[i]);
      *p++ = 0x0a; /* Summary field 1, length-delimited: value (repeated) */
      p += tboard_varint(p, value_size(tl));
      *p++ = 0x0a; /* Value field 1, length-delimited: tag */
      p += tboard_varint(p, tl);
      memcpy(p, tags[i], tl);
      p += tl;
      *p++ = 0x15; /* Value field 2, fixed32: simple_value */
      float f = to_float(values[i]);
      uint32_t fb;
      memcpy(&fb, &f, 4);
      put_le(p, fb, 4);
      p += 4;
    }
  }
  return (size_t)(p - out);
}

size_t tboard_encode_record(uint8_t* out, size_t cap, const void* data, size_t n) {
  if (n + 16 > cap || !out) return n + 16;
  put_le(out, (uint64_t)n, 8);
  put_le(out + 8, tboard_mask_crc(tboard_crc32c(0, out, 8)), 4);
  memcpy(out + 12, data, n);
  put_le(out + 12 + n, tboard_mask_crc(tboard_crc32c(0, data, n)), 4);
  return n + 16;
}

/* ---- the writer ------------------------------------------------------------------------------- */

static void fmt(char* err, int errlen, const char* f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char* err, int errlen, const char* f, ...) {
  if (!err || errlen <= 0) return;
  va_list ap;
  va_start(ap, f);
  vsnprintf(err, (size_t)errlen, f, ap);
  va_end(ap);
}

double tboard_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + 1e-6 * (double)(ts.tv_nsec / 1000);
}

static int mkdir_p(const char* path) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  for (char* p = tmp + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
      *p = '/';
    }
  if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
  struct stat st;
  if (stat(tmp, &st) != 0) return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

/* Append one framed record of an encoded Event to the pending buffer. */
static int append_event(tboard* tb, double wall_time, long step, const char* file_version, int n,
                        const char* const* tags, const double* values) {
  size_t ev = tboard_encode_event(NULL, 0, wall_time, step, file_version, n, tags, values);
  size_t need = ev + 16;
  if (tb->len + need > TBOARD_PENDING_MAX && tb->len > 0) {
    fmt(tb->err, sizeof tb->err,
        "%zu bytes of earlier events are still unwritten (%s); event of step %ld dropped",
        tb->len, tb->path, step);
    return -1;
  }
  if (tb->len + need > tb->cap) {
    size_t cap = tb->cap ? tb->cap : 4096;
    while (cap < tb->len + need) cap *= 2;
    uint8_t* b = (uint8_t*)realloc(tb->buf, cap);
    if (!b) {
      fmt(tb->err, sizeof tb->err, "out of memory for an event of %zu bytes", need);
      return -1;
    }
    tb->buf = b;
    tb->cap = cap;
  }
  uint8_t* rec = tb->buf + tb->len;
  tboard_encode_event(rec + 12, ev, wall_time, step, file_version, n, tags, values);
  put_le(rec, (uint64_t)ev, 8);
  put_le(rec + 8, tboard_mask_crc(tboard_crc32c(0, rec, 8)), 4);
  put_le(rec + 12 + ev, tboard_mask_crc(tboard_crc32c(0, rec + 12, ev)), 4);
  tb->len += need;
  return 0;
}

int tboard_flush(tboard* tb) {
  if (!tb) return -1;
  size_t done = 0;
  while (done < tb->len) {
    ssize_t w = pwrite(tb->fd, tb->buf + done, tb->len - done, (off_t)(tb->off + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = w < 0 ? errno : EIO;
      /* Cut a partly written record off: the file keeps only complete records. */
      if (done > 0 && ftruncate(tb->fd, (off_t)tb->off) != 0) {
        fmt(tb->err, sizeof tb->err, "write %s: %s; cutting the partial record off failed: %s",
            tb->path, strerror(e), strerror(errno));
        return -1;
      }
      fmt(tb->err, sizeof tb->err, "write %s: %s (%zu bytes kept for the next flush)", tb->path,
          strerror(e), tb->len);
      return -1;
    }
    done += (size_t)w;
  }
  tb->off += tb->len;
  tb->len = 0;
  return 0;
}

static int bad(tboard* tb, const char* f, ...) __attribute__((format(printf, 2, 3)));
static int bad(tboard* tb, const char* f, ...) {
  va_list ap;
  va_start(ap, f);
  vsnprintf(tb->err, sizeof tb->err, f, ap);
  va_end(ap);
  return -1;
}

int tboard_scalars(tboard* tb, long step, double wall_time, int n, const char* const* tags,
                   const double* values) {
  if (!tb) return -1;
  if (n <= 0 || !tags || !values) return bad(tb, "tboard_scalars: no values (n = %d)", n);
  if (!isfinite(wall_time)) return bad(tb, "tboard_scalars: wall_time is not finite");
  for (int i = 0; i < n; i++)
    if (!tags[i] || !tags[i][0]) return bad(tb, "tboard_scalars: tag %d is empty", i);
  if (append_event(tb, wall_time, step, NULL, n, tags, values) != 0) return -1;
  if (tb->len >= TB_AUTO_FLUSH) return tboard_flush(tb);
  return 0;
}

int tboard_scalar(tboard* tb, const char* tag, long step, double wall_time, float value) {
  double v = value;
  return tboard_scalars(tb, step, wall_time, 1, &tag, &v);
}

tboard* tboard_open(const char* dir, char* err, int errlen) {
  if (!dir || !dir[0]) {
    fmt(err, errlen, "no folder given for the event file");
    return NULL;
  }
  if (mkdir_p(dir) != 0) {
    fmt(err, errlen, "cannot create folder %s: %s", dir, strerror(errno));
    return NULL;
  }
  char host[256];
  if (gethostname(host, sizeof host) != 0) host[0] = '\0';
  host[sizeof host - 1] = '\0';
  for (char* h = host; *h; h++)
    if (*h == '/' || (unsigned char)*h < 0x20 || *h == 0x7f) *h = '_';
  if (!host[0]) snprintf(host, sizeof host, "localhost");

  tboard* tb = (tboard*)calloc(1, sizeof *tb);
  if (!tb) {
    fmt(err, errlen, "out of memory");
    return NULL;
  }
  double now = tboard_now();
  long long secs = (long long)now;
  tb->fd = -1;
  for (int k = 0; k < 1000 && tb->fd < 0; k++) {
    char suffix[16] = "";
    if (k > 0) snprintf(suffix, sizeof suffix, ".%d", k);
    int len = snprintf(tb->path, sizeof tb->path, "%s/events.out.tfevents.%010lld.%s%s", dir, secs,
                       host, suffix);
    if (len >= (int)sizeof tb->path) {
      fmt(err, errlen, "event file path in %s is too long", dir);
      free(tb);
      return NULL;
    }
    tb->fd = open(tb->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (tb->fd < 0 && errno != EEXIST) break;
  }
  if (tb->fd < 0) {
    fmt(err, errlen, "cannot create %s: %s", tb->path, strerror(errno));
    free(tb);
    return NULL;
  }
  if (append_event(tb, now, 0, TB_FILE_VERSION, 0, NULL, NULL) != 0 || tboard_flush(tb) != 0) {
    fmt(err, errlen, "%s", tb->err);
    close(tb->fd);
    unlink(tb->path);
    free(tb->buf);
    free(tb);
    return NULL;
  }
  return tb;
}

tboard* tboard_open_append(const char* path, uint64_t length, char* err, int errlen) {
  if (!path || !path[0]) {
    fmt(err, errlen, "no event file given");
    return NULL;
  }
  tboard* tb = (tboard*)calloc(1, sizeof *tb);
  if (!tb) {
    fmt(err, errlen, "out of memory");
    return NULL;
  }
  if (snprintf(tb->path, sizeof tb->path, "%s", path) >= (int)sizeof tb->path) {
    fmt(err, errlen, "event file path %.64s... is too long", path);
    free(tb);
    return NULL;
  }
  tb->fd = open(path, O_RDWR | O_CLOEXEC);
  struct stat st;
  uint8_t head[12];
  const char* why = NULL;
  if (tb->fd < 0 || fstat(tb->fd, &st) != 0) why = strerror(errno);
  else if (!S_ISREG(st.st_mode)) why = "not a regular file";
  else if ((uint64_t)st.st_size < length)
    why = "shorter than the checkpoint's record of it (events were lost)";
  else if (length < sizeof head) why = "the checkpoint records no event in it";
  else if (pread(tb->fd, head, sizeof head, 0) != (ssize_t)sizeof head ||
           tboard_mask_crc(tboard_crc32c(0, head, 8)) != ((uint32_t)head[8] | (uint32_t)head[9] << 8 |
                                                          (uint32_t)head[10] << 16 | (uint32_t)head[11] << 24))
    why = "not a TFRecord file";
  else if (ftruncate(tb->fd, (off_t)length) != 0) why = strerror(errno);
  if (why) {
    fmt(err, errlen, "cannot continue %s: %s", path, why);
    if (tb->fd >= 0) close(tb->fd);
    free(tb);
    return NULL;
  }
  tb->off = length;
  return tb;
}

int tboard_close(tboard* tb, char* err, int errlen) {
  if (!tb) return 0;
  int rc = tboard_flush(tb);
  if (rc != 0) fmt(err, errlen, "%s", tb->err);
  if (close(tb->fd) != 0 && rc == 0) {
    fmt(err, errlen, "close %s: %s", tb->path, strerror(errno));
    rc = -1;
  }
  free(tb->buf);
  free(tb);
  return rc;
}

const char* tboard_error(const tboard* tb) { return tb ? tb->err : "no event-file writer"; }

const char* tboard_path(const tboard* tb) { return tb ? tb->path : ""; }

uint64_t tboard_bytes_written(const tboard* tb) { return tb ? tb->off : 0; }

uint64_t tboard_bytes_pending(const tboard* tb) { return tb ? (uint64_t)tb->len : 0; }
