/* config.c: the settings table (config.h): defaults, strict parsing of values, INI files and
 * embedded presets, cross-setting checks, and the resolved config.ini / `mbpo config` output. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "env.h"
#include "log.h"
#include "sweep.h"

/* ---- the table ---------------------------------------------------------------------------- */

#define CFG_DESC_(kind, f, key, def, lo, hi, extra, help) \
  {CFG_##kind, key, offsetof(mbpo_config, f), (double)(def), (double)(lo), (double)(hi), extra, help},

static const cfg_desc g_desc[] = {MBPO_SETTINGS(CFG_DESC_)};
#define NDESC ((int)(sizeof g_desc / sizeof g_desc[0]))

int cfg_count(void) { return NDESC; }

const cfg_desc* cfg_at(int i) { return (i >= 0 && i < NDESC) ? &g_desc[i] : NULL; }

const cfg_desc* cfg_find(const char* key) {
  if (!key) return NULL;
  for (int i = 0; i < NDESC; i++)
    if (strcmp(g_desc[i].key, key) == 0) return &g_desc[i];
  return NULL;
}

#define FIELD(c, d, type) ((type*)((char*)(c) + (d)->offset))
#define CFIELD(c, d, type) ((const type*)((const char*)(c) + (d)->offset))

/* ---- small text helpers ------------------------------------------------------------------- */

/* Shortest text that reads back (strtod) as exactly v: whole numbers plainly ("10", "125000"),
 * others in %g style with a short exponent ("0.001", "2.5e-5"). */
static void fmt_double(double v, char* buf, int n) {
  if (v == floor(v) && fabs(v) < 1e15) {
    snprintf(buf, (size_t)n, "%.0f", v);
    if (strtod(buf, NULL) == v) return;
  }
  for (int p = 1; p <= 17; p++) {
    snprintf(buf, (size_t)n, "%.*g", p, v);
    if (strtod(buf, NULL) == v) break;
  }
  char* e = strchr(buf, 'e'); /* e-08 -> e-8, e+20 -> e20 */
  if (e) {
    char* src = e + 1;
    char* dst = e + 1;
    if (*src == '+') src++;
    else if (*src == '-') *dst++ = *src++;
    while (*src == '0' && src[1]) src++;
    memmove(dst, src, strlen(src) + 1);
  }
}

/* Copy s without leading and trailing white space into buf (size n); 0, or -1 when too long. */
static int trim_copy(const char* s, char* buf, size_t n) {
  while (isspace((unsigned char)*s)) s++;
  size_t len = strlen(s);
  while (len > 0 && isspace((unsigned char)s[len - 1])) len--;
  if (len + 1 > n) return -1;
  memcpy(buf, s, len);
  buf[len] = 0;
  return 0;
}

/* Plain decimal number text: digits, sign, point, exponent (no hex, no inf/nan words). */
static int decimal_chars(const char* s) {
  for (; *s; s++)
    if (!isdigit((unsigned char)*s) && !strchr("+-.eE", *s)) return 0;
  return 1;
}

/* Parse a finite decimal number filling the whole text. */
static int parse_double(const char* s, double* out) {
  if (!*s || !decimal_chars(s)) return -1;
  char* end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end) return -1;
  if (!isfinite(v)) return -2; /* out of double range */
  *out = v;
  return 0;
}

static int ieq(const char* a, const char* b) {
  for (; *a && *b; a++, b++)
    if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
  return *a == *b;
}

int cfg_edit_distance(const char* a, const char* b) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (la > 127) la = 127;
  if (lb > 127) lb = 127;
  int row[128];
  for (int j = 0; j <= lb; j++) row[j] = j;
  for (int i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = i;
    for (int j = 1; j <= lb; j++) {
      int up = row[j];
      int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
      int v = diag + cost;
      if (row[j] + 1 < v) v = row[j] + 1;
      if (row[j - 1] + 1 < v) v = row[j - 1] + 1;
      row[j] = v;
      diag = up;
    }
  }
  return row[lb];
}

static const char* last_component(const char* key) {
  const char* dot = strrchr(key, '.');
  return dot ? dot + 1 : key;
}

/* Score of candidate k for a mistyped key: the smaller of the whole-key distance and the distance
 * of the last components plus one; ties go to the smaller whole-key distance. */
static void key_score(const char* key, const char* k, int* primary, int* whole) {
  *whole = cfg_edit_distance(key, k);
  int tail = cfg_edit_distance(last_component(key), last_component(k)) + 1;
  *primary = tail < *whole ? tail : *whole;
}

const char* cfg_closest_key(const char* key) {
  const char* best = NULL;
  int bp = INT_MAX, bw = INT_MAX;
  for (int i = 0; i < NDESC; i++) {
    int p, w;
    key_score(key ? key : "", g_desc[i].key, &p, &w);
    if (p < bp || (p == bp && w < bw)) best = g_desc[i].key, bp = p, bw = w;
  }
  return best;
}

