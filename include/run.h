/* run.h: the run folder <run_dir>/<task>-<tag>-s<seed>/ with config.ini, progress.csv (one row per
 * epoch), model_train.csv (one row per model fit) and the live progress line on the terminal. */
#ifndef MBPO_RUN_H
#define MBPO_RUN_H

#include <stdio.h>

#include "config.h"

/** An open run folder. */
typedef struct run_folder {
  char path[4096];
  FILE* progress;
  FILE* model_train;
  int tty; /* stdout is a terminal: one live line; otherwise plain lines */
} run_folder;

/** The run folder path for a config: <run_dir>/<task>-<tag>-s<seed>. */
void run_path(const mbpo_config* c, char* out, int n);

/** Create the run folder (and parents), refusing one that already holds a progress.csv; write the
 *  resolved config.ini atomically. Returns 0, or -1 with err. */
int run_open(run_folder* r, const mbpo_config* c, char* err, int errlen);

/** Reopen an existing run folder (path) to continue it: progress.csv keeps its header and the first
 *  progress_rows rows, model_train.csv its header and first fit_rows rows (rows written after the
 *  checkpoint are dropped); both are then appended to. Returns 0, or -1 with err. */
int run_reopen(run_folder* r, const char* path, long progress_rows, long fit_rows, char* err,
               int errlen);

/** Close the files. */
void run_close(run_folder* r);

/** Write the CSV header (ncol names) of a file. */
void run_csv_header(FILE* f, int ncol, const char* const* names);

/** Write one CSV row of ncol numbers (integers print without a fraction) and flush. Returns 0, or
 *  -1 (errno set) when the row could not be written completely: the file is then cut back to where
 *  the row began, so that it never holds a partial row. */
int run_csv_row(FILE* f, int ncol, const double* v);

/** Write text (whole CSV lines) to f and flush. Returns 0, or -1 (errno set) when it could not be
 *  written completely: the file is then cut back to where the text began. */
int run_csv_text(FILE* f, const char* text);

/** Create the folder path and its parents (existing ones are fine). Returns 0, or -1 (errno set;
 *  ENOTDIR when path exists but is not a folder). */
int run_mkdir_p(const char* path);

/** Write a file atomically: to path.tmp, fsync, rename. Returns 0 or -1 (errno set). */
int run_write_atomic(const char* path, const void* data, size_t n);

/** Print a status line: on a terminal it overwrites the previous one (final = 1 ends it with a
 *  newline); otherwise it prints plain lines, only those with final = 1. A line also replaces a
 *  live line of run_live. */
void run_status(const run_folder* r, int final, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/** The population's live line: printed over the previous live or status line when stdout is a
 *  terminal (no newline; the next line of run_status replaces it), nothing otherwise. */
void run_live(const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif
