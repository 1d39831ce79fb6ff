/* tboard.h: TensorBoard event files for scalars, written without TensorFlow or a protobuf library.
 *
 * A writer owns one file <dir>/events.out.tfevents.<unix time, 10 digits>.<hostname> (".<n>" is
 * appended when that name is taken). The file is a sequence of TFRecords
 *
 *   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes | data | uint32 masked
 *   CRC-32C of the data,   masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8
 *
 * each holding one serialized tensorflow.Event: the first one {wall_time, file_version =
 * "brain.Event:2"}, then one per step {wall_time, step, summary {value {tag, simple_value}...}}.
 * `tensorboard --logdir <parent of dir>` shows them under the Scalars tab.
 *
 *   char err[256];
 *   tboard* tb = tboard_open(run_dir, err, sizeof err);
 *   if (!tb) mbpo_warn("tensorboard: %s", err);
 *   ...
 *   const char* tags[] = {"eval/return", "model/loss"};
 *   double values[] = {ret, loss};
 *   if (tb && tboard_scalars(tb, epoch, tboard_now(), 2, tags, values) != 0)
 *     mbpo_warn("tensorboard: %s", tboard_error(tb));
 *   if (tb) tboard_flush(tb);   (once per epoch: makes the new points visible to TensorBoard)
 *   ...
 *   tboard_close(tb, err, sizeof err);
 *
 * Failures (a file that cannot be created, a write that fails) are returned, never fatal. A failed
 * flush cuts the file back to its last complete record, so the file always stays readable, and
 * keeps the unwritten records for the next flush. A writer is not thread-safe. */
#ifndef MBPO_TBOARD_H
#define MBPO_TBOARD_H

#include <stddef.h>
#include <stdint.h>

/** An open event-file writer. */
typedef struct tboard tboard;

/** Records not yet written (after failed flushes) are kept up to this many bytes; an event that
 *  would go past it is dropped with an error. */
#define TBOARD_PENDING_MAX (1u << 20)

/** Create dir (and missing parents) if needed and a new event file in it, and write its first record
 *  (file_version "brain.Event:2"). Returns the writer, or NULL with a reason in err. */
tboard* tboard_open(const char* dir, char* err, int errlen);

/** Reopen the existing event file at path to continue it (a resumed run): the file is cut to its
 *  first `length` bytes (the complete records of the run's checkpoint; whatever was written after
 *  the checkpoint goes) and new records are appended there. A file shorter than length, or one
 *  whose first record is not a TFRecord, is refused (NULL with the reason in err; the file is left
 *  as it was). */
tboard* tboard_open_append(const char* path, uint64_t length, char* err, int errlen);

/** Append one Event of step `step` holding n scalars (tags[i], values[i]); each value is stored as a
 *  float (simple_value; rounded, values beyond the float range become +-inf). wall_time is seconds
 *  since the Unix epoch (tboard_now()). Tags must be non-empty. The record is buffered (flushed by
 *  itself past 64 KiB). Returns 0, or -1 with the reason in tboard_error() (nothing is appended
 *  for bad arguments; for a failed automatic flush the event stays pending). */
int tboard_scalars(tboard* tb, long step, double wall_time, int n, const char* const* tags,
                   const double* values);

/** One scalar: tboard_scalars with n = 1. */
int tboard_scalar(tboard* tb, const char* tag, long step, double wall_time, float value);

/** Write the buffered records to the file (to the OS: no fsync). Returns 0, or -1 with the reason
 *  in tboard_error(); then the file is cut back to its last complete record and the records stay
 *  pending for the next flush. */
int tboard_flush(tboard* tb);

/** Flush, close the file and free the writer (NULL is accepted). Returns 0, or -1 with the reason in
 *  err (err may be NULL); the writer is freed either way. */
int tboard_close(tboard* tb, char* err, int errlen);

/** The message of the last failure of this writer ("" when none). */
const char* tboard_error(const tboard* tb);

/** The path of the writer's event file. */
const char* tboard_path(const tboard* tb);

/** Bytes written to the file so far (complete records only). */
uint64_t tboard_bytes_written(const tboard* tb);

/** Bytes of records waiting for the next flush (after failed flushes). The file's length once
 *  they are written is tboard_bytes_written() + tboard_bytes_pending(). */
uint64_t tboard_bytes_pending(const tboard* tb);

/** The current time in seconds since the Unix epoch (microsecond resolution): the usual wall_time. */
double tboard_now(void);

/* ---- the encoding, public for the tests ------------------------------------------------------ */

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78; pre- and post-inverted) of n bytes,
 *  continuing from crc: start with 0, and tboard_crc32c(tboard_crc32c(0, a), b) is the CRC of a
 *  then b. Uses the SSE4.2 crc32 instruction when the CPU has it, else tboard_crc32c_table. */
uint32_t tboard_crc32c(uint32_t crc, const void* data, size_t n);

/** The same CRC-32C computed with a 256-entry table only: the reference for the fast path. */
uint32_t tboard_crc32c_table(uint32_t crc, const void* data, size_t n);

/** 1 when tboard_crc32c uses the SSE4.2 instruction on this machine, else 0. */
int tboard_crc32c_hw(void);

/** The TFRecord mask of a CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
uint32_t tboard_mask_crc(uint32_t crc);

/** Encode v as a protobuf base-128 varint into out (up to 10 bytes); returns the byte count. */
int tboard_varint(uint8_t* out, uint64_t v);

/** Serialize an Event {wall_time, step (left out when 0, as protobuf does), file_version (left out
 *  when NULL), summary with n values (left out when n == 0)} into out when it fits in cap bytes.
 *  Returns the encoded size (whether or not it fitted, like snprintf). Tags must not be NULL. */
size_t tboard_encode_event(uint8_t* out, size_t cap, double wall_time, long step,
                           const char* file_version, int n, const char* const* tags,
                           const double* values);

/** Frame n bytes of data as one TFRecord into out when it fits in cap bytes (n + 16 needed).
 *  Returns n + 16. */
size_t tboard_encode_record(uint8_t* out, size_t cap, const void* data, size_t n);

#endif