/* "unknown setting 'lr' (did you mean 'model.lr' or 'sac.lr'?)" */
static void unknown_key_message(const char* key, char* err, int errlen) {
  const char* best = cfg_closest_key(key);
  const char* tail = last_component(key);
  const char* same[NDESC];
  int nsame = 0;
  /* every key with this last component ("lr": model.lr, sac.lr), unless a section was given
   * and only mistyped ("modle.lr": model.lr) */
  int typo_of_best = strchr(key, '.') && cfg_edit_distance(key, best) <= 2;
  if (ieq(tail, last_component(best)) && !typo_of_best)
    for (int i = 0; i < NDESC; i++)
      if (ieq(tail, last_component(g_desc[i].key))) same[nsame++] = g_desc[i].key;
  char hint[512] = "";
  if (nsame > 1) {
    int len = 0;
    for (int i = 0; i < nsame && len < (int)sizeof hint; i++)
      len += snprintf(hint + len, sizeof hint - (size_t)len, "%s'%s'",
                      i == 0 ? "" : (i == nsame - 1 ? " or " : ", "), same[i]);
  } else {
    snprintf(hint, sizeof hint, "'%s'", best);
  }
  mbpo_fmt(err, errlen, "unknown setting '%s' (did you mean %s?)", key, hint);
}

/* The n-th ('|'-separated) value of an ENUM into buf; 0, or -1 when there is none. */
static int enum_value(const char* values, int idx, char* buf, int n) {
  const char* s = values;
  for (int i = 0; i < idx; i++) {
    s = strchr(s, '|');
    if (!s) return -1;
    s++;
  }
  const char* e = strchr(s, '|');
  int len = e ? (int)(e - s) : (int)strlen(s);
  if (len + 1 > n) len = n - 1;
  memcpy(buf, s, (size_t)len);
  buf[len] = 0;
  return 0;
}

static int enum_count(const char* values) {
  int n = 1;
  for (const char* s = values; *s; s++) n += *s == '|';
  return n;
}

/* "auto, cuda, cpu" */
static void enum_list(const char* values, char* buf, int n) {
  int len = 0;
  buf[0] = 0;
  for (const char* s = values; *s && len < n - 3; s++) {
    if (*s == '|') {
      buf[len++] = ',';
      buf[len++] = ' ';
    } else {
      buf[len++] = *s;
    }
  }
  buf[len] = 0;
}

static int is_task_key(const cfg_desc* d) { return strcmp(d->key, "task") == 0; }

/* The allowed values of a setting, as shown in messages, `mbpo config` and config.ini. */
static void range_text(const cfg_desc* d, char* buf, int n) {
  char lo[32], hi[32];
  switch (d->kind) {
    case CFG_INT:
      mbpo_fmt(buf, n, "[%ld, %ld]", (long)d->lo, (long)d->hi);
      break;
    case CFG_FLT:
      fmt_double(d->lo, lo, sizeof lo);
      fmt_double(d->hi, hi, sizeof hi);
      mbpo_fmt(buf, n, "[%s, %s]", lo, hi);
      break;
    case CFG_BOOL:
      mbpo_fmt(buf, n, "true|false");
      break;
    case CFG_STR:
      if (is_task_key(d)) {
        int len = 0;
        buf[0] = 0;
        for (int i = 0; i < env_ntasks() && len < n; i++)
          len += snprintf(buf + len, (size_t)(n - len), "%s%s", i ? "|" : "", env_task_at(i)->name);
      } else {
        mbpo_fmt(buf, n, "text");
      }
      break;
    case CFG_ENUM:
      mbpo_fmt(buf, n, "%s", d->extra);
      break;
    case CFG_LIST:
      fmt_double(d->lo, lo, sizeof lo);
      fmt_double(d->hi, hi, sizeof hi);
      mbpo_fmt(buf, n, "1-%d numbers in [%s, %s]", CFG_LIST_MAX, lo, hi);
      break;
  }
}

/* ---- parsing one value ------------------------------------------------------------------- */

static int parse_list(const cfg_desc* d, const char* text, cfg_list* out, char* err, int errlen) {
  cfg_list l = {0};
  const char* s = text;
  char item[128], lo[32], hi[32];
  fmt_double(d->lo, lo, sizeof lo);
  fmt_double(d->hi, hi, sizeof hi);
  for (;;) {
    const char* comma = strchr(s, ',');
    size_t len = comma ? (size_t)(comma - s) : strlen(s);
    char raw[128];
    if (len >= sizeof raw || trim_copy((memcpy(raw, s, len), raw[len] = 0, raw), item, sizeof item)) {
      mbpo_fmt(err, errlen, "setting '%s': item %d is too long", d->key, l.n + 1);
      return -1;
    }
    if (!item[0]) {
      mbpo_fmt(err, errlen, "setting '%s' = '%s': expected 1 to %d comma-separated numbers",
               d->key, text, CFG_LIST_MAX);
      return -1;
    }
    if (l.n == CFG_LIST_MAX) {
      mbpo_fmt(err, errlen, "setting '%s' = '%s' has more than %d values", d->key, text,
               CFG_LIST_MAX);
      return -1;
    }
    double v;
    int r = parse_double(item, &v);
    if (r == -1) {
      mbpo_fmt(err, errlen, "setting '%s': item %d '%s' is not a number", d->key, l.n + 1, item);
      return -1;
    }
    if (r == -2 || v < d->lo || v > d->hi) {
      mbpo_fmt(err, errlen, "setting '%s': item %d = %s is out of range [%s, %s]", d->key, l.n + 1,
               item, lo, hi);
      return -1;
    }
    l.v[l.n++] = v;
    if (!comma) break;
    s = comma + 1;
  }
  *out = l;
  return 0;
}

