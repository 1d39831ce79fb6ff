/* csv.c: reading two numeric columns of a CSV file (csv.h). */
#include "csv.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "log.h"

/* Split line (modified in place) at commas into fields: surrounding blanks dropped, a double-quoted
 * field unquoted ("" inside is a quote). *fields grows as needed. Returns the field count. */
static int csv_split(char* line, char*** fields, int* cap) {
  int n = 0;
  char* p = line;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    char *start = p, *end;
    if (*p == '"') {
      char* w = p++;
      while (*p) {
        if (*p == '"') {
          if (p[1] == '"') {
            *w++ = '"';
            p += 2;
            continue;
          }
          p++;
          break;
        }
        *w++ = *p++;
      }
      end = w;
      while (*p && *p != ',') p++; /* anything after the closing quote is dropped */
    } else {
      while (*p && *p != ',') p++;
      end = p;
      while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
    }
    char sep = *p;
    *end = '\0';
    if (n == *cap) {
      int nc = *cap ? 2 * *cap : 64;
      char** nf = (char**)realloc(*fields, sizeof(char*) * (size_t)nc);
      if (!nf) mbpo_fatal("out of memory");
      *fields = nf;
      *cap = nc;
    }
    (*fields)[n++] = start;
    if (sep != ',') break;
    p++; /* past the comma (which *end = '\0' may have overwritten) */
  }
  return n;
}

/* A finite number filling the whole field, or NAN. */
static double csv_number(const char* s) {
  if (!s || !*s) return NAN;
  char* e;
  errno = 0;
  double v = strtod(s, &e);
  if (e == s || *e || !isfinite(v)) return NAN;
  return v;
}

/* Drop a line's end (\n, \r\n); returns 1 when the line had a \n. */
static int chomp(char* s, ssize_t* len) {
  int nl = 0;
  if (*len > 0 && s[*len - 1] == '\n') {
    s[--*len] = '\0';
    nl = 1;
  }
  if (*len > 0 && s[*len - 1] == '\r') s[--*len] = '\0';
  return nl;
}

typedef struct xy {
  double x, y;
  long row;
} xy;

static int cmp_xy(const void* a, const void* b) {
  const xy *p = (const xy*)a, *q = (const xy*)b;
  if (p->x != q->x) return p->x < q->x ? -1 : 1;
  return p->row < q->row ? -1 : p->row > q->row;
}

int csv_read_xy(const char* path, const char* xcol, const char* ycol, double** xo, double** yo,
                int* no, char* err, int errlen) {
  *xo = *yo = NULL;
  *no = 0;
  FILE* f = fopen(path, "r");
  if (!f) {
    mbpo_fmt(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  char* line = NULL;
  size_t lcap = 0;
  char** fields = NULL;
  int fcap = 0, ncol = 0, xi = -1, yi = -1, rc = -1;
  xy* pts = NULL;
  long npts = 0, pcap = 0, row = 0;
  ssize_t len;
  /* the header: the first line that is not blank */
  while ((len = getline(&line, &lcap, f)) >= 0) {
    row++;
    chomp(line, &len);
    char* h = line;
    if (row == 1 && (unsigned char)h[0] == 0xEF && (unsigned char)h[1] == 0xBB &&
        (unsigned char)h[2] == 0xBF)
      h += 3;
    if (strspn(h, " \t") == strlen(h)) continue;
    ncol = csv_split(h, &fields, &fcap);
    for (int i = 0; i < ncol; i++) {
      if (xi < 0 && strcmp(fields[i], xcol) == 0) xi = i;
      if (yi < 0 && strcmp(fields[i], ycol) == 0) yi = i;
    }
    if (xi < 0 || yi < 0) {
      char have[1024] = "";
      size_t used = 0;
      for (int i = 0; i < ncol && used + 4 < sizeof have; i++) {
        int w = snprintf(have + used, sizeof have - used, "%s%s", i ? ", " : "", fields[i]);
        if (w < 0) break;
        used += (size_t)w < sizeof have - used ? (size_t)w : sizeof have - used - 1;
      }
      mbpo_fmt(err, errlen, "%s has no column '%s' (its columns: %s)", path, xi < 0 ? xcol : ycol,
               have);
      goto done;
    }
    break;
  }
  if (ferror(f)) {
    mbpo_fmt(err, errlen, "cannot read %s: %s", path, strerror(errno));
    goto done;
  }
  if (ncol == 0) {
    mbpo_fmt(err, errlen, "%s is empty (no header line)", path);
    goto done;
  }
  while ((len = getline(&line, &lcap, f)) >= 0) {
    row++;
    int nl = chomp(line, &len);
    int nf = csv_split(line, &fields, &fcap);
    if (!nl && nf < ncol) continue; /* a last line still being written */
    double x = csv_number(xi < nf ? fields[xi] : NULL), y = csv_number(yi < nf ? fields[yi] : NULL);
    if (isnan(x) || isnan(y)) continue; /* not available */
    if (npts == pcap) {
      pcap = pcap ? 2 * pcap : 256;
      xy* np = (xy*)realloc(pts, sizeof(xy) * (size_t)pcap);
      if (!np) mbpo_fatal("out of memory");
      pts = np;
    }
    pts[npts++] = (xy){x, y, row};
  }
  if (ferror(f)) {
    mbpo_fmt(err, errlen, "cannot read %s: %s", path, strerror(errno));
    goto done;
  }
  if (npts > INT_MAX / 2) {
    mbpo_fmt(err, errlen, "%s: too many rows", path);
    goto done;
  }
  if (npts > 1) qsort(pts, (size_t)npts, sizeof *pts, cmp_xy);
  int n = 0;
  for (long i = 0; i < npts; i++) { /* a repeated x: the last row wins (sorted by row within x) */
    if (n > 0 && pts[n - 1].x == pts[i].x) pts[n - 1] = pts[i];
    else pts[n++] = pts[i];
  }
  if (n > 0) {
    *xo = (double*)malloc(sizeof(double) * (size_t)n);
    *yo = (double*)malloc(sizeof(double) * (size_t)n);
    if (!*xo || !*yo) mbpo_fatal("out of memory");
    for (int i = 0; i < n; i++) {
      (*xo)[i] = pts[i].x;
      (*yo)[i] = pts[i].y;
    }
  }
  *no = n;
  rc = 0;
done:
  free(pts);
  free(fields);
  free(line);
  fclose(f);
  return rc;
}
