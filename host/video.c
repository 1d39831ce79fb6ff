/* video.c: offscreen MuJoCo frames piped to ffmpeg (video.h). The GL libraries are opened with
 * dlopen and declared here (no EGL/OSMesa headers needed to build). */
#include "video.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- EGL and OSMesa, as much as is used ---- */
typedef void* egl_handle;
typedef int32_t EGLint;
#define EGL_NONE 0x3038
#define EGL_RED_SIZE 0x3024
#define EGL_GREEN_SIZE 0x3023
#define EGL_BLUE_SIZE 0x3022
#define EGL_ALPHA_SIZE 0x3021
#define EGL_DEPTH_SIZE 0x3025
#define EGL_STENCIL_SIZE 0x3026
#define EGL_SURFACE_TYPE 0x3033
#define EGL_PBUFFER_BIT 0x0001
#define EGL_RENDERABLE_TYPE 0x3040
#define EGL_OPENGL_BIT 0x0008
#define EGL_OPENGL_API 0x30A2
#define EGL_PLATFORM_SURFACELESS_MESA 0x31DD
#define EGL_PLATFORM_DEVICE_EXT 0x313F
#define OSMESA_RGBA 0x1908
#define GL_UNSIGNED_BYTE 0x1401

typedef void* (*egl_gpa_fn)(const char*);
typedef egl_handle (*egl_get_platform_display_fn)(unsigned, void*, const EGLint*);
typedef unsigned (*egl_query_devices_fn)(EGLint, egl_handle*, EGLint*);
typedef egl_handle (*egl_get_display_fn)(void*);
typedef unsigned (*egl_initialize_fn)(egl_handle, EGLint*, EGLint*);
typedef unsigned (*egl_choose_config_fn)(egl_handle, const EGLint*, egl_handle*, EGLint, EGLint*);
typedef unsigned (*egl_bind_api_fn)(unsigned);
typedef egl_handle (*egl_create_context_fn)(egl_handle, egl_handle, egl_handle, const EGLint*);
typedef unsigned (*egl_make_current_fn)(egl_handle, egl_handle, egl_handle, egl_handle);
typedef unsigned (*egl_destroy_context_fn)(egl_handle, egl_handle);
typedef unsigned (*egl_terminate_fn)(egl_handle);
typedef EGLint (*egl_get_error_fn)(void);
typedef void* (*osmesa_create_fn)(unsigned, int, int, int, void*);
typedef unsigned char (*osmesa_make_current_fn)(void*, void*, unsigned, int, int);
typedef void (*osmesa_destroy_fn)(void*);

struct video {
  const mjModel* m;
  int width, height;
  long frames;
  const char* backend;
  void* lib; /* libEGL or libOSMesa */
  egl_handle dpy, ctx;
  void* osmesa_buf;
  egl_destroy_context_fn egl_destroy;
  egl_terminate_fn egl_terminate;
  osmesa_destroy_fn osmesa_destroy;
  int have_mjr;
  int have_gl; /* the context was made current */
  mjvScene scn;
  mjvCamera cam;
  mjvOption opt;
  mjrContext con;
  unsigned char *rgb, *flip;
  pid_t ffmpeg;
  int pipe_fd;
  char err[512];
};

static void fmt(char* err, int errlen, const char* f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char* err, int errlen, const char* f, ...) {
  va_list ap;
  va_start(ap, f);
  vsnprintf(err, (size_t)errlen, f, ap);
  va_end(ap);
}

/* An offscreen EGL context: the surfaceless Mesa platform, else the first EGL device, else the
 * default display; made current without a surface (MuJoCo draws into its own framebuffer). */
