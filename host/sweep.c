/* sweep.c: sweep lists and their expansion into a population of configurations (sweep.h). */
#include "sweep.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "run.h"

#define SCHEDULE "rollout_schedule"
#define RUN_LABEL_MAX 600

/* The four settings the alias sets, in the official [min_epoch, max_epoch, min_length, max_length]
 * order. */
static const char* const g_schedule_keys[4] = {"rollout.min_epoch", "rollout.max_epoch",
                                                "rollout.min_length", "rollout.max_length"};

/* Settings a population cannot vary, and why: its runs share every tensor shape, step in lockstep
 * and share one process. */
static const struct {
  const char* key;
  const char* why;
} g_fixed[] = {
    {"task", "is one per process"},
    {"device", "is one per process"},
    {"threads", "is one per process"},
    {"run_dir", "is one per process"},
    {"tag", "is one per process (each run's tag gets its swept values appended)"},
    {"model_dir", "is one per process"},
    {"tf32", "is one per process"},
    {"model.ensemble", "changes tensor shapes, which the runs of a population share"},
    {"model.elites", "changes tensor shapes, which the runs of a population share"},
    {"model.hidden", "changes tensor shapes, which the runs of a population share"},
    {"model.layers", "changes tensor shapes, which the runs of a population share"},
    {"model.batch", "changes tensor shapes, which the runs of a population share"},
    {"model.weight_decay", "goes with model.layers, which the runs of a population share"},
    {"sac.batch", "changes tensor shapes, which the runs of a population share"},
    {"sac.hidden", "changes tensor shapes, which the runs of a population share"},
    {"sac.layers", "changes tensor shapes, which the runs of a population share"},
    {"rollout.batch", "changes tensor shapes, which the runs of a population share"},
    {"real_pool_size", "changes tensor shapes, which the runs of a population share"},
    {"sac.updates", "changes the loop's lockstep, which the runs of a population share"},
    {"epoch_length", "changes the loop's lockstep, which the runs of a population share"},
    {"model.train_freq", "changes the loop's lockstep, which the runs of a population share"},
};

/* ---- small helpers ------------------------------------------------------------------------ */

static char* dup_text(const char* s) {
  size_t n = strlen(s) + 1;
  char* d = (char*)malloc(n);
  if (!d) mbpo_fatal("out of memory");
  return memcpy(d, s, n);
}

/* s without leading and trailing white space, into buf; -1 when it does not fit. */
static int trim_into(const char* s, size_t len, char* buf, size_t n) {
  while (len && isspace((unsigned char)*s)) s++, len--;
  while (len && isspace((unsigned char)s[len - 1])) len--;
  if (len + 1 > n) return -1;
  memcpy(buf, s, len);
  buf[len] = 0;
  return 0;
}

/* The same score as cfg_closest_key's: whole-key distance, or the last components' plus one. */
static int key_distance(const char* key, const char* k) {
  const char* a = strrchr(key, '.');
  const char* b = strrchr(k, '.');
  int whole = cfg_edit_distance(key, k);
  int tail = cfg_edit_distance(a ? a + 1 : key, b ? b + 1 : k) + 1;
  return tail < whole ? tail : whole;
}

/* The valid sweep key closest to key: a setting, the alias or zip. */
static const char* closest_sweep_key(const char* key) {
  const char* best = cfg_closest_key(key);
  int d = key_distance(key, best);
  if (key_distance(key, SCHEDULE) < d) best = SCHEDULE, d = key_distance(key, SCHEDULE);
  if (key_distance(key, "zip") < d) best = "zip";
  return best;
}

static int is_schedule(const char* key) { return strcmp(key, SCHEDULE) == 0; }

/* 1 when the list with this key sets the setting cfg_key. */
static int list_sets(const char* key, const char* cfg_key) {
  if (!is_schedule(key)) return strcmp(key, cfg_key) == 0;
  for (int i = 0; i < 4; i++)
    if (strcmp(g_schedule_keys[i], cfg_key) == 0) return 1;
  return 0;
}

/* ---- building a sweep ----------------------------------------------------------------------- */

void sweep_init(sweep_spec* s) { memset(s, 0, sizeof *s); }

