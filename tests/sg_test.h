/*
 * sg_test.h — what the Check suites share: the fixture that gives each test
 * a clean error state and its own scope, the assertions on the recorded
 * error message, and the runner every main() ends with.
 */
#ifndef SG_TEST_H
#define SG_TEST_H

#include "sg_autograd.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Each test starts with no error, grad mode on, NaN checks off, one scope. */
static inline void sg_test_setup(void)
{
    sg_clear_error();
    sg_set_grad_enabled(true);
    sg_set_nan_check(false);
    sg_scope_begin();
}

static inline void sg_test_teardown(void)
{
    while (sg_scope_depth() > 0)
        sg_scope_end();
    sg_set_nan_check(false);
    sg_set_grad_enabled(true);
    sg_clear_error();
}

/* The recorded message must be exactly `want`; then clear it. */
#define ASSERT_ERROR(want)                                                                  \
    do {                                                                                    \
        ck_assert_msg(sg_has_error(), "no error recorded, expected \"%s\"", (want));       \
        ck_assert_str_eq(sg_last_error(), (want));                                          \
        sg_clear_error();                                                                   \
    } while (0)

/* The recorded message must contain every given part; then clear it. */
static inline void sg_test_error_has(const char *const *parts, int n)
{
    ck_assert_msg(sg_has_error(), "no error recorded, expected one with \"%s\"", parts[0]);
    for (int i = 0; i < n; i++)
        ck_assert_msg(strstr(sg_last_error(), parts[i]), "message \"%s\" lacks \"%s\"", sg_last_error(), parts[i]);
    sg_clear_error();
}
#define ASSERT_ERROR_HAS(...)                                                                      \
    sg_test_error_has((const char *const[]){__VA_ARGS__},                                          \
                      (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)))

/* Run a suite; hand back the memory the engine keeps (valgrind's leak
 * check runs after main); exit status for meson. */
static inline int sg_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    sg_release_memory();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif /* SG_TEST_H */
