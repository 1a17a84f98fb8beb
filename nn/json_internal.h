/*
 * json_internal.h — a small pull parser for JSON, used by the safetensors
 * header reader (private; not installed). See json.c for the design.
 *
 * Usage: walk a value with sg_json_peek(), then sg_json_string(),
 * sg_json_int(), sg_json_skip(), or sg_json_enter() followed by
 * sg_json_next() once per member or element (it reads an object's key and
 * ':'), until it returns 0 at the closing bracket. Every call returns < 0
 * with j->err set on a syntax error; the first error is kept and every
 * later call fails at once.
 *
 * Example: {"a": [1, 2]}
 *     sg_json j; sg_json_init(&j, text, len);
 *     sg_json_enter(&j);                  // '{'
 *     while ((r = sg_json_next(&j, &key)) > 0) {
 *         if (strcmp(key, "a") == 0 && sg_json_peek(&j) == SG_JSON_ARRAY) {
 *             sg_json_enter(&j);
 *             while ((r = sg_json_next(&j, NULL)) > 0) sg_json_int(&j, &v);
 *         } else sg_json_skip(&j);
 *     }
 *     sg_json_finish(&j);                 // only whitespace may follow
 *     sg_json_free(&j);
 */
#ifndef SG_JSON_INTERNAL_H
#define SG_JSON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#define SG_JSON_MAX_DEPTH 16          /* containers nested deeper fail */
#define SG_JSON_MAX_STRING (1u << 20) /* bytes of one decoded string */

enum sg_json_type { SG_JSON_ERROR = -1, SG_JSON_OBJECT, SG_JSON_ARRAY, SG_JSON_STRING, SG_JSON_INT };

typedef struct sg_json {
    const unsigned char *s; /* the text, n bytes (need not end in NUL) */
    size_t n, pos;
    int depth;                          /* containers entered and not left */
    bool fresh[SG_JSON_MAX_DEPTH + 2];  /* no member read yet at this depth */
    bool is_obj[SG_JSON_MAX_DEPTH + 2]; /* object (else array) at this depth */
    char *pool;                         /* kept strings, n + 1 bytes at most */
    size_t pool_used;
    char err[200];                      /* "what at byte N", or "" */
} sg_json;

/* Start reading text[0, n). Nothing is allocated until a string is read. */
void sg_json_init(sg_json *j, const void *text, size_t n);

/* Free the strings; their pointers die with them. */
void sg_json_free(sg_json *j);

/* The type of the next value (leading whitespace skipped), or
 * SG_JSON_ERROR: end of text, true/false/null, a float-looking number is
 * still SG_JSON_INT (sg_json_int refuses it), anything else. */
enum sg_json_type sg_json_peek(sg_json *j);

/* Enter the object or array that comes next (it must be one). */
int sg_json_enter(sg_json *j);

/* In the innermost container: 1 if another member follows (for an object
 * *key receives its decoded key, kept until sg_json_free; key may be NULL
 * for an array), 0 if the container ended (it is left), < 0 on error. */
int sg_json_next(sg_json *j, const char **key);

/* The next value as a string: decoded (all escapes, \uXXXX with surrogate
 * pairs; UTF-8 checked; \u0000 refused), NUL-terminated, kept until
 * sg_json_free. *len (may be NULL) receives its byte count. */
int sg_json_string(sg_json *j, const char **out, size_t *len);

/* The next value as an integer in [-2^63 + 1, 2^63 - 1]. */
int sg_json_int(sg_json *j, long long *out);

/* Check and step over the next value, whatever it is (nothing is kept:
 * memory does not grow with what is skipped). */
int sg_json_skip(sg_json *j);

/* After the top-level value: only whitespace may remain. */
int sg_json_finish(sg_json *j);

/* True if s is valid UTF-8 of len bytes (no overlong forms, no surrogates). */
bool sg_json_utf8_ok(const unsigned char *s, size_t len);

#endif /* SG_JSON_INTERNAL_H */
