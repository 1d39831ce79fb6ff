/* video.h: offscreen rendering of MuJoCo frames into an .mp4 (for `mbpo eval --video`).
 *
 * MuJoCo's own renderer (mjv_updateScene, mjr_render, mjr_readPixels into its offscreen
 * framebuffer) draws in an OpenGL context that needs no display: EGL (libEGL.so.1 with the
 * surfaceless Mesa platform, or an EGL device), else OSMesa (libOSMesa.so.8/6). Both libraries are
 * opened at run time (dlopen), so neither is needed to build or to train. Frames (RGB24) are piped
 * to `ffmpeg`, which writes the file (H.264, yuv420p when its encoder is there).
 *
 *   char err[512];
 *   video* v = video_open("out.mp4", m, 640, 480, fps, err, sizeof err);
 *   if (!v) { fprintf(stderr, "%s\n", err); exit(2); }   (says what to install)
 *   ... per frame: video_frame(v, d);
 *   video_close(v, err, sizeof err);                      (waits for ffmpeg)
 *
 * MBPO_GL=egl or MBPO_GL=osmesa picks one backend (default: EGL, then OSMesa). */
#ifndef MBPO_VIDEO_H
#define MBPO_VIDEO_H

#include <mujoco/mujoco.h>

typedef struct video video;

/** Make the offscreen GL context and MuJoCo's render context for model m, and start ffmpeg writing
 *  path (width x height, fps frames per second). Returns NULL with a message in err that names
 *  what is missing (the GL libraries, ffmpeg) or what failed. */
video* video_open(const char* path, const mjModel* m, int width, int height, double fps, char* err,
                  int errlen);

/** Render the state d (a camera tracking the model's first body, from the side) and send the frame
 *  to ffmpeg. Returns 0, or -1 with the reason in video_error(). */
int video_frame(video* v, mjData* d);

/** Frames sent so far. */
long video_frames(const video* v);

/** Which GL context renders: "EGL" or "OSMesa". */
const char* video_backend(const video* v);

/** The message of the last failure. */
const char* video_error(const video* v);

/** Finish the file (close ffmpeg's input, wait for it), free everything. Returns 0, or -1 with err
 *  (ffmpeg failed). v may be NULL. */
int video_close(video* v, char* err, int errlen);

#endif