/* STR values must survive being written to and read back from an INI file. */
static int check_text(const cfg_desc* d, const char* value, char* err, int errlen) {
  size_t len = strlen(value);
  if (len > CFG_STR_MAX - 1) {
    mbpo_fmt(err, errlen, "setting '%s' is %zu characters long; at most %d are allowed", d->key,
             len, CFG_STR_MAX - 1);
    return -1;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)value[i];
    if (iscntrl(ch)) {
      mbpo_fmt(err, errlen, "setting '%s' contains a control character", d->key);
      return -1;
    }
    /* cfg_write_ini writes "key = value": a ';' first in the value follows that space too */
    if (ch == ';' && (i == 0 || isspace((unsigned char)value[i - 1]))) {
      mbpo_fmt(err, errlen, "setting '%s' = '%s': ' ;' would start an INI comment", d->key, value);
      return -1;
    }
  }
  if (len && (isspace((unsigned char)value[0]) || isspace((unsigned char)value[len - 1]))) {
    mbpo_fmt(err, errlen, "setting '%s' = '%s' has leading or trailing spaces", d->key, value);
    return -1;
  }
  return 0;
}

int cfg_set(mbpo_config* c, const char* key, const char* value, char* err, int errlen) {
  const cfg_desc* d = cfg_find(key);
  if (!d) {
    unknown_key_message(key ? key : "", err, errlen);
    return -1;
  }
  if (!value) value = "";
  if (d->kind == CFG_STR) {
    if (check_text(d, value, err, errlen)) return -1;
    snprintf(FIELD(c, d, char), CFG_STR_MAX, "%s", value);
    return 0;
  }
  char text[256];
  if (trim_copy(value, text, sizeof text)) {
    mbpo_fmt(err, errlen, "setting '%s': value is too long (%zu characters)", d->key, strlen(value));
    return -1;
  }
  if (!text[0]) {
    mbpo_fmt(err, errlen, "setting '%s' has no value", d->key);
    return -1;
  }
  switch (d->kind) {
    case CFG_INT: {
      char* end = NULL;
      errno = 0;
      long v = decimal_chars(text) ? strtol(text, &end, 10) : 0;
      int ok = end && end != text && !*end && errno == 0;
      if (!ok) { /* 1e6, 2.5e4: a float form is fine when it is a whole number */
        double x;
        int r = parse_double(text, &x);
        if (r == -1 || (r == 0 && x != floor(x))) {
          mbpo_fmt(err, errlen, "setting '%s' = '%s' is not an integer", d->key, text);
          return -1;
        }
        if (r == -2 || x < d->lo || x > d->hi) {
          mbpo_fmt(err, errlen, "setting '%s' = %s is out of range [%ld, %ld]", d->key, text,
                   (long)d->lo, (long)d->hi);
          return -1;
        }
        v = (long)x;
      }
      if (v < (long)d->lo || v > (long)d->hi) {
        mbpo_fmt(err, errlen, "setting '%s' = %ld is out of range [%ld, %ld]", d->key, v,
                 (long)d->lo, (long)d->hi);
        return -1;
      }
      *FIELD(c, d, long) = v;
      return 0;
    }
    case CFG_FLT: {
      double v;
      int r = parse_double(text, &v);
      if (r == -1) {
        mbpo_fmt(err, errlen, "setting '%s' = '%s' is not a finite number", d->key, text);
        return -1;
      }
      if (r == -2 || v < d->lo || v > d->hi) {
        char rng[80];
        range_text(d, rng, sizeof rng);
        mbpo_fmt(err, errlen, "setting '%s' = %s is out of range %s", d->key, text, rng);
        return -1;
      }
      *FIELD(c, d, double) = v;
      return 0;
    }
    case CFG_BOOL: {
      static const char* const yes[] = {"true", "1", "yes", "on"};
      static const char* const no[] = {"false", "0", "no", "off"};
      for (int i = 0; i < 4; i++) {
        if (ieq(text, yes[i])) return *FIELD(c, d, int) = 1, 0;
        if (ieq(text, no[i])) return *FIELD(c, d, int) = 0, 0;
      }
      mbpo_fmt(err, errlen,
               "setting '%s' = '%s' is not a boolean (true/false, 1/0, yes/no, on/off)", d->key,
               text);
      return -1;
    }
    case CFG_ENUM: {
      int n = enum_count(d->extra);
      for (int i = 0; i < n; i++) {
        char v[64];
        enum_value(d->extra, i, v, sizeof v);
        if (strcmp(v, text) == 0) return *FIELD(c, d, int) = i, 0;
      }
      char allowed[256];
      enum_list(d->extra, allowed, sizeof allowed);
      mbpo_fmt(err, errlen, "setting '%s' = '%s' is not one of: %s", d->key, text, allowed);
      return -1;
    }
    case CFG_LIST:
      return parse_list(d, text, FIELD(c, d, cfg_list), err, errlen);
  }
  mbpo_fmt(err, errlen, "setting '%s' has an unknown kind", d->key);
  return -1;
}

void cfg_defaults(mbpo_config* c) {
  memset(c, 0, sizeof *c);
  char err[256];
  for (int i = 0; i < NDESC; i++) {
    const cfg_desc* d = &g_desc[i];
    switch (d->kind) {
      case CFG_INT: *FIELD(c, d, long) = (long)d->def; break;
      case CFG_FLT: *FIELD(c, d, double) = d->def; break;
      case CFG_BOOL:
      case CFG_ENUM: *FIELD(c, d, int) = (int)d->def; break;
      case CFG_STR: snprintf(FIELD(c, d, char), CFG_STR_MAX, "%s", d->extra ? d->extra : ""); break;
      case CFG_LIST:
        if (parse_list(d, d->extra, FIELD(c, d, cfg_list), err, sizeof err))
          mbpo_fatal("config table: default of %s: %s", d->key, err);
        break;
    }
  }
}

void cfg_format_value(const mbpo_config* c, const cfg_desc* d, char* buf, int n) {
  switch (d->kind) {
    case CFG_INT: mbpo_fmt(buf, n, "%ld", *CFIELD(c, d, long)); break;
    case CFG_FLT: fmt_double(*CFIELD(c, d, double), buf, n); break;
    case CFG_BOOL: mbpo_fmt(buf, n, "%s", *CFIELD(c, d, int) ? "true" : "false"); break;
    case CFG_STR: mbpo_fmt(buf, n, "%s", CFIELD(c, d, char)); break;
    case CFG_ENUM:
      if (enum_value(d->extra, *CFIELD(c, d, int), buf, n)) mbpo_fmt(buf, n, "?");
      break;
    case CFG_LIST: {
      const cfg_list* l = CFIELD(c, d, cfg_list);
      int len = 0;
      buf[0] = 0;
      for (int i = 0; i < l->n && len < n - 1; i++) {
        char v[32];
        fmt_double(l->v[i], v, sizeof v);
        len += snprintf(buf + len, (size_t)(n - len), "%s%s", i ? "," : "", v);
      }
      break;
    }
  }
}

int cfg_equal(const mbpo_config* a, const mbpo_config* b) {
  for (int i = 0; i < NDESC; i++) {
    const cfg_desc* d = &g_desc[i];
    switch (d->kind) {
      case CFG_INT:
        if (*CFIELD(a, d, long) != *CFIELD(b, d, long)) return 0;
        break;
      case CFG_FLT:
        if (*CFIELD(a, d, double) != *CFIELD(b, d, double)) return 0;
        break;
      case CFG_BOOL:
      case CFG_ENUM:
        if (*CFIELD(a, d, int) != *CFIELD(b, d, int)) return 0;
        break;
      case CFG_STR:
        if (strcmp(CFIELD(a, d, char), CFIELD(b, d, char)) != 0) return 0;
        break;
      case CFG_LIST: {
        const cfg_list *x = CFIELD(a, d, cfg_list), *y = CFIELD(b, d, cfg_list);
        if (x->n != y->n) return 0;
        for (int j = 0; j < x->n; j++)
          if (x->v[j] != y->v[j]) return 0;
        break;
      }
    }
  }
  return 1;
}

/* ---- INI files ---------------------------------------------------------------------------- */

/* Line source for inih: counts lines (inih's handler is not told the line number) and catches
 * lines longer than inih's buffer, which it would otherwise split into two lines. */
typedef struct ini_src {
  FILE* f;          /* a file, or */
  const char* text; /* NUL-terminated text */
  int line;         /* lines handed out so far = the line being parsed */
  int long_line;    /* first line that was too long (0 = none) */
} ini_src;

/* Where the keys of one extra section go ([sweep]: sweep.h); NULL hook = no extra section. */
typedef struct ini_hook {
  const char* section;
  cfg_section_fn fn;
  void* user;
} ini_hook;

typedef struct ini_state {
  mbpo_config* c;
  ini_src* src;
  const char* name;
  const ini_hook* hook;
  char err[600]; /* the first error */
  int err_line;
  int seen[NDESC]; /* line where each setting was set (0 = not yet) */
} ini_state;

static int src_getc(ini_src* s) {
  if (s->f) return fgetc(s->f);
  if (!*s->text) return EOF;
  return (unsigned char)*s->text++;
}