static void free_list(sweep_list* l) {
  for (int i = 0; i < l->n; i++) free(l->values[i]);
  free(l->values);
  l->values = NULL;
  l->n = 0;
}

void sweep_free(sweep_spec* s) {
  for (int i = 0; i < s->nlist; i++) free_list(&s->list[i]);
  sweep_init(s);
}

/* Whether key may be swept: 0, or -1 with the reason in err. */
static int check_sweepable(const char* key, char* err, int errlen) {
  if (is_schedule(key)) return 0;
  const cfg_desc* d = cfg_find(key);
  if (!d) {
    mbpo_fmt(err, errlen, "unknown sweep key 'sweep.%s' (did you mean 'sweep.%s'?)", key,
             closest_sweep_key(key));
    return -1;
  }
  for (size_t i = 0; i < sizeof g_fixed / sizeof g_fixed[0]; i++)
    if (strcmp(g_fixed[i].key, key) == 0) {
      mbpo_fmt(err, errlen,
               "sweep.%s: %s %s, so it cannot be swept; run a separate command for each value",
               key, key, g_fixed[i].why);
      return -1;
    }
  if (d->kind != CFG_INT && d->kind != CFG_FLT && d->kind != CFG_BOOL && d->kind != CFG_ENUM) {
    mbpo_fmt(err, errlen, "sweep.%s: only number, boolean and choice settings can be swept", key);
    return -1;
  }
  return 0;
}

/* Parse one item of key's list into its canonical text (out, size n). 0 or -1 with err. */
static int canonical_item(const char* key, const char* item, int index, char* out, int n,
                          char* err, int errlen) {
  mbpo_config scratch;
  char msg[600];
  cfg_defaults(&scratch);
  if (!is_schedule(key)) {
    if (cfg_set(&scratch, key, item, msg, sizeof msg)) {
      mbpo_fmt(err, errlen, "sweep.%s item %d: %s", key, index + 1, msg);
      return -1;
    }
    cfg_format_value(&scratch, cfg_find(key), out, n);
    return 0;
  }
  /* min_epoch:max_epoch:min_length:max_length */
  const char* s = item;
  int len = 0;
  out[0] = 0;
  for (int k = 0; k < 4; k++) {
    const char* colon = strchr(s, ':');
    if ((k < 3) != (colon != NULL)) {
      mbpo_fmt(err, errlen,
               "sweep." SCHEDULE " item %d '%s' is not min_epoch:max_epoch:min_length:max_length",
               index + 1, item);
      return -1;
    }
    char part[64], v[64];
    size_t plen = colon ? (size_t)(colon - s) : strlen(s);
    if (trim_into(s, plen, part, sizeof part)) {
      mbpo_fmt(err, errlen, "sweep." SCHEDULE " item %d: a number is too long", index + 1);
      return -1;
    }
    if (cfg_set(&scratch, g_schedule_keys[k], part, msg, sizeof msg)) {
      mbpo_fmt(err, errlen, "sweep." SCHEDULE " item %d '%s': %s", index + 1, item, msg);
      return -1;
    }
    cfg_format_value(&scratch, cfg_find(g_schedule_keys[k]), v, sizeof v);
    len += snprintf(out + len, (size_t)(n - len > 0 ? n - len : 0), "%s%s", k ? ":" : "", v);
    if (colon) s = colon + 1;
  }
  return 0;
}

