/* csv.h: reading two numeric columns of a CSV file with a header line (progress.csv and the like),
 * for `mbpo plot` and `mbpo summary`. Writing CSV files is run.h's. */
#ifndef MBPO_CSV_H
#define MBPO_CSV_H

/** Read columns xcol and ycol of a CSV file with a header line (commas; optional double quotes,
 *  surrounding blanks, CRLF line ends and a UTF-8 BOM are accepted; a last line without its newline
 *  and with too few fields, one still being written, is skipped). Rows whose x or y is empty or not
 *  a finite number are skipped; the points come back sorted by x, a repeated x keeping the last
 *  row. *x and *y are malloc'ed (NULL when *n = 0). Returns 0, or -1 with err (unreadable file, no
 *  header, missing column: the message lists the columns there are). */
int csv_read_xy(const char* path, const char* xcol, const char* ycol, double** x, double** y,
                int* n, char* err, int errlen);

#endif
