/* test.h - the one C test runner (native with ASan/UBSan, and wasm under node).
 *
 * A test is `TEST(name) { ... }` in any tests/c/test_*.c file; the Makefile
 * collects the names (scripts/gen_tests.sh) so no list is edited by hand.
 * Checks record a failure and continue; the runner prints one line per failing
 * check, then the closing line "N passed, N failed". Run a subset with
 * `owlet-tests PATTERN` (substring of the test name).
 * Fixture paths are relative to the repository root (the runner's cwd). */
#ifndef OWL_TEST_H
#define OWL_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern int owl_test_failed_checks; /* failed checks in the running test */
void owl_test_fail(const char *file, int line, const char *fmt, ...);

#define TEST(name) void owl_test_##name(void)

#define CHECK(cond)                                                       \
    do {                                                                  \
        if (!(cond))                                                      \
            owl_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);        \
    } while (0)
#define CHECK_MSG(cond, ...)                                              \
    do {                                                                  \
        if (!(cond))                                                      \
            owl_test_fail(__FILE__, __LINE__, __VA_ARGS__);               \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                \
    do {                                                                  \
        long long a_ = (long long)(a), b_ = (long long)(b);               \
        if (a_ != b_)                                                     \
            owl_test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                             \
    do {                                                                  \
        double a_ = (double)(a), b_ = (double)(b);                        \
        if (!(fabs(a_ - b_) <= (tol)))                                    \
            owl_test_fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (tol %g)", #a, #b, a_, b_, (double)(tol)); \
    } while (0)

/* Helpers for tests (tests/c/main.c). */
/* Read a whole file; returns malloc'd buffer (NUL-terminated beyond *size) or NULL. */
void *owl_test_read_file(const char *path, size_t *size);
/* Deterministic PRNG for test data (xorshift64*). */
uint64_t owl_test_rand_u64(uint64_t *state);
float owl_test_rand_f32(uint64_t *state, float lo, float hi);
/* max |a-b| over n floats */
double owl_test_max_abs_diff(const float *a, const float *b, size_t n);
double owl_test_max_abs(const float *a, size_t n);

#endif