int sweep_add(sweep_spec* s, const char* key, const char* value, char* err, int errlen) {
  if (!key) key = "";
  if (!value) value = "";
  if (strncmp(key, "sweep.", 6) == 0) key += 6;
  if (strcmp(key, "zip") == 0) {
    if (strlen(value) >= sizeof s->zip) {
      mbpo_fmt(err, errlen, "sweep.zip is too long (at most %d characters)", (int)sizeof s->zip - 1);
      return -1;
    }
    snprintf(s->zip, sizeof s->zip, "%s", value);
    return 0;
  }
  if (check_sweepable(key, err, errlen)) return -1;
  if (strlen(key) >= sizeof s->list[0].key) { /* cannot happen for a key of the table */
    mbpo_fmt(err, errlen, "sweep key '%s' is too long", key);
    return -1;
  }
  /* another key setting the same field (rollout.max_length and rollout_schedule) */
  int slot = s->nlist;
  for (int i = 0; i < s->nlist; i++) {
    if (strcmp(s->list[i].key, key) == 0) {
      slot = i;
      continue;
    }
    for (int k = 0; k < cfg_count(); k++)
      if (list_sets(key, cfg_at(k)->key) && list_sets(s->list[i].key, cfg_at(k)->key)) {
        mbpo_fmt(err, errlen, "sweep.%s and sweep.%s both set %s: sweep it once", s->list[i].key,
                 key, cfg_at(k)->key);
        return -1;
      }
  }
  if (slot == s->nlist && s->nlist == SWEEP_MAX_KEYS) {
    mbpo_fmt(err, errlen, "sweep.%s: at most %d keys can be swept", key, SWEEP_MAX_KEYS);
    return -1;
  }
  sweep_list l;
  memset(&l, 0, sizeof l);
  snprintf(l.key, sizeof l.key, "%s", key);
  l.values = (char**)calloc(SWEEP_MAX_RUNS, sizeof *l.values);
  if (!l.values) mbpo_fatal("out of memory");
  const char* seps = is_schedule(key) ? ";," : ",";
  const char* p = value;
  for (;;) {
    size_t len = strcspn(p, seps);
    char item[256], canon[256];
    if (trim_into(p, len, item, sizeof item)) {
      mbpo_fmt(err, errlen, "sweep.%s item %d is too long", key, l.n + 1);
      goto fail;
    }
    if (!item[0]) {
      mbpo_fmt(err, errlen, "sweep.%s = '%s': item %d is empty (expected values separated by %s)",
               key, value, l.n + 1, is_schedule(key) ? "';' or ','" : "','");
      goto fail;
    }
    if (l.n == SWEEP_MAX_RUNS) {
      mbpo_fmt(err, errlen, "sweep.%s has more than %d values (a population has at most %d runs)",
               key, SWEEP_MAX_RUNS, SWEEP_MAX_RUNS);
      goto fail;
    }
    if (canonical_item(key, item, l.n, canon, sizeof canon, err, errlen)) goto fail;
    l.values[l.n++] = dup_text(canon);
    if (!p[len]) break;
    p += len + 1;
  }
  if (slot < s->nlist) free_list(&s->list[slot]);
  else s->nlist++;
  s->list[slot] = l;
  return 0;
fail:
  free_list(&l);
  return -1;
}

const char* sweep_setter(const sweep_spec* s, const char* cfg_key) {
  for (int i = 0; i < s->nlist; i++)
    if (list_sets(s->list[i].key, cfg_key)) return s->list[i].key;
  return NULL;
}

/* ---- expansion ---------------------------------------------------------------------------- */

/* Resolve sweep.zip into group[i] per list (-1 = its own factor). 0 or -1 with err. */
static int resolve_zip(const sweep_spec* s, int* group, char* err, int errlen) {
  for (int i = 0; i < s->nlist; i++) group[i] = -1;
  char swept[512] = "";
  int len = 0;
  for (int i = 0; i < s->nlist && len < (int)sizeof swept; i++)
    len += snprintf(swept + len, sizeof swept - (size_t)len, "%s%s", i ? ", " : "", s->list[i].key);
  const char* p = s->zip;
  int g = 0, first_in_group = -1;
  while (*p) {
    size_t n = strcspn(p, ",;");
    char name[128];
    if (trim_into(p, n, name, sizeof name)) name[0] = 0;
    const char* k = strncmp(name, "sweep.", 6) == 0 ? name + 6 : name;
    if (k[0]) {
      int idx = -1;
      for (int i = 0; i < s->nlist; i++)
        if (strcmp(s->list[i].key, k) == 0) idx = i;
      if (idx < 0) {
        mbpo_fmt(err, errlen, "sweep.zip names '%s', which is not swept (swept: %s)", k,
                 s->nlist ? swept : "none");
        return -1;
      }
      if (group[idx] >= 0) {
        mbpo_fmt(err, errlen, "sweep.zip names '%s' twice", k);
        return -1;
      }
      if (first_in_group < 0) first_in_group = idx;
      if (s->list[idx].n != s->list[first_in_group].n) {
        mbpo_fmt(err, errlen,
                 "sweep.zip: sweep.%s has %d values but sweep.%s has %d; zipped keys vary together "
                 "and need lists of equal length",
                 s->list[first_in_group].key, s->list[first_in_group].n, k, s->list[idx].n);
        return -1;
      }
      group[idx] = g;
    }
    p += n;
    if (*p == ';') g++, first_in_group = -1;
    if (*p) p++;
  }
  return 0;
}

/* "seed=1, sac.lr=0.001": the swept values of a run (idx[i] = the value index of list i). */
static void run_label(const sweep_spec* s, const int* idx, char* buf, int n) {
  int len = 0;
  buf[0] = 0;
  for (int i = 0; i < s->nlist && len < n; i++)
    len += snprintf(buf + len, (size_t)(n - len), "%s%s=%s", i ? ", " : "", s->list[i].key,
                    s->list[i].values[idx[i]]);
}

/* Append ch to the tag text (size n); what does not fit is dropped: the length check catches it. */
static void tag_append(char* tag, int* len, int n, char ch) {
  if (*len < n - 1) tag[(*len)++] = ch, tag[*len] = 0;
}

/* Apply the values idx of every list to c and append them to its tag. 0 or -1 with err. */
static int apply_run(const sweep_spec* s, const int* idx, mbpo_config* c, char* err, int errlen) {
  char tag[4 * CFG_STR_MAX], msg[600];
  snprintf(tag, sizeof tag, "%s", c->tag);
  int len = (int)strlen(tag);
  for (int i = 0; i < s->nlist; i++) {
    const sweep_list* l = &s->list[i];
    const char* v = l->values[idx[i]];
    if (is_schedule(l->key)) {
      char part[64];
      const char* p = v;
      for (int k = 0; k < 4; k++) {
        size_t n = strcspn(p, ":");
        snprintf(part, sizeof part, "%.*s", (int)n, p);
        if (cfg_set(c, g_schedule_keys[k], part, msg, sizeof msg)) goto bad_value;
        p += n + (p[n] != 0);
      }
    } else if (cfg_set(c, l->key, v, msg, sizeof msg)) {
      goto bad_value;
    }
    if (strcmp(l->key, "seed") == 0) continue; /* the folder has -s<seed> already */
    tag_append(tag, &len, (int)sizeof tag, '-');
    for (const char* k = l->key; *k; k++) tag_append(tag, &len, (int)sizeof tag, *k == '.' ? '_' : *k);
    tag_append(tag, &len, (int)sizeof tag, '_');
    for (const char* ch = v; *ch; ch++)
      tag_append(tag, &len, (int)sizeof tag,
                 (isalnum((unsigned char)*ch) || strchr(".+-", *ch)) ? *ch : '_');
  }
  if (strlen(tag) > CFG_STR_MAX - 1) {
    mbpo_fmt(err, errlen, "its tag '%.60s...' is longer than %d characters", tag, CFG_STR_MAX - 1);
    return -1;
  }
  if (cfg_set(c, "tag", tag, msg, sizeof msg)) {
    mbpo_fmt(err, errlen, "%s", msg);
    return -1;
  }
  return 0;
bad_value: /* the values were checked by sweep_add: only a corrupted spec gets here */
  mbpo_fmt(err, errlen, "%s", msg);
  return -1;
}

