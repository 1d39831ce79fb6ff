/* test_config_fuzz.c: regression inputs for the configuration reader, found by or seeded into
 * tests/fuzz_config.c. Each input goes the fuzz target's way: INI text over the defaults through
 * cfg_load_ini_text and, from a file, cfg_load_ini (same outcome); a failed load leaves the config
 * as it was and names the problem; a config that loads and validates is written with
 * cfg_write_ini and must read back equal. key=value inputs go through cfg_set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "test.h"

/* Write c as INI and read it back over the defaults; 1 when it reads back equal. */
static int round_trips(const mbpo_config* c, char* err, int errlen) {
  char* buf = NULL;
  size_t n = 0;
  FILE* m = open_memstream(&buf, &n);
  if (!m) return 0;
  cfg_write_ini(c, m);
  fclose(m);
  mbpo_config back;
  cfg_defaults(&back);
  int ok = cfg_load_ini_text(&back, buf, "written", err, errlen) == 0 && cfg_equal(c, &back);
  free(buf);
  return ok;
}

/* Load text from a temporary file over the defaults into c. */
static int load_file(const char* text, mbpo_config* c, char* err, int errlen) {
  char path[] = "/tmp/mbpo_config_fuzz_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -2;
  size_t len = strlen(text);
  int w = write(fd, text, len) == (ssize_t)len;
  close(fd);
  int r = w ? cfg_load_ini(c, path, err, errlen) : -2;
  unlink(path);
  return r;
}

/* The INI path. expect_err NULL: the text must load and validate (and round-trip); otherwise the
 * load must fail with a message containing expect_err. Returns the loaded config in out. */
static void check_ini(const char* text, const char* expect_err, mbpo_config* out) {
  mbpo_config def, c, f;
  cfg_defaults(&def);
  c = f = def;
  char err[1024] = "", ferr[1024] = "";
  int r = cfg_load_ini_text(&c, text, "fuzz", err, sizeof err);
  int rf = load_file(text, &f, ferr, sizeof ferr);
  CHECK(rf == r && cfg_equal(&c, &f), "file and text loads differ (%d %d): %s | %s", r, rf, err,
        ferr);
  if (expect_err) {
    CHECK(r != 0, "accepted: %.80s", text);
    CHECK(strstr(err, expect_err) != NULL, "'%s' lacks '%s'", err, expect_err);
    CHECK(cfg_equal(&c, &def), "a failed load changed the config");
  } else {
    CHECK(r == 0, "%.80s: %s", text, err);
    CHECK(cfg_validate(&c, err, sizeof err) == 0, "%s", err);
    CHECK(round_trips(&c, err, sizeof err), "does not read back equal: %s", err);
  }
  if (out) *out = c;
}

/* The key=value path. */
static void check_set(const char* key, const char* value, const char* expect_err) {
  mbpo_config def, c;
  cfg_defaults(&def);
  c = def;
  char err[1024] = "";
  int r = cfg_set(&c, key, value, err, sizeof err);
  if (expect_err) {
    CHECK(r != 0, "%s=%s accepted", key, value);
    CHECK(strstr(err, expect_err) != NULL, "'%s' lacks '%s'", err, expect_err);
    CHECK(cfg_equal(&c, &def), "a failed cfg_set changed the config");
    return;
  }
  CHECK(r == 0, "%s=%s: %s", key, value, err);
  const cfg_desc* d = cfg_find(key);
  if (!d) return;
  char v[CFG_STR_MAX + 64];
  cfg_format_value(&c, d, v, sizeof v);
  mbpo_config again = def;
  CHECK(cfg_set(&again, key, v, err, sizeof err) == 0 && cfg_equal(&c, &again), "%s: '%s': %s", key,
        v, err);
  if (cfg_validate(&c, err, sizeof err) == 0)
    CHECK(round_trips(&c, err, sizeof err), "%s=%.40s does not read back: %s", key, value, err);
}

static char* repeat(const char* prefix, char ch, int n) {
  size_t p = strlen(prefix);
  char* s = (char*)malloc(p + (size_t)n + 2);
  if (!s) exit(2);
  memcpy(s, prefix, p);
  memset(s + p, ch, (size_t)n);
  s[p + (size_t)n] = '\n';
  s[p + (size_t)n + 1] = 0;
  return s;
}

/* Found by fuzz_config: "tag=" and 193 characters is a 197-character line (inih's limit), but
 * cfg_write_ini writes "tag = ...", two characters more, and the resolved config.ini did not read
 * back; likewise any text setting over ~190 characters set with cfg_set (up to 255 allowed). */
