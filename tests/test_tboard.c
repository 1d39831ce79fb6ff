/* test_tboard.c: TensorBoard event files (tboard.h).
 *
 * CRC-32C known answers (the check value, RFC 3720 B.4 iSCSI vectors) on both the dispatched and the
 * table path, the fast path against the table on odd lengths and alignments; masked CRCs and whole
 * records byte for byte against records written by TensorFlow's own protobuf code (the event-file
 * tests of tensorboard_logger and of TensorFlow's event_file_loader); varint edge cases; files written
 * by the writer read back by an independent reader here (bitwise CRC-32C, its own protobuf walk);
 * errors: uncreatable files, bad arguments, and write failures (RLIMIT_FSIZE) that must leave the
 * file readable and keep the records for a later flush. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tboard.h"
#include "test.h"

/* ---- an independent reader ------------------------------------------------------------------- */

/* CRC-32C bit by bit, straight from the polynomial: no table, no instruction. */
static uint32_t ref_crc32c(const void* data, size_t n) {
  const uint8_t* p = (const uint8_t*)data;
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return c ^ 0xffffffffu;
}

static uint32_t ref_masked(const void* data, size_t n) {
  uint32_t c = ref_crc32c(data, n);
  return (uint32_t)(((c >> 15) | (c << 17)) + 0xa282ead8u);
}

static uint64_t rd_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* Decode a varint at *p (< end); returns 0 or -1 (truncated, or longer than 10 bytes). */
static int rd_varint(const uint8_t** p, const uint8_t* end, uint64_t* v) {
  *v = 0;
  for (int i = 0; i < 10; i++) {
    if (*p >= end) return -1;
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) return 0;
  }
  return -1;
}

/* One protobuf field: number, wire type, and its value (varint/fixed in u, bytes in s/slen). */
typedef struct rd_field {
  int num, wt;
  uint64_t u;
  const uint8_t* s;
  size_t slen;
} rd_field;

static int rd_next(const uint8_t** p, const uint8_t* end, rd_field* f) {
  uint64_t key;
  if (rd_varint(p, end, &key) != 0) return -1;
  f->num = (int)(key >> 3);
  f->wt = (int)(key & 7);
  switch (f->wt) {
    case 0: return rd_varint(p, end, &f->u);
    case 1:
      if (end - *p < 8) return -1;
      f->u = rd_le(*p, 8);
      *p += 8;
      return 0;
    case 5:
      if (end - *p < 4) return -1;
      f->u = rd_le(*p, 4);
      *p += 4;
      return 0;
    case 2:
      if (rd_varint(p, end, &f->u) != 0 || f->u > (uint64_t)(end - *p)) return -1;
      f->s = *p;
      f->slen = (size_t)f->u;
      *p += f->slen;
      return 0;
    default: return -1;
  }
}

#define RD_MAXV 8
typedef struct rd_event {
  double wall_time;
  int64_t step;
  const uint8_t* fv; /* file_version (not terminated) or NULL */
  size_t fvlen;
  int nval;
  const uint8_t* tag[RD_MAXV];
  size_t taglen[RD_MAXV];
  float value[RD_MAXV];
} rd_event;

static int rd_value(const uint8_t* p, const uint8_t* end, rd_event* e, char* why) {
  if (e->nval >= RD_MAXV) return snprintf(why, 200, "too many values"), -1;
  int have_tag = 0, have_val = 0;
  rd_field f;
  while (p < end) {
    if (rd_next(&p, end, &f) != 0) return snprintf(why, 200, "bad Value field"), -1;
    if (f.num == 1 && f.wt == 2) {
      e->tag[e->nval] = f.s;
      e->taglen[e->nval] = f.slen;
      have_tag = 1;
    } else if (f.num == 2 && f.wt == 5) {
      uint32_t b = (uint32_t)f.u;
      memcpy(&e->value[e->nval], &b, 4);
      have_val = 1;
    } else
      return snprintf(why, 200, "unexpected Value field %d/%d", f.num, f.wt), -1;
  }
  if (!have_tag || !have_val) return snprintf(why, 200, "Value without tag or simple_value"), -1;
  e->nval++;
  return 0;
}

