/*
 * fuzz_json.c — libFuzzer target for the JSON pull parser of safetensors
 * headers (nn/json.c).
 *
 * Input: any bytes, read as a JSON text. Each input is walked twice:
 * with sg_json_skip() + sg_json_finish() (what the header reader's first
 * pass does), and with a full walk that enters every container and reads
 * every key, string and integer (what its second pass does). Checked:
 * both walks agree on whether the text is valid; every string read is
 * valid UTF-8, has no NUL inside and lies within the pool; a failure
 * always carries a message; and memory stays bounded (the pool is never
 * larger than the text; ASan sees any overrun).
 */
#include "json_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_string(const sg_json *j, const char *s, size_t len)
{
    if (strlen(s) != len || !sg_json_utf8_ok((const unsigned char *)s, len))
        abort();
    if (s < j->pool || s + len + 1 > j->pool + j->pool_used || j->pool_used > j->n + 1)
        abort();
}

static int walk(sg_json *j)
{
    switch (sg_json_peek(j)) {
    case SG_JSON_OBJECT:
    case SG_JSON_ARRAY: {
        bool obj = sg_json_peek(j) == SG_JSON_OBJECT;
        if (sg_json_enter(j) < 0)
            return -1;
        int r;
        const char *key = NULL;
        while ((r = sg_json_next(j, obj ? &key : NULL)) > 0) {
            if (obj)
                check_string(j, key, strlen(key));
            if (walk(j) < 0)
                return -1;
        }
        return r;
    }
    case SG_JSON_STRING: {
        const char *s = NULL;
        size_t len = 0;
        if (sg_json_string(j, &s, &len) < 0)
            return -1;
        check_string(j, s, len);
        return 0;
    }
    case SG_JSON_INT: {
        long long v;
        return sg_json_int(j, &v);
    }
    default:
        return -1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *text = malloc(size ? size : 1); /* exactly size: ASan sees a read past the end */
    if (!text)
        return 0;
    memcpy(text, data, size);
    sg_json a, b;
    sg_json_init(&a, text, size);
    int ra = sg_json_skip(&a) < 0 || sg_json_finish(&a) < 0 ? -1 : 0;
    if (ra < 0 && !a.err[0])
        abort();
    if (a.pool) /* skipping keeps nothing */
        abort();
    sg_json_init(&b, text, size);
    int rb = walk(&b) < 0 || sg_json_finish(&b) < 0 ? -1 : 0;
    if (rb < 0 && !b.err[0])
        abort();
    if (ra != rb || (ra < 0 && strcmp(a.err, b.err) != 0))
        abort(); /* the two walks disagree */
    sg_json_free(&a);
    sg_json_free(&b);
    free(text);
    return 0;
}
