/*
 * json.c — a pull parser for the JSON of safetensors headers.
 *
 * Key idea: nothing is built. The caller walks the text with peek / enter /
 * next / string / int / skip, and keeps only what it asks for: a string it
 * reads is decoded into a pool (never larger than the text), a value it
 * skips is checked and forgotten. So the memory a header costs is bounded
 * by the header's own size plus what the caller keeps per entry — a header
 * of 16 million integers under an unknown key costs no memory at all, where
 * a tree of nodes would cost hundreds of megabytes.
 *
 * The grammar is JSON's (RFC 8259) minus what a header never needs:
 * objects, arrays, strings (all escapes, \uXXXX with surrogate pairs, UTF-8
 * validated, \u0000 refused so that every string is a C string) and
 * integers. true/false/null and non-integer numbers are refused with a
 * message saying so. Containers nest at most SG_JSON_MAX_DEPTH deep, so the
 * recursion of sg_json_skip() is bounded; strings are at most
 * SG_JSON_MAX_STRING bytes. Every step moves forward, so a whole walk is
 * linear in the text.
 *
 * Invariant: after the first error every call returns -1 and j->err keeps
 * the first message ("<what> at byte <offset>").
 */
#include "json_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* UTF-8 */

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

bool sg_json_utf8_ok(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t k = utf8_len(s + i, len - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

/* ------------------------------------------------------------------------- */
/* state */

void sg_json_init(sg_json *j, const void *text, size_t n)
{
    memset(j, 0, sizeof *j);
    j->s = text;
    j->n = n;
}

void sg_json_free(sg_json *j)
{
    free(j->pool);
    j->pool = NULL;
}

static int jerr(sg_json *j, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int jerr(sg_json *j, const char *fmt, ...)
{
    if (!j->err[0]) {
        char msg[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(j->err, sizeof j->err, "%s at byte %zu", msg, j->pos);
    }
    return -1;
}

static void skip_ws(sg_json *j)
{
    while (j->pos < j->n &&
           (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' || j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
        j->pos++;
}

/* ------------------------------------------------------------------------- */
/* values */

enum sg_json_type sg_json_peek(sg_json *j)
{
    if (j->err[0])
        return SG_JSON_ERROR;
    skip_ws(j);
    if (j->pos >= j->n) {
        jerr(j, "unexpected end");
        return SG_JSON_ERROR;
    }
    unsigned char c = j->s[j->pos];
    if (c == '{')
        return SG_JSON_OBJECT;
    if (c == '[')
        return SG_JSON_ARRAY;
    if (c == '"')
        return SG_JSON_STRING;
    if (c == '-' || (c >= '0' && c <= '9'))
        return SG_JSON_INT;
    if (c == 't' || c == 'f' || c == 'n')
        jerr(j, "unsupported JSON value (true, false or null)");
    else
        jerr(j, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
    return SG_JSON_ERROR;
}

static int hex4(sg_json *j, unsigned *out)
{
    if (j->n - j->pos < 4)
        return jerr(j, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = j->s[j->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return jerr(j, "bad hex digit in a \\u escape");
    }
    *out = v;
    return 0;
}

/* Code point cp as UTF-8 into d (room for 4); the byte count. */
static size_t put_utf8(char *d, unsigned cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The string at j->pos (on its quote). keep: decode into the pool and
 * return it; else only check it. A decoded string is never longer than its
 * source (an escape of k bytes yields at most k), so the pool of n + 1
 * bytes always has room. */
static int parse_string(sg_json *j, bool keep, const char **out, size_t *out_len)
{
    if (keep && !j->pool) {
        j->pool = malloc(j->n + 1);
        if (!j->pool)
            return jerr(j, "out of memory for a header of %zu bytes", j->n);
    }
    char *d = keep ? j->pool + j->pool_used : NULL;
    size_t len = 0;
    char tmp[4];
    j->pos++; /* the quote */
    for (;;) {
        if (j->pos >= j->n)
            return jerr(j, "unterminated string");
        if (len > SG_JSON_MAX_STRING)
            return jerr(j, "a string longer than %u bytes", SG_JSON_MAX_STRING);
        unsigned char c = j->s[j->pos];
        if (c == '"') {
            j->pos++;
            break;
        }
        if (c < 0x20)
            return jerr(j, "control character 0x%02x in a string", c);
        if (c == '\\') {
            if (++j->pos >= j->n)
                return jerr(j, "unterminated string");
            unsigned char e = j->s[j->pos++];
            unsigned cp;
            switch (e) {
            case '"': case '\\': case '/': cp = e; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (hex4(j, &cp) < 0)
                    return -1;
                if (cp >= 0xD800 && cp <= 0xDBFF) { /* high surrogate: a low one must follow */
                    unsigned lo;
                    if (j->n - j->pos < 2 || j->s[j->pos] != '\\' || j->s[j->pos + 1] != 'u')
                        return jerr(j, "unpaired surrogate in a \\u escape");
                    j->pos += 2;
                    if (hex4(j, &lo) < 0)
                        return -1;
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return jerr(j, "unpaired surrogate in a \\u escape");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return jerr(j, "unpaired surrogate in a \\u escape");
                }
                if (cp == 0)
                    return jerr(j, "\\u0000 in a string");
                break;
            default:
                j->pos--;
                return jerr(j, "bad escape \\%c", e >= 0x20 && e < 0x7f ? e : '?');
            }
            len += put_utf8(d ? d + len : tmp, cp);
            continue;
        }
        size_t k = utf8_len(j->s + j->pos, j->n - j->pos);
        if (!k)
            return jerr(j, "invalid UTF-8 in a string");
        if (d)
            memcpy(d + len, j->s + j->pos, k);
        len += k;
        j->pos += k;
    }
    if (keep) {
        d[len] = '\0';
        j->pool_used += len + 1;
        *out = d;
    }
    if (out_len)
        *out_len = len;
    return 0;
}

int sg_json_string(sg_json *j, const char **out, size_t *len)
{
    enum sg_json_type t = sg_json_peek(j);
    if (t == SG_JSON_ERROR)
        return -1;
    if (t != SG_JSON_STRING)
        return jerr(j, "expected a string");
    return parse_string(j, true, out, len);
}

int sg_json_int(sg_json *j, long long *out)
{
    enum sg_json_type t = sg_json_peek(j);
    if (t == SG_JSON_ERROR)
        return -1;
    if (t != SG_JSON_INT)
        return jerr(j, "expected an integer");
    bool neg = false;
    if (j->s[j->pos] == '-') {
        neg = true;
        j->pos++;
    }
    if (j->pos >= j->n || j->s[j->pos] < '0' || j->s[j->pos] > '9')
        return jerr(j, "bad number");
    if (j->s[j->pos] == '0' && j->pos + 1 < j->n && j->s[j->pos + 1] >= '0' && j->s[j->pos + 1] <= '9')
        return jerr(j, "number with a leading zero");
    unsigned long long v = 0;
    while (j->pos < j->n && j->s[j->pos] >= '0' && j->s[j->pos] <= '9') {
        unsigned d = (unsigned)(j->s[j->pos] - '0');
        if (v > (9223372036854775807ull - d) / 10)
            return jerr(j, "integer too large");
        v = v * 10 + d;
        j->pos++;
    }
    if (j->pos < j->n && (j->s[j->pos] == '.' || j->s[j->pos] == 'e' || j->s[j->pos] == 'E'))
        return jerr(j, "non-integer number (only integers are expected)");
    if (out)
        *out = neg ? -(long long)v : (long long)v;
    return 0;
}

int sg_json_enter(sg_json *j)
{
    enum sg_json_type t = sg_json_peek(j);
    if (t == SG_JSON_ERROR)
        return -1;
    if (t != SG_JSON_OBJECT && t != SG_JSON_ARRAY)
        return jerr(j, "expected an object or an array");
    if (j->depth >= SG_JSON_MAX_DEPTH + 1)
        return jerr(j, "nested deeper than %d levels", SG_JSON_MAX_DEPTH);
    j->pos++;
    j->depth++;
    j->fresh[j->depth] = true;
    j->is_obj[j->depth] = t == SG_JSON_OBJECT;
    return 0;
}

int sg_json_next(sg_json *j, const char **key)
{
    if (j->err[0])
        return -1;
    if (j->depth < 1)
        return jerr(j, "not inside an object or array");
    bool obj = j->is_obj[j->depth];
    char close = obj ? '}' : ']';
    skip_ws(j);
    if (j->pos >= j->n)
        return jerr(j, "unterminated %s", obj ? "object" : "array");
    if (j->fresh[j->depth]) {
        j->fresh[j->depth] = false;
        if (j->s[j->pos] == close) {
            j->pos++;
            j->depth--;
            return 0;
        }
    } else {
        if (j->s[j->pos] == close) {
            j->pos++;
            j->depth--;
            return 0;
        }
        if (j->s[j->pos] != ',')
            return jerr(j, "expected ',' or '%c'", close);
        j->pos++;
    }
    if (obj) {
        skip_ws(j);
        if (j->pos >= j->n || j->s[j->pos] != '"')
            return jerr(j, "expected a quoted key");
        const char *k = NULL;
        if (parse_string(j, key != NULL, &k, NULL) < 0)
            return -1;
        skip_ws(j);
        if (j->pos >= j->n || j->s[j->pos] != ':')
            return jerr(j, "expected ':' after a key");
        j->pos++;
        if (key)
            *key = k;
    }
    return 1;
}

int sg_json_skip(sg_json *j)
{
    switch (sg_json_peek(j)) {
    case SG_JSON_OBJECT:
    case SG_JSON_ARRAY: {
        if (sg_json_enter(j) < 0)
            return -1;
        int r;
        while ((r = sg_json_next(j, NULL)) > 0) /* depth is bounded: so is the recursion */
            if (sg_json_skip(j) < 0)
                return -1;
        return r;
    }
    case SG_JSON_STRING:
        return parse_string(j, false, NULL, NULL);
    case SG_JSON_INT:
        return sg_json_int(j, NULL);
    default:
        return -1;
    }
}

int sg_json_finish(sg_json *j)
{
    if (j->err[0])
        return -1;
    if (j->depth != 0)
        return jerr(j, "unterminated %s", j->is_obj[j->depth] ? "object" : "array");
    skip_ws(j);
    if (j->pos != j->n)
        return jerr(j, "unexpected data after the JSON value");
    return 0;
}