static void test_long_text_settings(void) {
  char* s = repeat("tag=", 'a', 193);
  mbpo_config c;
  check_ini(s, NULL, &c);
  CHECK(strlen(c.tag) == 193, "%zu", strlen(c.tag));
  free(s);
  s = repeat("run_dir = ", 'r', CFG_STR_MAX - 1);
  check_ini(s, NULL, &c);
  CHECK(strlen(c.run_dir) == CFG_STR_MAX - 1, "%zu", strlen(c.run_dir));
  free(s);
  s = repeat("run_dir = ", 'r', CFG_STR_MAX);
  check_ini(s, "at most 255", NULL);
  free(s);
  s = repeat("", 'r', CFG_STR_MAX - 1);
  s[CFG_STR_MAX - 1] = 0;
  check_set("run_dir", s, NULL);
  check_set("tag", s, NULL);
  free(s);
  /* a line too long for the reader is still an error, not two lines */
  s = repeat("seed = 1\ntag = ", 'x', 400);
  check_ini(s, ":2: line is too long", NULL);
  free(s);
  s = repeat("# ", 'x', 1000); /* a cut comment is harmless */
  check_ini(s, NULL, NULL);
  free(s);
}

/* Found by fuzz_config: "tag=;z" loaded as ";z", but the written "tag = ;z" reads back as an
 * empty tag (inih takes " ;" as an inline comment, and the writer puts a space before the value). */
static void test_leading_semicolon(void) {
  check_ini("tag=;z\n", "would start an INI comment", NULL);
  mbpo_config c;
  check_ini("model_dir = ;z\n", NULL, &c); /* as written: an empty value and a comment */
  CHECK(c.model_dir[0] == 0, "%s", c.model_dir);
  check_set("tag", ";z", "would start an INI comment");
  check_set("model_dir", ";", "would start an INI comment");
  check_ini("tag=x;y\nrun_dir = r;\n", NULL, &c);
  CHECK(strcmp(c.tag, "x;y") == 0 && strcmp(c.run_dir, "r;") == 0, "%s %s", c.tag, c.run_dir);
  check_ini("tag = x ;comment\n", NULL, &c);
  CHECK(strcmp(c.tag, "x") == 0, "%s", c.tag);
  check_set("tag", "x ;y", "would start an INI comment");
}

/* Seed edge cases of the fuzz corpus: numbers, booleans, BOM and CRLF, sections, duplicates. */
static void test_seed_edge_cases(void) {
  mbpo_config c;
  check_ini("seed=1e6", NULL, &c);
  CHECK(c.seed == 1000000, "%ld", c.seed);
  check_ini("[model]\nlr = 1e-320\n", "out of range", NULL); /* below model.lr's minimum 1e-8 */
  check_ini("[model]\nlogvar_coef = 4.9e-324\n", NULL, &c); /* the smallest denormal */
  CHECK(c.model_logvar_coef > 0, "%g", c.model_logvar_coef);
  check_ini("\xef\xbb\xbfseed = 3\r\n[sac]\r\nreal_ratio=0\r\n", NULL, &c);
  CHECK(c.seed == 3 && c.sac_real_ratio == 0, "%ld %g", c.seed, c.sac_real_ratio);
  check_ini("device=cpu\ntf32=off\nstop_return=-0\n", NULL, &c); /* tf32=1 does not validate */
  CHECK(c.device == CFG_DEVICE_CPU && c.tf32 == 0 && c.stop_return == 0, "%d %d %g", c.device,
        c.tf32, c.stop_return);
  check_ini("model.weight_decay=1e-5,2e-5,3e-5,4e-5,5e-5", NULL, NULL);
  check_ini("[model]\nlayers=2\nweight_decay=0,0,0\n", NULL, &c);
  CHECK(c.model_layers == 2 && c.model_weight_decay.n == 3, "%ld %d", c.model_layers,
        c.model_weight_decay.n);
  check_ini("seed = 1\nseed = 2\n", "set twice (first on line 1)", NULL);
  check_ini("lr=1", "unknown setting 'lr'", NULL);
  check_ini("seed = 0x10\n", "not an integer", NULL);
  check_ini("seed = 1e400\n", "out of range", NULL);
  check_ini("[sac]\ngamma = nan\n", "not a finite number", NULL);
  check_ini("[model]\nweight_decay = 0,0,0,0,0,0,0,0,0\n", "more than 8 values", NULL);
  check_ini("[model\nseed = 1\n", "syntax error", NULL);
  check_ini("", NULL, NULL);
  check_set("", NULL, "unknown setting ''");
  check_set("seed", NULL, "has no value");
  check_set("model.weight_decay", ",", "comma-separated");
  check_set("sac.target_entropy", "-0", NULL);
}

int main(void) {
  RUN(test_long_text_settings);
  RUN(test_leading_semicolon);
  RUN(test_seed_edge_cases);
  return test_done();
}