static int rd_event_parse(const uint8_t* p, const uint8_t* end, rd_event* e, char* why) {
  memset(e, 0, sizeof *e);
  int have_wall = 0;
  rd_field f;
  while (p < end) {
    if (rd_next(&p, end, &f) != 0) return snprintf(why, 200, "bad Event field"), -1;
    if (f.num == 1 && f.wt == 1) {
      memcpy(&e->wall_time, &f.u, 8);
      have_wall = 1;
    } else if (f.num == 2 && f.wt == 0) {
      e->step = (int64_t)f.u;
    } else if (f.num == 3 && f.wt == 2) {
      e->fv = f.s;
      e->fvlen = f.slen;
    } else if (f.num == 5 && f.wt == 2) {
      const uint8_t* q = f.s;
      const uint8_t* qe = f.s + f.slen;
      rd_field g;
      while (q < qe) {
        if (rd_next(&q, qe, &g) != 0 || g.num != 1 || g.wt != 2)
          return snprintf(why, 200, "bad Summary field"), -1;
        if (rd_value(g.s, g.s + g.slen, e, why) != 0) return -1;
      }
    } else
      return snprintf(why, 200, "unexpected Event field %d/%d", f.num, f.wt), -1;
  }
  if (!have_wall) return snprintf(why, 200, "Event without wall_time"), -1;
  return 0;
}

/* Parse a whole event file image: framing, both CRCs of every record, the Events. Returns the number
 * of events (up to max stored), or -1 with the reason in why. */
static long rd_records(const uint8_t* b, size_t len, rd_event* ev, long max, char* why) {
  size_t off = 0;
  long n = 0;
  while (off < len) {
    if (len - off < 12) return snprintf(why, 200, "truncated header at %zu", off), -1;
    uint64_t dlen = rd_le(b + off, 8);
    if ((uint32_t)rd_le(b + off + 8, 4) != ref_masked(b + off, 8))
      return snprintf(why, 200, "bad length CRC at %zu", off), -1;
    if (dlen > len - off - 12 || len - off - 12 - dlen < 4)
      return snprintf(why, 200, "truncated record at %zu", off), -1;
    const uint8_t* d = b + off + 12;
    if ((uint32_t)rd_le(d + dlen, 4) != ref_masked(d, (size_t)dlen))
      return snprintf(why, 200, "bad data CRC at %zu", off), -1;
    rd_event tmp;
    if (rd_event_parse(d, d + dlen, n < max ? &ev[n] : &tmp, why) != 0) return -1;
    n++;
    off += 12 + (size_t)dlen + 4;
  }
  return n;
}

static uint8_t* slurp(const char* path, size_t* len) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t* b = (uint8_t*)malloc((size_t)n + 1);
  *len = fread(b, 1, (size_t)n, f);
  fclose(f);
  return b;
}

static uint8_t* g_images[64];
static int g_nimages;

/* Read a file back; returns the event count or -1 (the reason printed). */
static long read_file(const char* path, rd_event* ev, long max) {
  size_t len = 0;
  uint8_t* b = slurp(path, &len);
  if (!b) {
    fprintf(stderr, "  cannot read %s\n", path);
    return -1;
  }
  char why[200] = "";
  long n = rd_records(b, len, ev, max, why);
  if (n < 0) fprintf(stderr, "  %s: %s\n", path, why);
  /* the tags point into the image: it stays until main ends */
  if (g_nimages < (int)(sizeof g_images / sizeof g_images[0])) g_images[g_nimages++] = b;
  else free(b);
  return n;
}

static int tag_is(const rd_event* e, int i, const char* s) {
  return e->taglen[i] == strlen(s) && memcmp(e->tag[i], s, e->taglen[i]) == 0;
}

static char g_tmp[256];

static void rm_rf(const char* path) {
  DIR* d = opendir(path);
  if (d) {
    struct dirent* de;
    while ((de = readdir(d))) {
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
      char p[1024];
      snprintf(p, sizeof p, "%s/%s", path, de->d_name);
      rm_rf(p);
    }
    closedir(d);
    rmdir(path);
  } else
    unlink(path);
}

/* ---- CRC-32C ---------------------------------------------------------------------------------- */

typedef uint32_t (*crc_fn)(uint32_t, const void*, size_t);

static void check_vectors(crc_fn fn, const char* name) {
  uint8_t b[48];
  CHECK(fn(0, "123456789", 9) == 0xE3069283u, "%s check value: %08x", name, fn(0, "123456789", 9));
  CHECK(fn(0, "", 0) == 0u, "%s of nothing", name);
  memset(b, 0, 32);
  CHECK(fn(0, b, 32) == 0x8A9136AAu, "%s 32 zeros: %08x", name, fn(0, b, 32));
  memset(b, 0xff, 32);
  CHECK(fn(0, b, 32) == 0x62A8AB43u, "%s 32 x 0xff: %08x", name, fn(0, b, 32));
  for (int i = 0; i < 32; i++) b[i] = (uint8_t)i;
  CHECK(fn(0, b, 32) == 0x46DD794Eu, "%s 0..31: %08x", name, fn(0, b, 32));
  for (int i = 0; i < 32; i++) b[i] = (uint8_t)(31 - i);
  CHECK(fn(0, b, 32) == 0x113FDB5Cu, "%s 31..0: %08x", name, fn(0, b, 32));
  /* RFC 3720 B.4: an iSCSI Read (10) command PDU */
  static const uint8_t pdu[48] = {0x01, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    0, 0, 0,
                                  0x14, 0,    0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0x14, 0, 0, 0, 0x18,
                                  0x28, 0,    0, 0, 0, 0, 0,    0, 0x02, 0, 0, 0, 0, 0, 0, 0};
  CHECK(fn(0, pdu, 48) == 0xD9963A56u, "%s iSCSI read PDU: %08x", name, fn(0, pdu, 48));
}

static void test_crc32c_known_answers(void) {
  check_vectors(tboard_crc32c, "tboard_crc32c");
  check_vectors(tboard_crc32c_table, "tboard_crc32c_table");
  CHECK(ref_crc32c("123456789", 9) == 0xE3069283u, "the test's bitwise reference");
  if (getenv("TEST_VERBOSE"))
    fprintf(stderr, "     tboard_crc32c uses %s\n", tboard_crc32c_hw() ? "SSE4.2" : "the table");
}

/* The fast path against the table and the bitwise reference: every length 0..300 at every
 * alignment 0..7, and continuing a CRC across a split. */
static void test_crc32c_paths_agree(void) {
  static uint8_t buf[320];
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < sizeof buf; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    buf[i] = (uint8_t)(s >> 56);
  }
  int bad = 0;
  for (size_t a = 0; a < 8; a++)
    for (size_t n = 0; n <= 300; n++) {
      uint32_t r = ref_crc32c(buf + a, n);
      uint32_t f = tboard_crc32c(0, buf + a, n), t = tboard_crc32c_table(0, buf + a, n);
      size_t k = n / 3;
      uint32_t split = tboard_crc32c(tboard_crc32c(0, buf + a, k), buf + a + k, n - k);
      uint32_t split_t = tboard_crc32c_table(tboard_crc32c_table(0, buf + a, k), buf + a + k, n - k);
      if ((f != r || t != r || split != r || split_t != r) && bad++ < 5)
        CHECK(0, "align %zu len %zu: ref %08x fast %08x table %08x split %08x/%08x", a, n, r, f, t,
              split, split_t);
    }
  CHECK(bad == 0, "%d mismatches", bad);
}

/* ---- masked CRCs, varints, whole records -------------------------------------------------- */

static void test_masked_crc(void) {
  CHECK(tboard_mask_crc(0) == 0xa282ead8u, "mask(0) = %08x", tboard_mask_crc(0));
  CHECK(tboard_mask_crc(0x80000000u) == 0xa283ead8u, "mask(2^31) = %08x", tboard_mask_crc(0x80000000u));
  CHECK(tboard_mask_crc(1) == 0xa284ead8u, "mask(1) = %08x", tboard_mask_crc(1));
  /* Every event file starts with a 24-byte record: its length bytes carry a3 7f 4b 22. */
  uint8_t len24[8] = {24, 0, 0, 0, 0, 0, 0, 0};
  CHECK(tboard_mask_crc(tboard_crc32c(0, len24, 8)) == 0x224b7fa3u, "masked CRC of length 24: %08x",
        tboard_mask_crc(tboard_crc32c(0, len24, 8)));
  uint8_t len25[8] = {25, 0, 0, 0, 0, 0, 0, 0};
  CHECK(tboard_mask_crc(tboard_crc32c(0, len25, 8)) == 0x2808f18bu, "masked CRC of length 25: %08x",
        tboard_mask_crc(tboard_crc32c(0, len25, 8)));
}

