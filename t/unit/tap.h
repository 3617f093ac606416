/*
 * A tiny header-only TAP producer for the unit tests.
 *
 *   ok(cond, "what %d", n);  is_int(got, want, "what");
 *   is_str(got, want, "what");  diag("note");  return done_testing();
 *
 * done_testing() prints the plan "1..N" and returns the exit status:
 * nonzero when any test failed.
 */

#ifndef _TAP_H_INCLUDED_
#define _TAP_H_INCLUDED_


#include <stdarg.h>
#include <stdio.h>
#include <string.h>


static int  tap_run;
static int  tap_failed;


#if defined(__GNUC__)
__attribute__((format(printf, 4, 5), unused))
#endif
static int
tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
    va_list  args;

    tap_run++;

    printf("%sok %d - ", cond ? "" : "not ", tap_run);

    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);

    printf("\n");

    if (!cond) {
        tap_failed++;
        printf("#   Failed test at %s line %d.\n", file, line);
    }

    fflush(stdout);

    return cond;
}


#if defined(__GNUC__)
__attribute__((format(printf, 1, 2), unused))
#endif
static void
diag(const char *fmt, ...)
{
    va_list  args;

    printf("# ");

    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);

    printf("\n");
    fflush(stdout);
}


#if defined(__GNUC__)
__attribute__((unused))
#endif
static int
tap_is_int(long long got, long long want, const char *file, int line,
    const char *what)
{
    if (tap_ok(got == want, file, line, "%s", what)) {
        return 1;
    }

    printf("#          got: %lld\n#     expected: %lld\n", got, want);

    return 0;
}


#if defined(__GNUC__)
__attribute__((unused))
#endif
static int
tap_is_str(const char *got, const char *want, const char *file, int line,
    const char *what)
{
    int  same;

    same = (got == NULL && want == NULL)
           || (got != NULL && want != NULL && strcmp(got, want) == 0);

    if (tap_ok(same, file, line, "%s", what)) {
        return 1;
    }

    printf("#          got: '%s'\n#     expected: '%s'\n",
           got ? got : "(null)", want ? want : "(null)");

    return 0;
}


#if defined(__GNUC__)
__attribute__((unused))
#endif
static int
done_testing(void)
{
    printf("1..%d\n", tap_run);

    if (tap_failed) {
        printf("# Looks like you failed %d test%s of %d.\n", tap_failed,
               tap_failed == 1 ? "" : "s", tap_run);
    }

    fflush(stdout);

    return tap_failed ? 1 : 0;
}


#define ok(cond, ...)  tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, what)                                               \
    tap_is_int((long long) (got), (long long) (want), __FILE__, __LINE__,     \
               what)
#define is_str(got, want, what)                                               \
    tap_is_str(got, want, __FILE__, __LINE__, what)


#endif /* _TAP_H_INCLUDED_ */
