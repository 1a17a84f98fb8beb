/*
 * error.c — the sticky error message (SQLite-style): the first failure since
 * sg_clear_error() is kept, later ones are dropped, so the message names the
 * op where an expression first went wrong.
 */
#include "sg_internal.h"

#include <stdarg.h>

static _Thread_local char error_msg[512];
static _Thread_local bool error_set;
static _Thread_local const char *sg_tl_api; /* sg_api_enter's name, or NULL */

const char *sg_last_error(void) { return error_set ? error_msg : ""; }

bool sg_has_error(void) { return error_set; }

void sg_clear_error(void)
{
    error_set = false;
    error_msg[0] = '\0';
}

bool sg_print_error(FILE *f)
{
    if (!error_set)
        return false;
    fprintf(f ? f : stderr, "%s\n", error_msg);
    sg_clear_error();
    return true;
}

void sg_set_error(const char *fmt, ...)
{
    if (error_set)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_msg, sizeof error_msg, fmt, ap);
    va_end(ap);
    error_set = true;
    /* inside a function built from others, its name replaces the inner
     * call's leading "name:" (the rest of the message stays) */
    const char *api = sg_tl_api;
    size_t n = strcspn(error_msg, ": ");
    if (api && error_msg[n] == ':' && error_msg[n + 1] == ' ' &&
        (strlen(api) != n || strncmp(error_msg, api, n) != 0)) {
        char rest[sizeof error_msg];
        snprintf(rest, sizeof rest, "%s", error_msg + n);
        snprintf(error_msg, sizeof error_msg, "%s%s", api, rest);
    }
}

const char *sg_api_enter(const char *func)
{
    const char *token = sg_tl_api;
    if (!sg_tl_api)
        sg_tl_api = func;
    return token;
}

void sg_api_leave(const char *token) { sg_tl_api = token; }

bool sg_check_tensor(const char *func, const sg_tensor *x)
{
    if (!x) {
        if (!error_set)
            sg_set_error("%s: NULL input", func);
        return false;
    }
    if (x->magic != SG_TENSOR_LIVE) {
        /* recorded like any other error (the first one since the last
         * sg_clear_error() is kept) */
        sg_set_error("%s: tensor used after its scope ended", func);
        return false;
    }
    return true;
}

bool sg_check_file(const char *func, FILE *f)
{
    if (!f)
        sg_set_error("%s: NULL file", func);
    return f != NULL;
}
