/* csv_read.h: a small CSV reader for the tests that compare run folders (progress.csv,
 * model_train.csv): a header line and up to MAXROW rows of comma-separated cells. */
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

#endif