static char* ini_reader_fn(char* str, int num, void* stream) {
  ini_src* s = (ini_src*)stream;
  int len = 0, ch = 0, over = 0;
  while ((ch = src_getc(s)) != EOF) {
    if (ch == '\n') break;
    if (len < num - 2) str[len++] = (char)ch;
    else over = 1;
  }
  if (ch == EOF && len == 0 && !over) return NULL;
  s->line++;
  if (over) {
    const char* p = str;
    while (p < str + len && isspace((unsigned char)*p)) p++;
    int comment = p < str + len && (*p == '#' || *p == ';');
    if (!comment && !s->long_line) s->long_line = s->line; /* a cut comment is harmless */
  }
  str[len++] = '\n';
  str[len] = 0;
  return str;
}

static int ini_handler_fn(void* user, const char* section, const char* name, const char* value) {
  ini_state* st = (ini_state*)user;
  char key[256], msg[512];
  if (section && section[0]) mbpo_fmt(key, sizeof key, "%s.%s", section, name);
  else mbpo_fmt(key, sizeof key, "%s", name);
  const cfg_desc* d = cfg_find(key);
  int bad = 0;
  if (st->hook && section && strcmp(section, st->hook->section) == 0) {
    bad = st->hook->fn(st->hook->user, name, value, msg, sizeof msg) != 0;
  } else if (d && st->seen[d - g_desc]) {
    mbpo_fmt(msg, sizeof msg, "setting '%s' is set twice (first on line %d)", key,
             st->seen[d - g_desc]);
    bad = 1;
  } else if (cfg_set(st->c, key, value, msg, sizeof msg) != 0) {
    bad = 1;
  } else {
    st->seen[d - g_desc] = st->src->line;
  }
  if (bad && !st->err_line) {
    st->err_line = st->src->line;
    mbpo_fmt(st->err, sizeof st->err, "%s:%d: %s", st->name, st->err_line, msg);
  }
  return !bad;
}

/* Parse from src over a copy of c; c changes only when the whole file is good. */
static int load_ini_src(mbpo_config* c, ini_src* src, const char* name, const ini_hook* hook,
                        char* err, int errlen) {
  ini_state* st = (ini_state*)calloc(1, sizeof *st);
  mbpo_config* tmp = (mbpo_config*)malloc(sizeof *tmp);
  if (!st || !tmp) mbpo_fatal("out of memory");
  *tmp = *c;
  st->c = tmp;
  st->src = src;
  st->name = name;
  st->hook = hook;
  int saved_multiline = ini_allow_multiline, saved_max_line = ini_max_line;
  ini_allow_multiline = 0; /* an indented line is a setting, not a continuation */
  /* room for the longest line cfg_write_ini writes ("model_dir = " and CFG_STR_MAX - 1 characters);
   * inih's default of 200 made long text settings unreadable from a resolved config.ini */
  if (ini_max_line < CFG_STR_MAX + 64) ini_max_line = CFG_STR_MAX + 64;
  int max_line = ini_max_line;
  int r = ini_parse_stream(ini_reader_fn, src, ini_handler_fn, st);
  ini_allow_multiline = saved_multiline;
  ini_max_line = saved_max_line;
  int first = 0; /* the first error of any kind */
  if (src->long_line) first = src->long_line;
  if (r > 0 && (!first || r < first)) first = r;
  if (st->err_line && (!first || st->err_line < first)) first = st->err_line;
  int rc = 0;
  if (first) {
    rc = -1;
    if (first == src->long_line)
      mbpo_fmt(err, errlen, "%s:%d: line is too long (at most %d characters)", name, first,
               max_line - 3);
    else if (first == st->err_line)
      mbpo_fmt(err, errlen, "%s", st->err);
    else
      mbpo_fmt(err, errlen, "%s:%d: syntax error (expected 'key = value' or '[section]')", name,
               first);
  } else if (r < 0) {
    rc = -1;
    mbpo_fmt(err, errlen, "%s: cannot be read", name);
  } else {
    *c = *tmp;
  }
  free(tmp);
  free(st);
  return rc;
}

