/* npz.h: NumPy .npz archives (a zip of .npy arrays), the checkpoint format.
 *
 * Writing: an in-memory list of arrays, then one streaming pass into "<path>.tmp" (fsync, rename),
 * so a checkpoint either appears whole or not at all:
 *
 *   npz_writer* w = npz_begin();
 *   npz_add_f32(w, "q_params", q, 1, &n);            // stored as "q_params.npy"
 *   npz_add_ref(w, "pool_obs", obs, NPY_F32, 2, sh); // large buffer: borrowed, not copied
 *   if (npz_finish(w, "runs/x/ckpt.npz", err, sizeof err) != 0) ...   // frees w either way
 *
 * Format: PKZIP 2.0 / ZIP64 (APPNOTE 6.3). Each entry is raw-deflate compressed (method 8; level 0
 * gives method 0, stored) with its CRC-32, a local header (sizes and CRC filled in after the data;
 * no data descriptors), then the central directory and the end record. ZIP64 is used only where
 * needed, as Python's zipfile does: a central ZIP64 extra holds the fields that reach 0xFFFFFFFF
 * (sizes, offset), a local one both sizes when the entry may reach 4 GiB (its size or deflate's
 * bound), and the ZIP64 end record + locator come when the count reaches 0xFFFF or the directory's
 * offset or size 0xFFFFFFFF; numpy.load opens every archive. Timestamps are fixed (1980-01-01
 * 00:00), so the same arrays always give the same bytes.
 *
 * Reading: npz_open reads the central directory (ZIP64 aware) and checks it against the file;
 * npz_get reads one entry (stored or deflate), checks its sizes and CRC-32 and parses it with
 * npy_parse. Malformed input of any kind gives -1 / NULL and a reason, never a crash; allocations
 * are bounded by the archive's size (an entry may not claim to inflate beyond deflate's maximum
 * ratio), so a decompression bomb is refused before anything is allocated. */
#ifndef MBPO_NPZ_H
#define MBPO_NPZ_H

#include <stddef.h>

#include "npy.h"

/** Longest entry name accepted by the writer and the reader, in bytes, ".npy" included. */
#define NPZ_NAME_MAX 1024

/** Compression level "fast": deflate restricted to runs (zlib level 1, strategy Z_RLE). On float
 *  data it compresses as well as levels 1-9 (zero runs, the skewed exponent bytes) at about three
 *  times the speed of level 1; the output is ordinary deflate. The default. */
#define NPZ_FAST (-1)

/** Compression level of npz_begin. */
#define NPZ_DEFAULT_LEVEL NPZ_FAST

/** An archive being built (opaque). */
typedef struct npz_writer npz_writer;

/** An archive open for reading (opaque). */
typedef struct npz_archive npz_archive;

/** Start an empty archive with NPZ_DEFAULT_LEVEL. Returns NULL only when out of memory. */
npz_writer* npz_begin(void);

/** Set the compression of the entries added from now on: NPZ_FAST (the default), 0 = stored
 *  (method 0, no compression), 1..9 = zlib deflate level (method 8). Returns 0, or -1 for another
 *  value. */
int npz_set_level(npz_writer* w, int level);

/** Add an array under name (stored as "<name>.npy"), copying its data (count = product of shape;
 *  ndim 0 is a scalar; data may be NULL when count is 0). type is an npy_type; ndim
 *  0..NPY_MAX_DIMS, each dimension < 2^40. Returns 0, or -1 for an invalid name (empty, too long),
 *  type or shape or when out of memory; the error sticks to the writer, and npz_finish then fails
 *  with its reason (as it does for two arrays of the same name). */
int npz_add(npz_writer* w, const char* name, const void* data, int type, int ndim, const long* shape);

/** Like npz_add, but borrows data instead of copying it: data must stay valid and unchanged until
 *  npz_finish returns. Use it for large buffers (replay pools). */
int npz_add_ref(npz_writer* w, const char* name, const void* data, int type, int ndim,
                const long* shape);

/** npz_add for a float32 array. */
int npz_add_f32(npz_writer* w, const char* name, const float* data, int ndim, const long* shape);

/** npz_add for an int32 array. */
int npz_add_i32(npz_writer* w, const char* name, const int* data, int ndim, const long* shape);

/** npz_add for a uint8 array. */
int npz_add_u8(npz_writer* w, const char* name, const unsigned char* data, int ndim,
               const long* shape);

/** npz_add for a float64 array. */
int npz_add_f64(npz_writer* w, const char* name, const double* data, int ndim, const long* shape);

/** npz_add for an int64 array. */
int npz_add_i64(npz_writer* w, const char* name, const long long* data, int ndim,
                const long* shape);

/** npz_add of a 0-d float64 scalar (counters, hyperparameters). */
int npz_add_scalar(npz_writer* w, const char* name, double value);

/** Write the archive atomically: stream it to "<path>.tmp", fsync, rename over path (and fsync the
 *  folder). On any failure (an earlier npz_add error, cannot create, disk full, I/O error) the
 *  temporary file is removed, a file already at path is left as it was, and -1 is returned with the
 *  reason in err. Frees w in every case. Returns 0 on success. */
int npz_finish(npz_writer* w, const char* path, char* err, int errlen);

/** Discard a writer without writing anything (NULL is fine). */
void npz_abort(npz_writer* w);

/** Open an archive file and read its directory. Returns NULL with the reason in err when the file
 *  cannot be read or is not a well-formed zip. The file stays open until npz_close. */
npz_archive* npz_open(const char* path, char* err, int errlen);

/** Like npz_open over an archive image in memory (borrowed: buf must outlive the archive). */
npz_archive* npz_open_mem(const void* buf, size_t n, char* err, int errlen);

/** Number of entries in the archive. */
int npz_count(const npz_archive* a);

/** Name of entry i (0 <= i < npz_count), without its ".npy" suffix, in archive order; NULL when i
 *  is out of range. Owned by the archive. */
const char* npz_name(const npz_archive* a, int i);

/** Index of the entry called name (without ".npy"), or -1. */
int npz_find(const npz_archive* a, const char* name);

/** Read the array called name (without ".npy"): inflate, check sizes and CRC-32, parse the .npy.
 *  Returns 0 with out filled (free with npy_free), or -1 with the reason in err (no such entry,
 *  corrupt entry, unsupported method or dtype, out of memory). Peak memory is twice the entry
 *  (the inflated image, then npy_parse's copy). Several threads may read one archive at once. */
int npz_get(npz_archive* a, const char* name, npy_array* out, char* err, int errlen);

/** Close the archive (NULL is fine). */
void npz_close(npz_archive* a);

/** Test hooks (process-wide; tests only). fail_after >= 0: npz_finish's writes fail with ENOSPC
 *  once that many bytes have been written (-1: off). zip64_limit: sizes and offsets >= it are
 *  written in ZIP64 form (default 0xFFFFFFFF; 0 = always). zip64_count: an entry count >= it
 *  writes the ZIP64 end record (default 0xFFFF). */
void npz_test_hooks(long long fail_after, unsigned long long zip64_limit,
                    unsigned long long zip64_count);

#endif