static void test_varint(void) {
  static const struct {
    uint64_t v;
    int n;
    uint8_t b[10];
  } cases[] = {
      {0, 1, {0x00}},
      {1, 1, {0x01}},
      {127, 1, {0x7f}},
      {128, 2, {0x80, 0x01}},
      {150, 2, {0x96, 0x01}},
      {300, 2, {0xac, 0x02}},
      {16383, 2, {0xff, 0x7f}},
      {16384, 3, {0x80, 0x80, 0x01}},
      {0xffffffffull, 5, {0xff, 0xff, 0xff, 0xff, 0x0f}},
      {0x100000000ull, 5, {0x80, 0x80, 0x80, 0x80, 0x10}},
      {0x7fffffffffffffffull, 9, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
      {0x8000000000000000ull, 10, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
      {0xffffffffffffffffull, 10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t out[12];
    memset(out, 0xcc, sizeof out);
    int n = tboard_varint(out, cases[i].v);
    CHECK(n == cases[i].n && memcmp(out, cases[i].b, (size_t)n) == 0 && out[n] == 0xcc,
          "varint %llu: %d bytes (want %d), first %02x %02x", (unsigned long long)cases[i].v, n,
          cases[i].n, out[0], out[1]);
    const uint8_t* p = out;
    uint64_t back = 0;
    CHECK(rd_varint(&p, out + n, &back) == 0 && back == cases[i].v && p == out + n,
          "varint %llu does not decode back", (unsigned long long)cases[i].v);
  }
}

/* Records written by TensorFlow's protobuf code: encode_event + encode_record must give the same
 * bytes. From tensorboard_logger's test_serialization (wall_time 256.5: the file_version record,
 * v/1 = 1.5 at step 1, v/22 = 16 at step 2) and TensorFlow's event_file_loader_test. */
static void test_known_records(void) {
  static const uint8_t fv[] = {
      0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa3, 0x7f, 0x4b, 0x22, 0x09, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x08, 0x70, 0x40, 0x1a, 0x0d, 0x62, 0x72, 0x61, 0x69, 0x6e,
      0x2e, 0x45, 0x76, 0x65, 0x6e, 0x74, 0x3a, 0x32, 0xbc, 0x98, 0x21, 0x2b};
  static const uint8_t v1[] = {
      0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8b, 0xf1, 0x08, 0x28, 0x09, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x08, 0x70, 0x40, 0x10, 0x01, 0x2a, 0x0c, 0x0a, 0x0a, 0x0a,
      0x03, 0x76, 0x2f, 0x31, 0x15, 0x00, 0x00, 0xc0, 0x3f, 0x2c, 0xec, 0xc0, 0x87};
  static const uint8_t v22[] = {
      0x1a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x9b, 0xd8, 0x2d, 0x09, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x08, 0x70, 0x40, 0x10, 0x02, 0x2a, 0x0d, 0x0a, 0x0b, 0x0a,
      0x04, 0x76, 0x2f, 0x32, 0x32, 0x15, 0x00, 0x00, 0x80, 0x41, 0x8f, 0xa3, 0xb6, 0x88};
  static const uint8_t tf1[] = {
      0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa3, 0x7f, 0x4b, 0x22, 0x09, 0x00,
      0x00, 0xc0, 0x25, 0xdd, 0x75, 0xd5, 0x41, 0x1a, 0x0d, 0x62, 0x72, 0x61, 0x69, 0x6e,
      0x2e, 0x45, 0x76, 0x65, 0x6e, 0x74, 0x3a, 0x31, 0xec, 0xf3, 0x32, 0x8d};
  static const uint8_t tf2[] = {
      0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa3, 0x7f, 0x4b, 0x22, 0x09, 0x00,
      0x00, 0x00, 0x27, 0xe6, 0xb3, 0xd5, 0x41, 0x1a, 0x0d, 0x62, 0x72, 0x61, 0x69, 0x6e,
      0x2e, 0x45, 0x76, 0x65, 0x6e, 0x74, 0x3a, 0x32, 0x6a, 0x4d, 0x0b, 0x15};
  static const struct {
    const uint8_t* want;
    size_t len;
    double wall;
    long step;
    const char* fv;
    const char* tag;
    double value;
  } cases[] = {
      {fv, sizeof fv, 256.5, 0, "brain.Event:2", NULL, 0},
      {v1, sizeof v1, 256.5, 1, NULL, "v/1", 1.5},
      {v22, sizeof v22, 256.5, 2, NULL, "v/22", 16.0},
      {tf1, sizeof tf1, 1440183447.0, 0, "brain.Event:1", NULL, 0},
      {tf2, sizeof tf2, 1456445596.0, 0, "brain.Event:2", NULL, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t ev[64], rec[96];
    const char* tags[1] = {cases[i].tag};
    int n = cases[i].tag ? 1 : 0;
    size_t el = tboard_encode_event(ev, sizeof ev, cases[i].wall, cases[i].step, cases[i].fv, n, tags,
                                    &cases[i].value);
    size_t rl = tboard_encode_record(rec, sizeof rec, ev, el);
    CHECK(rl == cases[i].len && memcmp(rec, cases[i].want, rl) == 0, "known record %zu differs (%zu bytes, want %zu)",
          i, rl, cases[i].len);
    /* the masked CRC of the data, against the record's trailer */
    CHECK(tboard_mask_crc(tboard_crc32c(0, cases[i].want + 12, cases[i].len - 16)) ==
              (uint32_t)rd_le(cases[i].want + cases[i].len - 4, 4),
          "data CRC of known record %zu", i);
  }
}

static void test_encode_edges(void) {
  uint8_t buf[512], ev[512];
  /* too small a buffer: the size comes back, nothing is written */
  const char* tags[2] = {"a", "bb"};
  double vals[2] = {1, 2};
  size_t need = tboard_encode_event(NULL, 0, 1.0, 5, NULL, 2, tags, vals);
  memset(buf, 0xcc, sizeof buf);
  CHECK(tboard_encode_event(buf, need - 1, 1.0, 5, NULL, 2, tags, vals) == need && buf[0] == 0xcc,
        "a short buffer was written");
  CHECK(tboard_encode_event(buf, need, 1.0, 5, NULL, 2, tags, vals) == need && buf[0] == 0x09,
        "an exact buffer was not written");
  CHECK(tboard_encode_record(buf, 10, "x", 1) == 17 && buf[0] == 0x09, "short record buffer written");
  /* a negative step is a 10-byte varint; a 200-byte tag has a 2-byte length; two values */
  char longtag[201];
  memset(longtag, 'x', 200);
  longtag[200] = '\0';
  const char* t2[2] = {longtag, "neg"};
  double v2[2] = {-2.5, 1e300};
  size_t el = tboard_encode_event(ev, sizeof ev, 3.0, -1, NULL, 2, t2, v2);
  rd_event e;
  char why[200] = "";
  CHECK(rd_event_parse(ev, ev + el, &e, why) == 0, "parse: %s", why);
  CHECK(e.step == -1 && e.wall_time == 3.0 && e.nval == 2, "step %lld wall %g nval %d", (long long)e.step,
        e.wall_time, e.nval);
  CHECK(ev[9] == 0x10 && ev[10] == 0xff && ev[19] == 0x01 && ev[20] == 0x2a, "step -1 is not 10 bytes");
  CHECK(e.nval == 2 && tag_is(&e, 0, longtag) && e.value[0] == -2.5f && tag_is(&e, 1, "neg") &&
            isinf(e.value[1]) && e.value[1] > 0,
        "values: %g %g", (double)e.value[0], (double)e.value[1]);
  /* summary length 223 = (1 + 2 + 208) + (1 + 1 + 10), first value 208 = 1 + 2 + 200 + 5 */
  CHECK(ev[21] == 0xdf && ev[22] == 0x01 && ev[23] == 0x0a && ev[24] == 0xd0 && ev[25] == 0x01,
        "length prefixes %02x %02x / %02x %02x", ev[21], ev[22], ev[24], ev[25]);
  /* step 0 is left out, as protobuf does; large positive steps */
  double one = 1;
  const char* t1[1] = {"t"};
  el = tboard_encode_event(ev, sizeof ev, 0.0, 0, NULL, 1, t1, &one);
  CHECK(el == 9 + 2 + (1 + 1 + 8) && ev[9] == 0x2a, "step 0: %zu bytes, byte 9 = %02x", el, ev[9]);
  el = tboard_encode_event(ev, sizeof ev, 0.0, 0x7fffffffffffffffL, NULL, 1, t1, &one);
  CHECK(rd_event_parse(ev, ev + el, &e, why) == 0 && e.step == 0x7fffffffffffffffLL, "max step");
}

/* ---- the writer ----------------------------------------------------------------------------- */

static const char* base_name(const char* p) {
  const char* s = strrchr(p, '/');
  return s ? s + 1 : p;
}

static void test_write_and_read_back(void) {
  char dir[300];
  snprintf(dir, sizeof dir, "%s/runs/a", g_tmp); /* not there yet: created */
  char err[256] = "";
  tboard* tb = tboard_open(dir, err, sizeof err);
  CHECK(tb != NULL, "open: %s", err);
  if (!tb) return;
  /* the name: events.out.tfevents.<10 digits>.<hostname> */
  char host[256] = "";
  gethostname(host, sizeof host);
  host[255] = '\0';
  const char* b = base_name(tboard_path(tb));
  int digits = 0;
  while (b[20 + digits] >= '0' && b[20 + digits] <= '9') digits++;
  CHECK(strncmp(b, "events.out.tfevents.", 20) == 0 && digits == 10 && b[30] == '.' &&
            strcmp(b + 31, host) == 0,
        "file name %s (host %s)", b, host);
  long long secs = atoll(b + 20);
  double t0 = tboard_now();
  CHECK(fabs(t0 - (double)secs) < 5, "time in the name %lld, now %.0f", secs, t0);
  CHECK(tboard_bytes_written(tb) == 40, "the first record is written at once (%llu bytes)",
        (unsigned long long)tboard_bytes_written(tb));

  enum { N = 3000 };
  const char* tags[3] = {"loss/model", "eval/return", "alpha"};
  int ok = 1;
  ok &= tboard_scalar(tb, "neg", -7, 1000.0, -0.5f) == 0;
  for (int s = 0; s < N; s++) {
    double v[3] = {1.0 / (s + 1), s * 0.5 - 3, s % 2 ? NAN : INFINITY};
    ok &= tboard_scalars(tb, s, 1000.0 + s, 3, tags, v) == 0;
  }
  CHECK(ok, "a write failed: %s", tboard_error(tb));
  CHECK(tboard_bytes_written(tb) > 40, "no automatic flush past 64 KiB");
  CHECK(tboard_flush(tb) == 0, "flush: %s", tboard_error(tb));
  CHECK(tboard_flush(tb) == 0, "an empty flush: %s", tboard_error(tb));

  rd_event* ev = (rd_event*)calloc(N + 8, sizeof *ev);
  struct stat st;
  CHECK(stat(tboard_path(tb), &st) == 0 && (uint64_t)st.st_size == tboard_bytes_written(tb),
        "file size %lld, bytes written %llu", (long long)st.st_size,
        (unsigned long long)tboard_bytes_written(tb));
  char path[4096];
  snprintf(path, sizeof path, "%s", tboard_path(tb));
  CHECK(tboard_close(tb, err, sizeof err) == 0, "close: %s", err);
  long n = read_file(path, ev, N + 8);
  CHECK(n == N + 2, "%ld events, want %d", n, N + 2);
  if (n != N + 2) {
    free(ev);
    return;
  }
  CHECK(ev[0].fv && ev[0].fvlen == 13 && memcmp(ev[0].fv, "brain.Event:2", 13) == 0 && ev[0].nval == 0 &&
            ev[0].step == 0 && fabs(ev[0].wall_time - t0) < 5,
        "first record: file_version, wall_time %.3f", ev[0].wall_time);
  CHECK(ev[1].step == -7 && ev[1].wall_time == 1000.0 && ev[1].nval == 1 && tag_is(&ev[1], 0, "neg") &&
            ev[1].value[0] == -0.5f && !ev[1].fv,
        "the single scalar");
  int bad = 0;
  for (int s = 0; s < N; s++) {
    const rd_event* e = &ev[s + 2];
    int good = e->step == s && e->wall_time == 1000.0 + s && e->nval == 3 && !e->fv;
    for (int i = 0; good && i < 3; i++) good = tag_is(e, i, tags[i]);
    good = good && e->value[0] == (float)(1.0 / (s + 1)) && e->value[1] == (float)(s * 0.5 - 3) &&
           (s % 2 ? isnan(e->value[2]) : isinf(e->value[2]) && e->value[2] > 0);
    if (!good && bad++ < 3) CHECK(0, "event of step %d differs", s);
  }
  CHECK(bad == 0, "%d events differ", bad);
  free(ev);
}

static void test_two_writers_one_folder(void) {
  char dir[300], err[256] = "";
  snprintf(dir, sizeof dir, "%s/two", g_tmp);
  tboard* a = tboard_open(dir, err, sizeof err);
  tboard* b = tboard_open(dir, err, sizeof err);
  CHECK(a && b, "open: %s", err);
  if (a && b) {
    CHECK(strcmp(tboard_path(a), tboard_path(b)) != 0, "both writers got %s", tboard_path(a));
    CHECK(tboard_scalar(a, "x", 1, 1.0, 1.0f) == 0 && tboard_scalar(b, "x", 1, 1.0, 2.0f) == 0, "write");
  }
  char pa[4096] = "", pb[4096] = "";
  if (a) snprintf(pa, sizeof pa, "%s", tboard_path(a));
  if (b) snprintf(pb, sizeof pb, "%s", tboard_path(b));
  CHECK(tboard_close(a, err, sizeof err) == 0 && tboard_close(b, err, sizeof err) == 0, "close: %s", err);
  rd_event ev[4];
  if (a && b) {
    CHECK(read_file(pa, ev, 4) == 2 && ev[1].value[0] == 1.0f, "first writer's file");
    CHECK(read_file(pb, ev, 4) == 2 && ev[1].value[0] == 2.0f, "second writer's file");
  }
}

static void test_errors(void) {
  char err[256] = "";
  CHECK(tboard_open(NULL, err, sizeof err) == NULL && err[0], "NULL folder");
  err[0] = '\0';
  CHECK(tboard_open("", err, sizeof err) == NULL && err[0], "empty folder");
  /* a folder under a regular file cannot be made */
  char file[300], dir[400];
  snprintf(file, sizeof file, "%s/plain", g_tmp);
  FILE* f = fopen(file, "w");
  if (f) fclose(f);
  snprintf(dir, sizeof dir, "%s/sub", file);
  err[0] = '\0';
  CHECK(tboard_open(dir, err, sizeof err) == NULL && strstr(err, "sub"), "open under a file: '%s'", err);
  CHECK(tboard_open(file, err, sizeof err) == NULL && err[0], "open on a file: '%s'", err);
  CHECK(tboard_open(file, NULL, 0) == NULL, "no err buffer");
  /* NULL writer */
  CHECK(tboard_scalar(NULL, "x", 0, 0, 0) == -1 && tboard_flush(NULL) == -1 && tboard_close(NULL, NULL, 0) == 0,
        "NULL writer");
  CHECK(tboard_error(NULL)[0] != '\0' && tboard_path(NULL)[0] == '\0', "NULL writer strings");
  /* bad arguments: -1, a message, and nothing appended */
  snprintf(dir, sizeof dir, "%s/errs", g_tmp);
  tboard* tb = tboard_open(dir, err, sizeof err);
  CHECK(tb != NULL, "open: %s", err);
  if (!tb) return;
  const char* tags[2] = {"ok", ""};
  const char* nul[1] = {NULL};
  double v[2] = {1, 2};
  CHECK(tboard_scalar(tb, NULL, 0, 1, 1) == -1 && strstr(tboard_error(tb), "empty"), "NULL tag: %s",
        tboard_error(tb));
  CHECK(tboard_scalars(tb, 0, 1, 2, tags, v) == -1 && strstr(tboard_error(tb), "tag 1"), "empty tag: %s",
        tboard_error(tb));
  CHECK(tboard_scalars(tb, 0, 1, 1, nul, v) == -1, "NULL tag in a batch");
  CHECK(tboard_scalars(tb, 0, 1, 0, tags, v) == -1 && tboard_scalars(tb, 0, 1, 1, NULL, v) == -1 &&
            tboard_scalars(tb, 0, 1, 1, tags, NULL) == -1,
        "no values");
  CHECK(tboard_scalar(tb, "x", 0, NAN, 1) == -1 && tboard_scalar(tb, "x", 0, INFINITY, 1) == -1,
        "non-finite wall_time");
  CHECK(tboard_flush(tb) == 0 && tboard_bytes_written(tb) == 40, "something was appended: %llu bytes",
        (unsigned long long)tboard_bytes_written(tb));
  CHECK(tboard_close(tb, err, sizeof err) == 0, "close: %s", err);
}

/* A write that fails (file size limit: EFBIG, part of the records written) leaves the file cut back
 * to complete records, keeps the records, and a later flush writes them. */
static void test_write_failure(void) {
  char dir[300], err[256] = "";
  snprintf(dir, sizeof dir, "%s/full", g_tmp);
  tboard* tb = tboard_open(dir, err, sizeof err);
  CHECK(tb != NULL, "open: %s", err);
  if (!tb) return;
  char path[4096];
  snprintf(path, sizeof path, "%s", tboard_path(tb));
  CHECK(tboard_scalar(tb, "x", 1, 1.0, 1.0f) == 0 && tboard_flush(tb) == 0, "first event");
  uint64_t good = tboard_bytes_written(tb);

  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
  lim = old;
  lim.rlim_cur = (rlim_t)good + 50; /* one more record fits, the second only in part */
  int set = setrlimit(RLIMIT_FSIZE, &lim) == 0;
  int rc = 0, rc2 = 0, dropped = 0;
  char msg[512] = "", msg2[512] = "";
  uint64_t after = 0;
  struct stat st = {0};
  rd_event ev[4];
  long nread = -1;
  if (set) {
    for (int s = 2; s <= 4; s++) tboard_scalar(tb, "x", s, 1.0 * s, (float)s);
    rc = tboard_flush(tb);
    snprintf(msg, sizeof msg, "%s", tboard_error(tb));
    after = tboard_bytes_written(tb);
    stat(path, &st);
    nread = read_file(path, ev, 4);
    /* while the writes fail, unwritten events pile up to TBOARD_PENDING_MAX, then are dropped */
    for (int s = 5; s < 5 + (int)(TBOARD_PENDING_MAX / 20) && !dropped; s++)
      if (tboard_scalar(tb, "x", s, 1.0 * s, (float)s) != 0 && strstr(tboard_error(tb), "dropped")) {
        dropped = s;
        snprintf(msg2, sizeof msg2, "%s", tboard_error(tb));
      }
    setrlimit(RLIMIT_FSIZE, &old);
    rc2 = tboard_flush(tb);
  }
  signal(SIGXFSZ, oldsig);
  if (!set) SKIP("cannot set RLIMIT_FSIZE");
  if (rc == 0) {
    tboard_close(tb, NULL, 0);
    SKIP("the file size limit is not enforced on this file system");
  }
  CHECK(rc == -1 && strstr(msg, "write") && strstr(msg, strerror(EFBIG)), "failed flush: '%s'", msg);
  CHECK(after == good && (uint64_t)st.st_size == good, "after the failure: %llu bytes written, size %lld, want %llu",
        (unsigned long long)after, (long long)st.st_size, (unsigned long long)good);
  CHECK(nread == 2 && ev[1].step == 1, "after the failure the file reads as %ld events, want 2", nread);
  CHECK(dropped > 0 && strstr(msg2, "step"), "pending events never dropped: '%s'", msg2);
  CHECK(rc2 == 0, "flush after the limit is lifted: %s", tboard_error(tb));
  CHECK(tboard_close(tb, err, sizeof err) == 0, "close: %s", err);
  long want = dropped; /* file_version, then steps 1 .. dropped-1 */
  rd_event* all = (rd_event*)calloc((size_t)want + 4, sizeof *all);
  long n = read_file(path, all, want + 4);
  CHECK(n == want, "%ld events after the retry, want %ld", n, want);
  int bad = 0;
  for (long i = 1; i < n && i < want; i++)
    if (all[i].step != i || all[i].value[0] != (float)i) bad++;
  CHECK(bad == 0, "%d events out of order or wrong", bad);
  free(all);
}

/* tboard_open_append: a resumed run cuts the file back to a checkpoint's length and appends. */
static void test_open_append(void) {
  char dir[300], err[512] = "", path[4096];
  snprintf(dir, sizeof dir, "%s/append", g_tmp);
  tboard* tb = tboard_open(dir, err, sizeof err);
  CHECK(tb != NULL, "open: %s", err);
  if (!tb) return;
  snprintf(path, sizeof path, "%s", tboard_path(tb));
  CHECK(tboard_scalar(tb, "x", 1, 1.0, 1.0f) == 0 && tboard_flush(tb) == 0, "write");
  uint64_t at = tboard_bytes_written(tb) + tboard_bytes_pending(tb); /* "the checkpoint" */
  CHECK(tboard_scalar(tb, "x", 2, 2.0, 2.0f) == 0 && tboard_scalar(tb, "x", 3, 3.0, 3.0f) == 0, "write");
  CHECK(tboard_bytes_pending(tb) > 0, "records are buffered until a flush");
  CHECK(tboard_close(tb, err, sizeof err) == 0, "close: %s", err);
  /* continue from "the checkpoint": steps 2 and 3 go, 2' and 3' follow step 1 */
  tb = tboard_open_append(path, at, err, sizeof err);
  CHECK(tb != NULL, "open_append: %s", err);
  if (!tb) return;
  CHECK(strcmp(tboard_path(tb), path) == 0 && tboard_bytes_written(tb) == at, "path or length");
  CHECK(tboard_scalar(tb, "x", 2, 4.0, 20.0f) == 0 && tboard_scalar(tb, "x", 3, 5.0, 30.0f) == 0, "write");
  CHECK(tboard_close(tb, err, sizeof err) == 0, "close: %s", err);
  rd_event ev[8];
  long n = read_file(path, ev, 8);
  CHECK(n == 4, "%ld events, want 4", n);
  if (n == 4)
    CHECK(ev[1].step == 1 && ev[1].value[0] == 1.0f && ev[2].step == 2 && ev[2].value[0] == 20.0f &&
              ev[3].step == 3 && ev[3].value[0] == 30.0f,
          "events after the append");
  /* refused, and the file left as it is: longer than the file, not a TFRecord file, missing */
  struct stat st0, st1;
  CHECK(stat(path, &st0) == 0, "stat");
  err[0] = '\0';
  CHECK(tboard_open_append(path, (uint64_t)st0.st_size + 1, err, sizeof err) == NULL && strstr(err, "shorter"),
        "a length past the end: %s", err);
  CHECK(tboard_open_append(path, 4, err, sizeof err) == NULL, "a length shorter than one record");
  CHECK(stat(path, &st1) == 0 && st1.st_size == st0.st_size, "a refused append changed the file");
  char junk[400];
  snprintf(junk, sizeof junk, "%s/junk", g_tmp);
  FILE* f = fopen(junk, "w");
  if (f) {
    fputs("this is not a TFRecord file at all", f);
    fclose(f);
  }
  err[0] = '\0';
  CHECK(tboard_open_append(junk, 20, err, sizeof err) == NULL && strstr(err, "TFRecord"), "junk: %s", err);
  CHECK(stat(junk, &st1) == 0 && st1.st_size == 34, "a refused append cut the file");
  snprintf(junk, sizeof junk, "%s/missing", g_tmp);
  err[0] = '\0';
  CHECK(tboard_open_append(junk, 40, err, sizeof err) == NULL && err[0], "missing file");
}

int main(void) {
  snprintf(g_tmp, sizeof g_tmp, "/tmp/test_tboard.XXXXXX");
  if (!mkdtemp(g_tmp)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_crc32c_known_answers);
  RUN(test_crc32c_paths_agree);
  RUN(test_masked_crc);
  RUN(test_varint);
  RUN(test_known_records);
  RUN(test_encode_edges);
  RUN(test_write_and_read_back);
  RUN(test_two_writers_one_folder);
  RUN(test_errors);
  RUN(test_write_failure);
  RUN(test_open_append);
  rm_rf(g_tmp);
  for (int i = 0; i < g_nimages; i++) free(g_images[i]);
  return test_done();
}
