/* npy.h: NumPy .npy files (format 1.0, little-endian, C order) for float32, int32 and uint8 arrays.
 * Used for test dumps that Python reads and, inside .npz zips, for checkpoints. */
#ifndef MBPO_NPY_H
#define MBPO_NPY_H

#include <stddef.h>
#include <stdio.h>

#define NPY_MAX_DIMS 8

/** Element types. */
enum npy_type { NPY_F32 = 0, NPY_I32 = 1, NPY_U8 = 2, NPY_F64 = 3, NPY_I64 = 4 };

/** Size in bytes of one element of type t. */
int npy_type_size(int type);

/** Size of a buffer that holds any header npy_header builds. */
#define NPY_HEADER_MAX 512

/** Build the .npy header (magic, version, dict, padding to 64 bytes) into buf (NPY_HEADER_MAX bytes);
 *  returns its length. */
int npy_header(char* buf, int type, int ndim, const long* shape);

/** Write an array to a .npy file. Returns 0, or -1 (errno set). */
int npy_save(const char* path, const void* data, int type, int ndim, const long* shape);

/** Shorthand for a float32 array. */
int npy_save_f32(const char* path, const float* data, int ndim, const long* shape);

/** A parsed .npy array (data owned, free with npy_free). */
typedef struct npy_array {
  int type, ndim;
  long shape[NPY_MAX_DIMS];
  size_t count; /* elements */
  void* data;
} npy_array;

/** Parse a .npy image in memory. Returns 0, or -1 with a reason in err (bad magic, unsupported
 *  dtype or order, size mismatch). */
int npy_parse(const void* buf, size_t len, npy_array* out, char* err, int errlen);

/** Read a .npy file. Returns 0, or -1 with a reason in err. */
int npy_load(const char* path, npy_array* out, char* err, int errlen);

/** Free an array's data. */
void npy_free(npy_array* a);

#endif