static int load_ini_file(mbpo_config* c, const char* path, const ini_hook* hook, char* err,
                         int errlen) {
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    mbpo_fmt(err, errlen, "%s: is a directory, not an .ini file", path);
    return -1;
  }
  FILE* f = fopen(path, "r");
  if (!f) {
    mbpo_fmt(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  ini_src src = {f, NULL, 0, 0};
  int r = load_ini_src(c, &src, path, hook, err, errlen);
  if (r == 0 && ferror(f)) {
    mbpo_fmt(err, errlen, "%s: read error", path);
    r = -1;
  }
  fclose(f);
  return r;
}

int cfg_load_ini(mbpo_config* c, const char* path, char* err, int errlen) {
  return load_ini_file(c, path, NULL, err, errlen);
}

int cfg_load_ini_text(mbpo_config* c, const char* text, const char* name, char* err, int errlen) {
  ini_src src = {NULL, text ? text : "", 0, 0};
  return load_ini_src(c, &src, name, NULL, err, errlen);
}

/* ---- presets ------------------------------------------------------------------------------ */

/* "hopper, walker2d, ...": the tasks whose preset is embedded. */
static void preset_list(char* buf, int n) {
  int len = 0;
  buf[0] = 0;
  for (int i = 0; i < env_ntasks() && len < n; i++) {
    char asset[128];
    mbpo_fmt(asset, sizeof asset, "%s.ini", env_task_at(i)->name);
    if (env_asset_text(asset, NULL))
      len += snprintf(buf + len, (size_t)(n - len), "%s%s", len ? ", " : "", env_task_at(i)->name);
  }
}

static int load_embedded(mbpo_config* c, const char* name, const ini_hook* hook, char* err,
                         int errlen) {
  char asset[300], label[320];
  size_t len = strlen(name);
  if (len > 4 && strcmp(name + len - 4, ".ini") == 0) mbpo_fmt(asset, sizeof asset, "%s", name);
  else mbpo_fmt(asset, sizeof asset, "%s.ini", name);
  const char* text = env_asset_text(asset, NULL);
  if (!text) return 1;
  mbpo_fmt(label, sizeof label, "embedded:%s", asset);
  ini_src src = {NULL, text, 0, 0};
  return load_ini_src(c, &src, label, hook, err, errlen);
}

static int load_preset(mbpo_config* c, const char* arg, const ini_hook* hook, char* err,
                       int errlen) {
  struct stat sb;
  if (!arg || !arg[0]) {
    mbpo_fmt(err, errlen, "empty preset name");
    return -1;
  }
  if (stat(arg, &sb) == 0 && !S_ISDIR(sb.st_mode)) return load_ini_file(c, arg, hook, err, errlen);
  const char* slash = strrchr(arg, '/');
  if (!slash) { /* a name: hopper or hopper.ini */
    int r = load_embedded(c, arg, hook, err, errlen);
    if (r <= 0) return r;
  } else if (stat(arg, &sb) != 0) {
    /* configs/hopper.ini from outside the source tree: the same preset is embedded */
    size_t dlen = (size_t)(slash - arg);
    int in_configs = (dlen == 7 && strncmp(arg, "configs", 7) == 0) ||
                     (dlen > 7 && strncmp(slash - 8, "/configs", 8) == 0);
    if (in_configs) {
      int r = load_embedded(c, slash + 1, hook, err, errlen);
      if (r == 0) mbpo_note("%s is not here; using the embedded preset %s", arg, slash + 1);
      if (r <= 0) return r;
    }
    mbpo_fmt(err, errlen, "cannot open %s: %s", arg, strerror(ENOENT));
    return -1;
  } else {
    mbpo_fmt(err, errlen, "%s: is a directory, not an .ini file", arg);
    return -1;
  }
  char list[256];
  preset_list(list, sizeof list);
  mbpo_fmt(err, errlen, "unknown preset '%s'; presets: %s (or give the path of an .ini file)", arg,
           list);
  return -1;
}

int cfg_load_preset(mbpo_config* c, const char* arg, char* err, int errlen) {
  return load_preset(c, arg, NULL, err, errlen);
}

int cfg_load_preset_section(mbpo_config* c, const char* arg, const char* section,
                            cfg_section_fn fn, void* user, char* err, int errlen) {
  ini_hook hook = {section, fn, user};
  return load_preset(c, arg, fn ? &hook : NULL, err, errlen);
}

/* ---- checks across settings ---------------------------------------------------------------- */

int cfg_validate(const mbpo_config* c, char* err, int errlen) {
  char v[CFG_STR_MAX + 32], msg[512];
  /* every value within its own range (a config may have been filled in by code) */
  mbpo_config* tmp = (mbpo_config*)malloc(sizeof *tmp);
  if (!tmp) mbpo_fatal("out of memory");
  *tmp = *c;
  int bad = 0;
  for (int i = 0; i < NDESC && !bad; i++) {
    const cfg_desc* d = &g_desc[i];
    bad = 1;
    if (d->kind == CFG_STR) {
      const char* s = CFIELD(c, d, char);
      if (memchr(s, 0, CFG_STR_MAX) == NULL) {
        mbpo_fmt(err, errlen, "setting '%s' is not terminated", d->key);
        return -1;
      }
    } else if (d->kind == CFG_ENUM &&
               (*CFIELD(c, d, int) < 0 || *CFIELD(c, d, int) >= enum_count(d->extra))) {
      mbpo_fmt(err, errlen, "setting '%s' has no value %d", d->key, *CFIELD(c, d, int));
      break;
    } else if (d->kind == CFG_LIST &&
               (CFIELD(c, d, cfg_list)->n < 1 || CFIELD(c, d, cfg_list)->n > CFG_LIST_MAX)) {
      mbpo_fmt(err, errlen, "setting '%s' has %d values (1 to %d allowed)", d->key,
               CFIELD(c, d, cfg_list)->n, CFG_LIST_MAX);
      break;
    }
    if (d->kind == CFG_BOOL && *CFIELD(c, d, int) != 0 && *CFIELD(c, d, int) != 1) {
      mbpo_fmt(err, errlen, "setting '%s' is not 0 or 1", d->key);
      break;
    }
    cfg_format_value(c, d, v, sizeof v);
    if (cfg_set(tmp, d->key, v, msg, sizeof msg) != 0) {
      mbpo_fmt(err, errlen, "%s", msg);
      break;
    }
    bad = 0;
  }
  free(tmp);
  if (bad) return -1;
  if (!env_find(c->task)) {
    mbpo_fmt(err, errlen, "unknown task '%s'; tasks: %s", c->task, env_task_list());
    return -1;
  }
  if (c->model_elites > c->model_ensemble) {
    mbpo_fmt(err, errlen, "model.elites = %ld is more than model.ensemble = %ld", c->model_elites,
             c->model_ensemble);
    return -1;
  }
  if (c->rollout_min_epoch > c->rollout_max_epoch) {
    mbpo_fmt(err, errlen, "rollout.min_epoch = %ld is after rollout.max_epoch = %ld",
             c->rollout_min_epoch, c->rollout_max_epoch);
    return -1;
  }
  if (c->rollout_min_length > c->rollout_max_length) {
    mbpo_fmt(err, errlen, "rollout.min_length = %ld is more than rollout.max_length = %ld",
             c->rollout_min_length, c->rollout_max_length);
    return -1;
  }
  if (c->model_weight_decay.n != c->model_layers + 1) {
    mbpo_fmt(err, errlen,
             "model.weight_decay has %d values; model.layers = %ld needs %ld (one per hidden layer, "
             "then the output layer)",
             c->model_weight_decay.n, c->model_layers, c->model_layers + 1);
    return -1;
  }
  long real = (long)((double)c->sac_batch * c->sac_real_ratio);
  if (real > c->sac_batch || (c->sac_real_ratio > 0 && real == 0)) {
    mbpo_fmt(err, errlen,
             "sac.real_ratio = %g with sac.batch = %ld gives %ld real rows per batch (use 0 for "
             "model data only)",
             c->sac_real_ratio, c->sac_batch, real);
    return -1;
  }
  if (c->sac_value_expansion > 0 && c->sac_real_ratio < 1.0) {
    /* §6.2's value-expansion ablation uses the model only inside the target, on real data */
    mbpo_fmt(err, errlen,
             "sac.value_expansion = %ld uses the model only in the critics' target and trains SAC on real "
             "data: set sac.real_ratio = 1 (now %g)",
             c->sac_value_expansion, c->sac_real_ratio);
    return -1;
  }
  if (c->sac_value_expansion > 0 && !(c->sac_reward_scale > 0)) {
    mbpo_fmt(err, errlen, "sac.value_expansion needs sac.reward_scale > 0 (now %g)", c->sac_reward_scale);
    return -1;
  }
  if (c->tf32) { /* a setting that silently did nothing would make results lie about their arithmetic */
    mbpo_fmt(err, errlen, "tf32 = 1 is not implemented yet: the GPU's GEMMs are always float32");
    return -1;
  }
  if (c->model_train_freq > c->epoch_length) {
    mbpo_fmt(err, errlen, "model.train_freq = %ld is longer than epoch_length = %ld",
             c->model_train_freq, c->epoch_length);
    return -1;
  }
  if (c->min_pool > c->real_pool_size) {
    mbpo_fmt(err, errlen, "min_pool = %ld is more than real_pool_size = %ld: SAC would never start",
             c->min_pool, c->real_pool_size);
    return -1;
  }
  /* model pool capacity at the longest rollouts (docs/algorithm.md §5) */
  double per_epoch = (double)c->rollout_batch * (double)c->epoch_length / (double)c->model_train_freq;
  double cap = (double)c->model_retain_epochs * floor((double)c->rollout_max_length * per_epoch);
  if (cap > (double)INT_MAX) {
    mbpo_fmt(err, errlen,
             "the model pool would hold %.4g rows at rollout.max_length = %ld (more than %d): "
             "lower rollout.batch, rollout.max_length or model.retain_epochs",
             cap, c->rollout_max_length, INT_MAX);
    return -1;
  }
  if (!c->run_dir[0]) {
    mbpo_fmt(err, errlen, "run_dir is empty");
    return -1;
  }
  if (!c->tag[0] || strchr(c->tag, '/') || strcmp(c->tag, ".") == 0 || strcmp(c->tag, "..") == 0) {
    mbpo_fmt(err, errlen, "tag '%s' must be a non-empty name without '/'", c->tag);
    return -1;
  }
  if (c->model_dir[0]) {
    struct stat sb;
    if (stat(c->model_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
      mbpo_fmt(err, errlen, "model_dir '%s' is not a directory", c->model_dir);
      return -1;
    }
  }
  return 0;
}

/* ---- output ------------------------------------------------------------------------------- */

/* "model" for "model.lr", "" for "seed" (into buf). */
static void section_of(const char* key, char* buf, int n) {
  const char* dot = strrchr(key, '.');
  int len = dot ? (int)(dot - key) : 0;
  if (len > n - 1) len = n - 1;
  memcpy(buf, key, (size_t)len);
  buf[len] = 0;
}

/* Calls fn for each setting, top-level keys first, then each section in the order of the table. */
typedef void (*cfg_visit_fn)(const mbpo_config* c, const cfg_desc* d, const char* section,
                             int first_in_section, FILE* f);

static void visit_by_section(const mbpo_config* c, FILE* f, cfg_visit_fn fn) {
  char sec[NDESC][64];
  for (int i = 0; i < NDESC; i++) section_of(g_desc[i].key, sec[i], sizeof sec[i]);
  int first = 1;
  for (int i = 0; i < NDESC; i++)
    if (!sec[i][0]) fn(c, &g_desc[i], "", first, f), first = 0;
  for (int i = 0; i < NDESC; i++) {
    if (!sec[i][0]) continue;
    int earlier = 0;
    for (int j = 0; j < i; j++) earlier |= strcmp(sec[j], sec[i]) == 0;
    if (earlier) continue;
    first = 1;
    for (int j = i; j < NDESC; j++)
      if (strcmp(sec[j], sec[i]) == 0) fn(c, &g_desc[j], sec[i], first, f), first = 0;
  }
}

static void write_one(const mbpo_config* c, const cfg_desc* d, const char* section, int first,
                      FILE* f) {
  char rng[256], val[CFG_STR_MAX + 32];
  if (first && section[0]) fprintf(f, "\n[%s]\n", section);
  range_text(d, rng, sizeof rng);
  cfg_format_value(c, d, val, sizeof val);
  const char* name = d->key + strlen(section) + (section[0] != 0);
  if (d->kind == CFG_INT || d->kind == CFG_FLT) fprintf(f, "# %s (range %s)\n", d->help, rng);
  else if (d->kind == CFG_ENUM || is_task_key(d)) fprintf(f, "# %s (one of %s)\n", d->help, rng);
  else if (d->kind == CFG_BOOL) fprintf(f, "# %s (true or false)\n", d->help);
  else if (d->kind == CFG_LIST) fprintf(f, "# %s (%s)\n", d->help, rng);
  else fprintf(f, "# %s\n", d->help);
  fprintf(f, "%s =%s%s\n", name, val[0] ? " " : "", val);
}

void cfg_write_ini(const mbpo_config* c, FILE* f) {
  fprintf(f,
          "# mbpo configuration, fully resolved. Read it back with `mbpo train <this file>`.\n"
          "# [section] names the prefix of the keys below it: lr under [model] is model.lr.\n\n");
  visit_by_section(c, f, write_one);
}

static int g_print_wkey, g_print_wval, g_print_wrng;

static void print_one(const mbpo_config* c, const cfg_desc* d, const char* section, int first,
                      FILE* f) {
  char rng[256], val[CFG_STR_MAX + 32];
  if (first) fprintf(f, "\n%s\n", section[0] ? section : "run");
  range_text(d, rng, sizeof rng);
  cfg_format_value(c, d, val, sizeof val);
  if (!val[0]) mbpo_fmt(val, sizeof val, "\"\"");
  char row[1024];
  int len = snprintf(row, sizeof row, "  %-*s  %-*s  %-*s  ", g_print_wkey, d->key, g_print_wval,
                     val, g_print_wrng, rng);
  int col = 2 + g_print_wkey + 2 + g_print_wval + 2 + g_print_wrng + 2;
  if (len > col) { /* a long value or range: the help goes on the next line */
    while (len > 0 && row[len - 1] == ' ') row[--len] = 0;
    fprintf(f, "%s\n%*s%s\n", row, col, "", d->help);
  } else {
    fprintf(f, "%s%s\n", row, d->help);
  }
}

void cfg_print(const mbpo_config* c, FILE* f) {
  g_print_wkey = 3;
  g_print_wval = 5;
  g_print_wrng = 5;
  for (int i = 0; i < NDESC; i++) {
    char rng[256], val[CFG_STR_MAX + 32];
    range_text(&g_desc[i], rng, sizeof rng);
    cfg_format_value(c, &g_desc[i], val, sizeof val);
    int lk = (int)strlen(g_desc[i].key), lv = (int)strlen(val), lr = (int)strlen(rng);
    if (lk > g_print_wkey) g_print_wkey = lk;
    if (lv > g_print_wval && lv <= 20) g_print_wval = lv;
    if (lr > g_print_wrng && lr <= 24) g_print_wrng = lr;
  }
  fprintf(f, "  %-*s  %-*s  %-*s  %s", g_print_wkey, "key", g_print_wval, "value", g_print_wrng,
          "allowed", "help\n");
  visit_by_section(c, f, print_one);
}
