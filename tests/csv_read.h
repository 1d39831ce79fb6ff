/* csv_read.h: a small CSV reader for the tests that compare run folders (progress.csv,
 * model_train.csv): a header line and up to MAXROW rows of comma-separated cells, and
 * csv_compare, which compares two such files column by column by header name. */
#ifndef MBPO_CSV_READ_H
#define MBPO_CSV_READ_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAXROW = 64, MAXCOL = 64 };
typedef struct csv {
  int nrow, ncol;               /* data rows, header columns */
  char* head[MAXCOL];
  char* cell[MAXROW][MAXCOL];
  int rcol[MAXROW];             /* columns in each row */
  char* text;
} csv;

static int split(char* line, char** out) {
  int n = 0;
  for (char* p = line;;) {
    if (n < MAXCOL) out[n] = p;
    n++;
    char* c = strchr(p, ',');
    if (!c) break;
    *c = 0;
    p = c + 1;
  }
  return n;
}

/* Read path; 0 or -1 (missing or malformed). */
static int csv_read(const char* path, csv* t) {
  memset(t, 0, sizeof *t);
  FILE* f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  t->text = (char*)calloc(1, (size_t)n + 1);
  if (fread(t->text, 1, (size_t)n, f) != (size_t)n) n = 0;
  fclose(f);
  char* save = NULL;
  char* line = strtok_r(t->text, "\n", &save);
  if (!line) return -1;
  t->ncol = split(line, t->head);
  while ((line = strtok_r(NULL, "\n", &save)) && t->nrow < MAXROW) {
    t->rcol[t->nrow] = split(line, t->cell[t->nrow]);
    t->nrow++;
  }
  return t->ncol <= MAXCOL ? 0 : -1;
}

static void csv_free(csv* t) { free(t->text); }

static int col(const csv* t, const char* name) {
  for (int i = 0; i < t->ncol; i++)
    if (strcmp(t->head[i], name) == 0) return i;
  return -1;
}

static inline double num(const csv* t, int r, const char* name) {
  int c = col(t, name);
  if (c < 0 || r >= t->nrow || c >= t->rcol[r]) return NAN;
  return atof(t->cell[r][c]);
}

/* The timing columns of progress.csv and model_train.csv: wall-clock measurements, different in any
 * two runs. Every other column is compared, a column added later included. */
static const char* const csv_timing_cols[] = {"wall_time_s", "epoch_time_s", "model_time_s", "updates_per_s",
                                              "env_steps_per_s", "seconds", NULL};

static inline int csv_in_list(const char* const* list, const char* s) {
  for (int i = 0; list && list[i]; i++)
    if (strcmp(list[i], s) == 0) return 1;
  return 0;
}

/* Compare the CSV files pa and pb by header name: the same columns in the same order and the same
 * number of rows (or, with nrows >= 0, their first nrows rows, which both must have); every
 * column but the timing ones (csv_timing_cols) equal as text; with tol > 0 the columns not named in
 * `exact` may instead differ by |a - b| <= tol * max(1, |b|). The first differences are printed to
 * stderr after label (NULL: nothing printed, for files expected to differ). Returns the number of
 * differing cells, -1 when a file is missing or the headers or row counts differ. *maxrel (NULL:
 * not wanted) gets the largest relative difference |a - b| / max(1, |b|) over the compared numeric
 * cells, 0 when they are equal. */
static inline int csv_compare(const char* label, const char* pa, const char* pb, int nrows, double tol,
                              const char* const* exact, double* maxrel) {
  csv x, y;
  int ra = csv_read(pa, &x), rb = csv_read(pb, &y);
  if (maxrel) *maxrel = 0;
  if (ra || rb) {
    fprintf(stderr, "  %s: cannot read %s\n", label ? label : "csv_compare", ra ? pa : pb);
    if (!ra) csv_free(&x);
    if (!rb) csv_free(&y);
    return -1;
  }
  int bad = x.ncol != y.ncol || x.ncol == 0;
  for (int c = 0; !bad && c < x.ncol; c++) bad = strcmp(x.head[c], y.head[c]) != 0;
  if (bad && label) fprintf(stderr, "  %s: the headers differ\n", label);
  int n = nrows >= 0 ? nrows : x.nrow;
  if (!bad && (nrows < 0 ? x.nrow != y.nrow : (x.nrow < nrows || y.nrow < nrows))) {
    if (label)
      fprintf(stderr, "  %s: %d rows in %s, %d in %s (want %s)\n", label, x.nrow, pa, y.nrow, pb,
            nrows < 0 ? "the same" : "at least the compared ones");
    bad = 1;
  }
  int d = 0;
  for (int r = 0; !bad && r < n; r++) {
    if (x.rcol[r] != x.ncol || y.rcol[r] != y.ncol) {
      if (label) fprintf(stderr, "  %s: row %d has %d and %d cells, the header %d\n", label, r, x.rcol[r], y.rcol[r], x.ncol);
      bad = 1;
      break;
    }
    for (int c = 0; c < x.ncol; c++) {
      if (csv_in_list(csv_timing_cols, x.head[c])) continue;
      const char *a = x.cell[r][c], *b = y.cell[r][c];
      char *ea, *eb;
      double va = strtod(a, &ea), vb = strtod(b, &eb);
      int numeric = ea != a && !*ea && eb != b && !*eb;
      double rel = numeric ? fabs(va - vb) / (fabs(vb) > 1 ? fabs(vb) : 1) : 0;
      if (numeric && rel != rel) rel = (va != va && vb != vb) ? 0 : INFINITY; /* NaN */
      if (maxrel && numeric && rel > *maxrel) *maxrel = rel;
      int same = strcmp(a, b) == 0 || (tol > 0 && numeric && !csv_in_list(exact, x.head[c]) && rel <= tol);
      if (!same && label && d < 8) fprintf(stderr, "  %s: row %d %s: %s vs %s\n", label, r, x.head[c], a, b);
      d += !same;
    }
  }
  csv_free(&x);
  csv_free(&y);
  return bad ? -1 : d;
}

#endif