static int open_egl(video* v, char* why, int n) {
  v->lib = dlopen("libEGL.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (!v->lib) return fmt(why, n, "libEGL.so.1 not found"), -1;
  egl_gpa_fn gpa = (egl_gpa_fn)dlsym(v->lib, "eglGetProcAddress");
  egl_get_display_fn get_display = (egl_get_display_fn)dlsym(v->lib, "eglGetDisplay");
  egl_initialize_fn init = (egl_initialize_fn)dlsym(v->lib, "eglInitialize");
  egl_choose_config_fn choose = (egl_choose_config_fn)dlsym(v->lib, "eglChooseConfig");
  egl_bind_api_fn bind = (egl_bind_api_fn)dlsym(v->lib, "eglBindAPI");
  egl_create_context_fn create = (egl_create_context_fn)dlsym(v->lib, "eglCreateContext");
  egl_make_current_fn make_current = (egl_make_current_fn)dlsym(v->lib, "eglMakeCurrent");
  egl_get_error_fn get_error = (egl_get_error_fn)dlsym(v->lib, "eglGetError");
  v->egl_destroy = (egl_destroy_context_fn)dlsym(v->lib, "eglDestroyContext");
  v->egl_terminate = (egl_terminate_fn)dlsym(v->lib, "eglTerminate");
  if (!gpa || !get_display || !init || !choose || !bind || !create || !make_current || !get_error ||
      !v->egl_destroy || !v->egl_terminate)
    return fmt(why, n, "libEGL.so.1 lacks EGL 1.4 functions"), -1;
  egl_get_platform_display_fn gpd = (egl_get_platform_display_fn)gpa("eglGetPlatformDisplayEXT");
  egl_query_devices_fn qd = (egl_query_devices_fn)gpa("eglQueryDevicesEXT");
  EGLint major = 0, minor = 0;
  v->dpy = NULL;
  if (gpd) {
    v->dpy = gpd(EGL_PLATFORM_SURFACELESS_MESA, NULL, NULL);
    if (v->dpy && !init(v->dpy, &major, &minor)) v->dpy = NULL;
  }
  if (!v->dpy && gpd && qd) {
    egl_handle dev[4];
    EGLint nd = 0;
    if (qd(4, dev, &nd) && nd > 0) {
      v->dpy = gpd(EGL_PLATFORM_DEVICE_EXT, dev[0], NULL);
      if (v->dpy && !init(v->dpy, &major, &minor)) v->dpy = NULL;
    }
  }
  if (!v->dpy) {
    v->dpy = get_display(NULL);
    if (v->dpy && !init(v->dpy, &major, &minor)) v->dpy = NULL;
  }
  if (!v->dpy) return fmt(why, n, "no EGL display (error 0x%x)", (unsigned)get_error()), -1;
  const EGLint attr[] = {EGL_RED_SIZE,     8, EGL_GREEN_SIZE,      8, EGL_BLUE_SIZE,  8,
                         EGL_ALPHA_SIZE,   8, EGL_DEPTH_SIZE,      24, EGL_STENCIL_SIZE, 8,
                         EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT,
                         EGL_NONE};
  egl_handle cfg = NULL;
  EGLint ncfg = 0;
  if (!choose(v->dpy, attr, &cfg, 1, &ncfg) || ncfg < 1)
    return fmt(why, n, "EGL %d.%d has no RGBA8 + depth24 OpenGL config (error 0x%x)", major, minor,
               (unsigned)get_error()), -1;
  if (!bind(EGL_OPENGL_API)) return fmt(why, n, "EGL cannot bind desktop OpenGL (error 0x%x)", (unsigned)get_error()), -1;
  v->ctx = create(v->dpy, cfg, NULL, NULL);
  if (!v->ctx) return fmt(why, n, "eglCreateContext failed (error 0x%x)", (unsigned)get_error()), -1;
  if (!make_current(v->dpy, NULL, NULL, v->ctx))
    return fmt(why, n, "eglMakeCurrent without a surface failed (error 0x%x)", (unsigned)get_error()), -1;
  v->backend = "EGL";
  v->have_gl = 1;
  return 0;
}

/* An OSMesa (software) context drawing into a buffer of our own. */
static int open_osmesa(video* v, char* why, int n) {
  v->lib = dlopen("libOSMesa.so.8", RTLD_NOW | RTLD_GLOBAL);
  if (!v->lib) v->lib = dlopen("libOSMesa.so.6", RTLD_NOW | RTLD_GLOBAL);
  if (!v->lib) return fmt(why, n, "libOSMesa.so.8 not found"), -1;
  osmesa_create_fn create = (osmesa_create_fn)dlsym(v->lib, "OSMesaCreateContextExt");
  osmesa_make_current_fn make_current = (osmesa_make_current_fn)dlsym(v->lib, "OSMesaMakeCurrent");
  v->osmesa_destroy = (osmesa_destroy_fn)dlsym(v->lib, "OSMesaDestroyContext");
  if (!create || !make_current || !v->osmesa_destroy) return fmt(why, n, "libOSMesa lacks OSMesaCreateContextExt"), -1;
  v->ctx = create(OSMESA_RGBA, 24, 8, 0, NULL);
  if (!v->ctx) return fmt(why, n, "OSMesaCreateContextExt failed"), -1;
  v->osmesa_buf = malloc((size_t)v->width * (size_t)v->height * 4);
  if (!v->osmesa_buf || !make_current(v->ctx, v->osmesa_buf, GL_UNSIGNED_BYTE, v->width, v->height))
    return fmt(why, n, "OSMesaMakeCurrent failed"), -1;
  v->backend = "OSMesa";
  v->have_gl = 1;
  return 0;
}

static void close_gl(video* v) {
  if (v->have_mjr) {
    mjr_freeContext(&v->con);
    mjv_freeScene(&v->scn);
    v->have_mjr = 0;
  }
  if (v->ctx && v->egl_destroy) v->egl_destroy(v->dpy, v->ctx);
  if (v->dpy && v->egl_terminate) v->egl_terminate(v->dpy);
  if (v->ctx && v->osmesa_destroy) v->osmesa_destroy(v->ctx);
  /* a library whose context failed is unloaded (MuJoCo's GL loader would pick it over the next
   * one); one that rendered stays loaded (unloading a GL driver after use is not safe) */
  if (v->lib && !v->have_gl) dlclose(v->lib);
  v->lib = NULL;
  v->ctx = v->dpy = NULL;
  v->egl_destroy = NULL;
  v->egl_terminate = NULL;
  v->osmesa_destroy = NULL;
  free(v->osmesa_buf);
  v->osmesa_buf = NULL;
}

/* The executable `name` in PATH, or 0. */
static int in_path(const char* name) {
  const char* path = getenv("PATH");
  if (!path) return 0;
  char buf[4200];
  while (*path) {
    size_t l = strcspn(path, ":");
    if (l > 0 && l < 4000) {
      snprintf(buf, sizeof buf, "%.*s/%s", (int)l, path, name);
      if (access(buf, X_OK) == 0) return 1;
    }
    path += l;
    if (*path == ':') path++;
  }
  return 0;
}

static int start_ffmpeg(video* v, const char* path, double fps, char* err, int errlen) {
  char size[32], rate[32];
  snprintf(size, sizeof size, "%dx%d", v->width, v->height);
  snprintf(rate, sizeof rate, "%.6g", fps);
  int fds[2];
  if (pipe(fds) != 0) return fmt(err, errlen, "pipe: %s", strerror(errno)), -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return fmt(err, errlen, "fork: %s", strerror(errno)), -1;
  }
  if (pid == 0) {
    dup2(fds[0], STDIN_FILENO);
    close(fds[0]);
    close(fds[1]);
    execlp("ffmpeg", "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt",
           "rgb24", "-video_size", size, "-framerate", rate, "-i", "-", "-pix_fmt", "yuv420p", "-movflags",
           "+faststart", path, (char*)NULL);
    _exit(127);
  }
  close(fds[0]);
  v->ffmpeg = pid;
  v->pipe_fd = fds[1];
  return 0;
}

