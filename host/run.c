/* run.c: run folder, CSV logs and the terminal progress line (run.h). */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

void run_path(const mbpo_config* c, char* out, int n) {
  snprintf(out, (size_t)n, "%s/%s-%s-s%ld", c->run_dir, c->task, c->tag, c->seed);
}

int run_mkdir_p(const char* path) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char* p = tmp + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
      *p = '/';
    }
  if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
  struct stat sb;
  if (stat(tmp, &sb) != 0) return -1;
  if (!S_ISDIR(sb.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

int run_write_atomic(const char* path, const void* data, size_t n) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) return -1;
  const char* p = (const char*)data;
  size_t left = n;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      unlink(tmp);
      errno = e;
      return -1;
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    int e = errno;
    unlink(tmp);
    errno = e;
    return -1;
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    errno = e;
    return -1;
  }
  return 0;
}

int run_open(run_folder* r, const mbpo_config* c, char* err, int errlen) {
  memset(r, 0, sizeof *r);
  run_path(c, r->path, sizeof r->path);
  char f[4200];
  snprintf(f, sizeof f, "%s/progress.csv", r->path);
  if (access(f, F_OK) == 0) {
    mbpo_fmt(err, errlen, "run folder %s already holds a run; choose another tag= or seed=", r->path);
    return -1;
  }
  if (run_mkdir_p(r->path) != 0) {
    mbpo_fmt(err, errlen, "cannot create run folder %s: %s", r->path, strerror(errno));
    return -1;
  }
  char* text = NULL;
  size_t len = 0;
  FILE* mem = open_memstream(&text, &len);
  if (!mem) mbpo_fatal("out of memory");
  cfg_write_ini(c, mem);
  fclose(mem);
  snprintf(f, sizeof f, "%s/config.ini", r->path);
  int rc = run_write_atomic(f, text, len);
  free(text);
  if (rc != 0) {
    mbpo_fmt(err, errlen, "cannot write %s: %s", f, strerror(errno));
    return -1;
  }
  snprintf(f, sizeof f, "%s/progress.csv", r->path);
  r->progress = fopen(f, "w");
  snprintf(f, sizeof f, "%s/model_train.csv", r->path);
  r->model_train = fopen(f, "w");
  if (!r->progress || !r->model_train) {
    mbpo_fmt(err, errlen, "cannot write in %s: %s", r->path, strerror(errno));
    run_close(r);
    return -1;
  }
  r->tty = isatty(STDOUT_FILENO);
  return 0;
}

/* Keep the header and the first rows lines of a CSV file, then open it for appending. */
static FILE* truncate_csv(const char* path, long rows, char* err, int errlen) {
  FILE* f = fopen(path, "r");
  if (!f) {
    mbpo_fmt(err, errlen, "cannot read %s: %s", path, strerror(errno));
    return NULL;
  }
  long keep = 0, lines = 0;
  int ch;
  while (lines < rows + 1 && (ch = fgetc(f)) != EOF) {
    keep++;
    if (ch == '\n') lines++;
  }
  fclose(f);
  /* Fewer rows than the checkpoint expects: rows lost to failed writes (a full disk; they were
   * warned about then). The run itself is whole, so it goes on. */
  if (lines < rows + 1 && rows > 0)
    mbpo_warn("%s has %ld rows, the checkpoint expects %ld (rows lost to failed writes); continuing",
              path, lines ? lines - 1 : 0, rows);
  if (truncate(path, keep) != 0) {
    mbpo_fmt(err, errlen, "cannot truncate %s: %s", path, strerror(errno));
    return NULL;
  }
  f = fopen(path, "a");
  if (!f) mbpo_fmt(err, errlen, "cannot append to %s: %s", path, strerror(errno));
  return f;
}

int run_reopen(run_folder* r, const char* path, long progress_rows, long fit_rows, char* err,
               int errlen) {
  memset(r, 0, sizeof *r);
  snprintf(r->path, sizeof r->path, "%s", path);
  char f[4200];
  snprintf(f, sizeof f, "%s/progress.csv", path);
  r->progress = truncate_csv(f, progress_rows, err, errlen);
  if (!r->progress) return -1;
  snprintf(f, sizeof f, "%s/model_train.csv", path);
  r->model_train = truncate_csv(f, fit_rows, err, errlen);
  if (!r->model_train) {
    run_close(r);
    return -1;
  }
  r->tty = isatty(STDOUT_FILENO);
  return 0;
}

void run_close(run_folder* r) {
  if (r->progress) fclose(r->progress);
  if (r->model_train) fclose(r->model_train);
  r->progress = r->model_train = NULL;
}

void run_csv_header(FILE* f, int ncol, const char* const* names) {
  for (int i = 0; i < ncol; i++) fprintf(f, "%s%s", i ? "," : "", names[i]);
  fputc('\n', f);
  fflush(f);
}

/* After a failed write: drop what stdio still holds and cut the file back to start (errno kept). */
static int cut_back(FILE* f, long start) {
  int e = errno ? errno : EIO;
  __fpurge(f);
  clearerr(f);
  if (start >= 0 && ftruncate(fileno(f), start) == 0) (void)fseek(f, start, SEEK_SET);
  clearerr(f);
  errno = e;
  return -1;
}

int run_csv_row(FILE* f, int ncol, const double* v) {
  long start = ftell(f);
  for (int i = 0; i < ncol; i++) {
    if (i) fputc(',', f);
    double x = v[i];
    if (isfinite(x) && x == floor(x) && fabs(x) < 1e15) fprintf(f, "%.0f", x);
    else if (isnan(x)) fputs("", f); /* not available */
    else fprintf(f, "%.9g", x);
  }
  fputc('\n', f);
  if (fflush(f) == 0 && !ferror(f)) return 0;
  return cut_back(f, start);
}

int run_csv_text(FILE* f, const char* text) {
  long start = ftell(f);
  fputs(text, f);
  if (fflush(f) == 0 && !ferror(f)) return 0;
  return cut_back(f, start);
}

void run_status(const run_folder* r, int final, const char* fmt, ...) {
  va_list ap;
  if (!r->tty && !final) return;
  flockfile(stdout); /* the runs of a population print from several threads */
  if (r->tty) fputs("\r\033[K", stdout);
  else mbpo_live_clear();
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  if (final || !r->tty) fputc('\n', stdout);
  fflush(stdout);
  mbpo_live_set(r->tty && !final);
  funlockfile(stdout);
}

void run_live(const char* fmt, ...) {
  static int tty = -1;
  if (tty < 0) tty = isatty(STDOUT_FILENO);
  if (!tty) return;
  va_list ap;
  flockfile(stdout);
  fputs("\r\033[K", stdout);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
  mbpo_live_set(1);
  funlockfile(stdout);
}
