/* events_text.h: the TensorBoard event files of a run folder decoded to text, for tests that hold a
 * resumed run's events equal to an uninterrupted run's (test_resume.c, test_faults.c). Framing and
 * both CRCs of every record are checked; each scalar becomes a line "step tag value", the timing
 * scalars (which differ between runs) left out. */
#ifndef MBPO_TESTS_EVENTS_TEXT_H
#define MBPO_TESTS_EVENTS_TEXT_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tboard.h"

static int get_varint(const unsigned char** p, const unsigned char* end, unsigned long long* v) {
  *v = 0;
  for (int sh = 0; *p < end && sh < 64; sh += 7) {
    unsigned char b = *(*p)++;
    *v |= (unsigned long long)(b & 0x7f) << sh;
    if (!(b & 0x80)) return 0;
  }
  return -1;
}

/* One protobuf message [p, end): calls back for each field (number, wire type, value or bytes). */
typedef void (*field_fn)(void* ctx, int num, int wt, unsigned long long v, const unsigned char* b,
                         size_t n);
static int walk(const unsigned char* p, const unsigned char* end, field_fn fn, void* ctx) {
  while (p < end) {
    unsigned long long key, v = 0;
    if (get_varint(&p, end, &key) != 0) return -1;
    int wt = (int)(key & 7), num = (int)(key >> 3);
    if (wt == 0) {
      if (get_varint(&p, end, &v) != 0) return -1;
      fn(ctx, num, wt, v, NULL, 0);
    } else if (wt == 1 || wt == 5) {
      size_t n = wt == 1 ? 8 : 4;
      if ((size_t)(end - p) < n) return -1;
      fn(ctx, num, wt, 0, p, n);
      p += n;
    } else if (wt == 2) {
      if (get_varint(&p, end, &v) != 0 || v > (unsigned long long)(end - p)) return -1;
      fn(ctx, num, wt, v, p, (size_t)v);
      p += v;
    } else {
      return -1;
    }
  }
  return 0;
}

typedef struct tb_text {
  char* out;
  size_t n, cap;
  long long step;
  char tag[128];
  float value;
  int events, bad;
} tb_text;

static void emit(tb_text* t, const char* line) {
  size_t l = strlen(line);
  if (t->n + l + 1 > t->cap) {
    t->cap = (t->n + l + 1) * 2;
    t->out = (char*)realloc(t->out, t->cap);
    if (!t->out) abort();
  }
  memcpy(t->out + t->n, line, l + 1);
  t->n += l;
}

static void on_value(void* ctx, int num, int wt, unsigned long long v, const unsigned char* b, size_t n) {
  tb_text* t = (tb_text*)ctx;
  (void)v;
  if (num == 1 && wt == 2) snprintf(t->tag, sizeof t->tag, "%.*s", (int)n, (const char*)b);
  if (num == 2 && wt == 5) memcpy(&t->value, b, 4);
}

static void on_summary(void* ctx, int num, int wt, unsigned long long v, const unsigned char* b, size_t n) {
  tb_text* t = (tb_text*)ctx;
  (void)v;
  if (num != 1 || wt != 2) return;
  t->tag[0] = '\0';
  t->value = NAN;
  if (walk(b, b + n, on_value, t) != 0) t->bad++;
  static const char* const timing[] = {"wall_time_s", "epoch_time_s", "model_time_s", "updates_per_s",
                                       "env_steps_per_s"};
  for (size_t i = 0; i < sizeof timing / sizeof timing[0]; i++)
    if (strcmp(t->tag, timing[i]) == 0) return;
  char line[256];
  snprintf(line, sizeof line, "%lld %s %.9g\n", t->step, t->tag, (double)t->value);
  emit(t, line);
}

static void on_event(void* ctx, int num, int wt, unsigned long long v, const unsigned char* b, size_t n) {
  tb_text* t = (tb_text*)ctx;
  if (num == 2 && wt == 0) t->step = (long long)v;
  if (num == 5 && wt == 2 && walk(b, b + n, on_summary, t) != 0) t->bad++;
}

/* Every event file of a run folder (their number in *files) as lines "step tag value" (the timing
 * scalars left out); NULL when a file cannot be read or a record is broken. */
static char* read_events(const char* dir, int* files, int* events) {
  char cmd[700];
  snprintf(cmd, sizeof cmd, "ls %s/events.out.tfevents.* 2>/dev/null", dir);
  FILE* ls = popen(cmd, "r");
  if (!ls) return NULL;
  tb_text t = {0};
  emit(&t, "");
  char path[600];
  *files = 0;
  while (fgets(path, sizeof path, ls)) {
    path[strcspn(path, "\n")] = '\0';
    (*files)++;
    FILE* f = fopen(path, "rb");
    if (!f) {
      t.bad++;
      continue;
    }
    unsigned char head[12], buf[1 << 16], crc[4];
    while (fread(head, 1, 12, f) == 12) {
      unsigned long long len = 0;
      for (int i = 7; i >= 0; i--) len = len << 8 | head[i];
      uint32_t hc = (uint32_t)head[8] | (uint32_t)head[9] << 8 | (uint32_t)head[10] << 16 | (uint32_t)head[11] << 24;
      if (hc != tboard_mask_crc(tboard_crc32c(0, head, 8)) || len > sizeof buf || fread(buf, 1, len, f) != len ||
          fread(crc, 1, 4, f) != 4 ||
          ((uint32_t)crc[0] | (uint32_t)crc[1] << 8 | (uint32_t)crc[2] << 16 | (uint32_t)crc[3] << 24) !=
              tboard_mask_crc(tboard_crc32c(0, buf, len))) {
        t.bad++;
        break;
      }
      t.step = 0;
      if (walk(buf, buf + len, on_event, &t) != 0) t.bad++;
      t.events++;
    }
    if (!feof(f) && !t.bad) t.bad++;
    fclose(f);
  }
  pclose(ls);
  *events = t.events;
  if (t.bad) {
    free(t.out);
    return NULL;
  }
  return t.out;
}

static inline int count_lines(const char* path) {
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  int n = 0, ch;
  while ((ch = fgetc(f)) != EOF) n += ch == '\n';
  fclose(f);
  return n;
}

#endif