video* video_open(const char* path, const mjModel* m, int width, int height, double fps, char* err,
                  int errlen) {
  if (!path || !path[0]) return fmt(err, errlen, "no video file name"), NULL;
  if (!in_path("ffmpeg"))
    return fmt(err, errlen, "--video needs ffmpeg to encode the frames: install it (Debian: apt-get "
                            "install ffmpeg)"), NULL;
  video* v = (video*)calloc(1, sizeof *v);
  if (!v) return fmt(err, errlen, "out of memory"), NULL;
  v->m = m;
  v->pipe_fd = -1;
  v->ffmpeg = -1;
  /* MuJoCo's offscreen buffer is visual.global.offwidth x offheight (640 x 480 by default) */
  v->width = width < m->vis.global.offwidth ? width : m->vis.global.offwidth;
  v->height = height < m->vis.global.offheight ? height : m->vis.global.offheight;
  v->width &= ~1; /* yuv420p needs even sizes */
  v->height &= ~1;
  const char* want = getenv("MBPO_GL");
  char why_egl[256] = "not tried", why_osmesa[256] = "not tried";
  int ok = -1;
  if (!want || !want[0] || strcmp(want, "egl") == 0) {
    ok = open_egl(v, why_egl, sizeof why_egl);
    if (ok != 0) close_gl(v);
  }
  if (ok != 0 && (!want || !want[0] || strcmp(want, "osmesa") == 0)) {
    ok = open_osmesa(v, why_osmesa, sizeof why_osmesa);
    if (ok != 0) close_gl(v);
  }
  if (ok != 0) {
    if (want && want[0] && strcmp(want, "egl") != 0 && strcmp(want, "osmesa") != 0)
      fmt(err, errlen, "MBPO_GL=%s: use egl or osmesa", want);
    else
      fmt(err, errlen,
          "--video needs an offscreen OpenGL context for MuJoCo's renderer and found none (EGL: %s; "
          "OSMesa: %s): install EGL with a Mesa driver (Debian: apt-get install libegl1 "
          "libegl-mesa0 libgl1-mesa-dri) or OSMesa (apt-get install libosmesa6)",
          why_egl, why_osmesa);
    free(v);
    return NULL;
  }
  mjv_defaultScene(&v->scn);
  mjv_defaultCamera(&v->cam);
  mjv_defaultOption(&v->opt);
  mjr_defaultContext(&v->con);
  mjv_makeScene(m, &v->scn, 2000);
  mjr_makeContext(m, &v->con, mjFONTSCALE_100);
  v->have_mjr = 1;
  if (!v->con.offFBO) {
    fmt(err, errlen, "MuJoCo could not make its offscreen framebuffer in the %s context", v->backend);
    close_gl(v);
    free(v);
    return NULL;
  }
  mjr_setBuffer(mjFB_OFFSCREEN, &v->con);
  /* from the side, following the first body (the torso, the cart) */
  v->cam.type = mjCAMERA_TRACKING;
  v->cam.trackbodyid = m->nbody > 1 ? 1 : 0;
  v->cam.distance = 0.75 * m->stat.extent; /* gym's Hopper/Walker2d viewer distance */
  v->cam.elevation = -15;
  v->cam.azimuth = 90;
  size_t frame = (size_t)v->width * (size_t)v->height * 3;
  v->rgb = (unsigned char*)malloc(frame);
  v->flip = (unsigned char*)malloc(frame);
  if (!v->rgb || !v->flip) {
    fmt(err, errlen, "out of memory");
    video_close(v, NULL, 0);
    return NULL;
  }
  signal(SIGPIPE, SIG_IGN); /* a failed ffmpeg shows as EPIPE */
  if (start_ffmpeg(v, path, fps, err, errlen) != 0) {
    video_close(v, NULL, 0);
    return NULL;
  }
  return v;
}