int sweep_expand(const sweep_spec* s, const mbpo_config* base, mbpo_config** cfgs, int* n,
                 char* err, int errlen) {
  *cfgs = NULL;
  *n = 0;
  int group[SWEEP_MAX_KEYS];
  if (resolve_zip(s, group, err, errlen)) return -1;
  /* factors: each unzipped list, and each zip group where its first key was given */
  int factor_of[SWEEP_MAX_KEYS], factor_len[SWEEP_MAX_KEYS], nfactor = 0;
  for (int i = 0; i < s->nlist; i++) {
    int f = -1;
    for (int j = 0; j < i && group[i] >= 0; j++)
      if (group[j] == group[i]) f = factor_of[j];
    if (f < 0) f = nfactor, factor_len[nfactor++] = s->list[i].n;
    factor_of[i] = f;
  }
  double runs = 1; /* exact up to 2^53, and no overflow beyond */
  char sizes[256] = "";
  int slen = 0;
  for (int f = 0; f < nfactor; f++) {
    runs *= factor_len[f];
    if (slen < (int)sizeof sizes)
      slen += snprintf(sizes + slen, sizeof sizes - (size_t)slen, "%s%d", f ? " x " : "",
                       factor_len[f]);
  }
  if (runs > SWEEP_MAX_RUNS) {
    mbpo_fmt(err, errlen, "the sweep makes %.15g runs (%s); a population has at most %d", runs,
             sizes, SWEEP_MAX_RUNS);
    return -1;
  }
  long total = (long)runs;
  mbpo_config* out = (mbpo_config*)malloc((size_t)total * sizeof *out);
  if (!out) mbpo_fatal("out of memory");
  for (int r = 0; r < (int)total; r++) {
    int fidx[SWEEP_MAX_KEYS], idx[SWEEP_MAX_KEYS];
    int rest = r;
    for (int f = nfactor - 1; f >= 0; f--) { /* the last factor varies fastest */
      fidx[f] = rest % factor_len[f];
      rest /= factor_len[f];
    }
    for (int i = 0; i < s->nlist; i++) idx[i] = fidx[factor_of[i]];
    char label[RUN_LABEL_MAX], msg[1200];
    run_label(s, idx, label, sizeof label);
    out[r] = *base;
    if (apply_run(s, idx, &out[r], msg, sizeof msg) || cfg_validate(&out[r], msg, sizeof msg)) {
      if (s->nlist) mbpo_fmt(err, errlen, "sweep run %d of %ld (%s): %s", r + 1, total, label, msg);
      else mbpo_fmt(err, errlen, "%s", msg);
      free(out);
      return -1;
    }
    /* the same folder as an earlier run: a value repeated in a list */
    char path[2 * CFG_STR_MAX + 64], other[2 * CFG_STR_MAX + 64];
    run_path(&out[r], path, sizeof path);
    for (int q = 0; q < r; q++) {
      run_path(&out[q], other, sizeof other);
      if (strcmp(path, other) != 0) continue;
      mbpo_fmt(err, errlen,
               "sweep runs %d and %d (%s) would share the run folder %s: is a value repeated in "
               "a sweep list?",
               q + 1, r + 1, label, path);
      free(out);
      return -1;
    }
  }
  *cfgs = out;
  *n = (int)total;
  return 0;
}

/* ---- listing -------------------------------------------------------------------------------- */

void sweep_print(const mbpo_config* cfgs, int n, FILE* f) {
  if (n < 1) return;
  /* the settings in which the runs differ (the tag shows in the folder) */
  int differ[256] = {0};
  int ndesc = cfg_count() < 256 ? cfg_count() : 256;
  char a[CFG_STR_MAX + 32], b[CFG_STR_MAX + 32];
  for (int k = 0; k < ndesc; k++) {
    if (strcmp(cfg_at(k)->key, "tag") == 0) continue;
    cfg_format_value(&cfgs[0], cfg_at(k), a, sizeof a);
    for (int r = 1; r < n && !differ[k]; r++) {
      cfg_format_value(&cfgs[r], cfg_at(k), b, sizeof b);
      differ[k] = strcmp(a, b) != 0;
    }
  }
  int width = 0;
  char path[2 * CFG_STR_MAX + 64];
  for (int r = 0; r < n; r++) {
    run_path(&cfgs[r], path, sizeof path);
    if ((int)strlen(path) > width) width = (int)strlen(path);
  }
  fprintf(f, "\npopulation: %d run%s (the settings above are the first run's)\n", n,
          n == 1 ? "" : "s");
  for (int r = 0; r < n; r++) {
    run_path(&cfgs[r], path, sizeof path);
    fprintf(f, "  %-*s", width, path);
    for (int k = 0; k < ndesc; k++) {
      if (!differ[k]) continue;
      cfg_format_value(&cfgs[r], cfg_at(k), a, sizeof a);
      fprintf(f, "  %s=%s", cfg_at(k)->key, a);
    }
    fputc('\n', f);
  }
}