int video_frame(video* v, mjData* d) {
  mjv_updateScene(v->m, d, &v->opt, NULL, &v->cam, mjCAT_ALL, &v->scn);
  mjrRect vp = {0, 0, v->width, v->height};
  mjr_render(vp, &v->scn, &v->con);
  mjr_readPixels(v->rgb, NULL, vp, &v->con);
  size_t row = (size_t)v->width * 3;
  for (int y = 0; y < v->height; y++) /* OpenGL's rows go bottom-up */
    memcpy(v->flip + (size_t)y * row, v->rgb + (size_t)(v->height - 1 - y) * row, row);
  size_t left = row * (size_t)v->height;
  const unsigned char* p = v->flip;
  while (left > 0) {
    ssize_t w = write(v->pipe_fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      fmt(v->err, sizeof v->err, "ffmpeg stopped reading frames (%s)", w < 0 ? strerror(errno) : "closed");
      return -1;
    }
    p += w;
    left -= (size_t)w;
  }
  v->frames++;
  return 0;
}

long video_frames(const video* v) { return v->frames; }

const char* video_backend(const video* v) { return v->backend; }

const char* video_error(const video* v) { return v->err; }

int video_close(video* v, char* err, int errlen) {
  if (!v) return 0;
  int rc = 0;
  if (v->pipe_fd >= 0) close(v->pipe_fd);
  if (v->ffmpeg > 0) {
    int st = 0;
    while (waitpid(v->ffmpeg, &st, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      if (err) fmt(err, errlen, "ffmpeg failed (%s %d)", WIFEXITED(st) ? "exit status" : "signal",
                   WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
      rc = -1;
    }
  }
  close_gl(v);
  free(v->rgb);
  free(v->flip);
  free(v);
  return rc;
}
