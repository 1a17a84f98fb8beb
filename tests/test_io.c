/*
 * test_io.c — Check suite for saving and loading models in the safetensors
 * format (nn/safetensors.c).
 *
 * References: the exact bytes that the reference safetensors serializer
 * (Hugging Face, Rust core of the Python package) produces in its own unit
 * tests, and hand-built files following the Python writer's conventions.
 * Every corrupted-file case checks three things: the load fails, the
 * message names the problem, and the model's values are untouched.
 */
#include "json_internal.h"
#include "sg_autograd.h"
#include "sg_nn.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];

static void setup(void) { sg_clear_error(); }

#define ERR_HAS(s) ck_assert_msg(strstr(sg_last_error(), (s)) != NULL, "error \"%s\" lacks \"%s\"", sg_last_error(), (s))

static const char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)size + 1);
    *n = fread(b, 1, (size_t)size, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
}

/* A safetensors file: header padded with spaces to a multiple of 8 (as the
 * Python writer does), then the data. */
static void write_st(const char *path, const char *header, const void *data, size_t data_len)
{
    size_t h = strlen(header), padded = (h + 7) / 8 * 8;
    unsigned char *b = malloc(8 + padded + data_len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(b + 8, header, h);
    memset(b + 8 + h, ' ', padded - h);
    if (data_len)
        memcpy(b + 8 + padded, data, data_len);
    spit(path, b, 8 + padded + data_len);
    free(b);
}

/* Little-endian bytes of floats. */
static void le_floats(unsigned char *out, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        for (int b = 0; b < 4; b++)
            out[4 * i + b] = (unsigned char)(bits >> (8 * b));
    }
}

/* A model with parameters and buffers (batch-norm running statistics);
 * every value depends on the seed. */
static sg_model *io_model(uint64_t seed)
{
    sg_rng rng;
    sg_rng_seed(&rng, seed);
    sg_model *m = sg_model_new();
    sg_model_add(m, sg_conv2d_new(m, "conv1", 2, 3, 3, 1, 0, SG_INIT_HE, &rng));
    sg_model_add(m, sg_batchnorm_new(m, "bn1", 3));
    sg_model_add(m, sg_linear_new(m, "fc", 5, 4, SG_INIT_HE, &rng));
    ck_assert_msg(!sg_has_error(), "%s", sg_last_error());
    int n;
    const sg_named_param *p = sg_model_params(m, &n);
    for (int i = 0; i < n; i++)
        if (strncmp(p[i].name, "bn1.", 4) == 0 || strcmp(p[i].name + strlen(p[i].name) - 2, ".b") == 0)
            sg_init_fill(p[i].tensor, SG_INIT_UNIFORM(2.f), &rng);
    return m;
}

/* All values of the model, concatenated in registration order. */
static float *snapshot(const sg_model *m, size_t *count)
{
    int n;
    const sg_named_param *p = sg_model_params(m, &n);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += sg_size(p[i].tensor);
    float *s = malloc(total * sizeof *s), *o = s;
    for (int i = 0; i < n; i++) {
        memcpy(o, sg_data(p[i].tensor), sg_size(p[i].tensor) * sizeof *o);
        o += sg_size(p[i].tensor);
    }
    *count = total;
    return s;
}

static bool same_values(const sg_model *m, const float *snap, size_t count)
{
    size_t n;
    float *now = snapshot(m, &n);
    bool same = n == count && memcmp(now, snap, n * sizeof *now) == 0;
    free(now);
    return same;
}

/* ------------------------------------------------------------------------- */

START_TEST(test_roundtrip_exact)
{
    sg_model *a = io_model(1), *b = io_model(2);
    /* awkward values must survive bit for bit */
    float *w = sg_data(sg_model_param(a, "fc.W"));
    w[0] = -0.f;
    w[1] = 1e-45f; /* the smallest subnormal */
    w[2] = INFINITY;
    w[3] = -FLT_MAX;
    w[4] = NAN;
    w[5] = 0.1f;
    const char *path = tmp_path("roundtrip.safetensors");
    ck_assert_msg(sg_model_save(a, path) == 0, "%s", sg_last_error());
    size_t na, nb;
    float *sa = snapshot(a, &na), *sb = snapshot(b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert(memcmp(sa, sb, na * sizeof *sa) != 0);
    ck_assert_msg(sg_model_load(b, path) == 0, "%s", sg_last_error());
    ck_assert(same_values(b, sa, na)); /* exact, including NaN's bits */
    /* the layout: sorted names, contiguous offsets, header padded to 8 */
    size_t size;
    unsigned char *bytes = slurp(path, &size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | bytes[i];
    ck_assert_uint_eq(hlen % 8, 0);
    ck_assert_uint_eq(size, 8 + hlen + 4 * na);
    const char *want =
        "{\"bn1.beta\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
        "\"bn1.gamma\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,24]},"
        "\"bn1.running_mean\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]},"
        "\"bn1.running_var\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[36,48]},"
        "\"conv1.W\":{\"dtype\":\"F32\",\"shape\":[3,2,3,3],\"data_offsets\":[48,264]},"
        "\"conv1.b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[264,276]},"
        "\"fc.W\":{\"dtype\":\"F32\",\"shape\":[5,4],\"data_offsets\":[276,356]},"
        "\"fc.b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[356,372]}}";
    ck_assert_uint_ge(hlen, strlen(want));
    ck_assert_int_eq(memcmp(bytes + 8, want, strlen(want)), 0);
    for (size_t i = strlen(want); i < hlen; i++)
        ck_assert_int_eq(bytes[8 + i], ' ');
    /* the first value of fc.W (-0.0) at data offset 276 */
    ck_assert_int_eq(bytes[8 + hlen + 276 + 3], 0x80);
    free(bytes);
    free(sa);
    free(sb);
    /* no temporary file is left behind */
    ck_assert_int_ne(access(tmp_path("roundtrip.safetensors.tmp"), F_OK), 0);
    sg_model_free(a);
    sg_model_free(b);
}
END_TEST

START_TEST(test_bytes_match_reference_serializer)
{
    /* safetensors' own tests (tensor.rs, test_serialization and
     * test_serialization_forced_alignement): F32 values 0..5 */
    static const unsigned char ref1[] = {
        64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101,
        34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34,
        100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0,
        0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64};
    static const unsigned char ref2[] = {
        72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34,
        58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44,
        34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125,
        32, 32, 32, 32, 32, 32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
        160, 64};
    static const unsigned char ref_empty[] = {8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32};
    const float v[6] = {0, 1, 2, 3, 4, 5};
    struct { const char *name; int ndim; int shape[4]; const unsigned char *ref; size_t len; } cases[] = {
        {"attn.0", 3, {1, 2, 3}, ref1, sizeof ref1},
        {"attn0", 4, {1, 1, 2, 3}, ref2, sizeof ref2},
    };
    for (int k = 0; k < 2; k++) {
        sg_model *m = sg_model_new();
        sg_model_add_param(m, cases[k].name, sg_from_data(v, cases[k].ndim, cases[k].shape), true);
        const char *path = tmp_path("ref.safetensors");
        ck_assert_int_eq(sg_model_save(m, path), 0);
        size_t n;
        unsigned char *bytes = slurp(path, &n);
        ck_assert_uint_eq(n, cases[k].len);
        ck_assert_int_eq(memcmp(bytes, cases[k].ref, n), 0);
        free(bytes);
        /* and the reference bytes load */
        spit(path, cases[k].ref, cases[k].len);
        sg_init_fill(sg_model_param(m, cases[k].name), SG_INIT_ZEROS, NULL);
        ck_assert_msg(sg_model_load(m, path) == 0, "%s", sg_last_error());
        ck_assert_float_eq(sg_data(sg_model_param(m, cases[k].name))[5], 5.f);
        sg_model_free(m);
    }
    sg_model *empty = sg_model_new();
    const char *path = tmp_path("empty.safetensors");
    ck_assert_int_eq(sg_model_save(empty, path), 0);
    size_t n;
    unsigned char *bytes = slurp(path, &n);
    ck_assert_uint_eq(n, sizeof ref_empty);
    ck_assert_int_eq(memcmp(bytes, ref_empty, n), 0);
    free(bytes);
    ck_assert_int_eq(sg_model_load(empty, path), 0);
    sg_model_free(empty);
}
END_TEST

START_TEST(test_load_python_convention_file)
{
    /* what safetensors.torch.save_file({"fc1.W": ..., "fc1.b": ...},
     * metadata={"format": "pt"}) writes: metadata first, tensors by name */
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_model *m = sg_model_new();
    sg_model_add(m, sg_linear_new(m, "fc1", 2, 3, SG_INIT_HE, &rng));
    const float W[6] = {1.5f, -2.f, 0.25f, 3.f, -0.125f, 7.f}, b[3] = {0.5f, -1.f, 2.f};
    unsigned char data[36];
    le_floats(data, W, 6);
    le_floats(data + 24, b, 3);
    const char *path = tmp_path("python.safetensors");
    write_st(path,
             "{\"__metadata__\":{\"format\":\"pt\"},"
             "\"fc1.W\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
             "\"fc1.b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}}",
             data, 36);
    ck_assert_msg(sg_model_load(m, path) == 0, "%s", sg_last_error());
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(sg_data(sg_model_param(m, "fc1.W"))[i], W[i]);
    for (int i = 0; i < 3; i++)
        ck_assert_float_eq(sg_data(sg_model_param(m, "fc1.b"))[i], b[i]);
    /* any key order, whitespace, escapes in names, unknown keys ignored,
     * data in a different order from the keys */
    unsigned char data2[36];
    le_floats(data2, b, 3);
    le_floats(data2 + 12, W, 6);
    sg_init_fill(sg_model_param(m, "fc1.W"), SG_INIT_ZEROS, NULL);
    write_st(path,
             "{\n  \"fc1.\\u0057\" : { \"shape\" : [ 2 , 3 ], \"data_offsets\" : [12, 36], \"dtype\": \"F32\" },\n"
             "  \"fc1\\/b\\u0000\"\n",
             NULL, 0);
    sg_clear_error();
    ck_assert_int_eq(sg_model_load(m, path), -1); /* \u0000 and a cut-off header are refused */
    write_st(path,
             "{\n  \"fc1.\\u0057\" : { \"shape\" : [ 2 , 3 ], \"data_offsets\" : [12, 36], \"dtype\": \"F32\" },\n"
             "  \"__metadata__\": {\"note\": \"caf\\u00e9 \\ud83d\\ude00\", \"x\": \"\"},\n"
             "  \"fc1.b\": {\"dtype\": \"F32\", \"extra\": [1, [2], {\"k\": \"v\"}], \"shape\": [3], "
             "\"data_offsets\": [0, 12]}\n}\n",
             data2, 36);
    ck_assert_msg(sg_model_load(m, path) == 0, "%s", sg_last_error());
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(sg_data(sg_model_param(m, "fc1.W"))[i], W[i]);
    ck_assert_float_eq(sg_data(sg_model_param(m, "fc1.b"))[2], 2.f);
    sg_model_free(m);
}
END_TEST

/* ---- corrupted files: each must fail, name the problem, change nothing ---- */

typedef struct bad_case {
    const char *header; /* NULL: raw bytes below */
    const unsigned char *raw;
    size_t raw_len;
    size_t data_len;    /* bytes of data after the header */
    const char *expect; /* part of the message */
} bad_case;

/* a model with a (2) and b (3): the smallest interesting target */
static sg_model *ab_model(void)
{
    sg_model *m = sg_model_new();
    sg_model_add_param(m, "a", sg_from_data((float[]){1, 2}, SG_DIMS(2)), true);
    sg_model_add_param(m, "b", sg_from_data((float[]){3, 4, 5}, SG_DIMS(3)), false);
    return m;
}

#define A_OK "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"
#define B_OK "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20]}"

START_TEST(test_corrupt_files)
{
    static const unsigned char too_short[5] = {1, 2, 3, 4, 5};
    static const unsigned char huge_len[16] = {0, 0, 0, 0, 0, 0, 0, 0x40, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    static const unsigned char cut_header[12] = {64, 0, 0, 0, 0, 0, 0, 0, '{', '"', 'a', '"'};
    static const unsigned char bad_utf8[] = {24, 0, 0, 0, 0, 0, 0, 0, '{', '"', 0xC3, 0x28, '"', ':', '{', '}', '}',
                                             ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
                                             ' '};
    char deep[400];
    strcpy(deep, "{\"a\":");
    for (int i = 0; i < 100; i++)
        strcat(deep, "[");
    for (int i = 0; i < 100; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    const bad_case cases[] = {
        /* names */
        {"{" A_OK "}", NULL, 0, 8, "tensor \"b\" is missing from the file"},
        {"{" A_OK "," B_OK ",\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[20,24]}}", NULL, 0, 24,
         "extra tensor \"c\""},
        {"{" A_OK "," B_OK "," A_OK "}", NULL, 0, 20, "overlap"},
        /* shapes and dtypes */
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[1,3],\"data_offsets\":[8,20]}}", NULL, 0, 20,
         "tensor \"b\" has shape (1,3) in the file but (3) in the model"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[8,14]}}", NULL, 0, 14,
         "tensor \"b\" has dtype F16; only F32"},
        {"{" A_OK ",\"b\":{\"dtype\":\"Q4\",\"shape\":[3],\"data_offsets\":[8,20]}}", NULL, 0, 20, "unknown dtype"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,16]}}", NULL, 0, 16,
         "needs 12 bytes"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[-3],\"data_offsets\":[8,20]}}", NULL, 0, 20, "shape"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,24]}}", NULL, 0, 24, "hole"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[20,8]}}", NULL, 0, 20, "data_offsets"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3]}}", NULL, 0, 20, "has no \"data_offsets\""},
        {"{" A_OK ",\"b\":[1,2]}", NULL, 0, 20, "not an object"},
        {"{" A_OK "," B_OK ",\"__metadata__\":{\"k\":1}}", NULL, 0, 20, "__metadata__"},
        /* sizes */
        {"{" A_OK "," B_OK "}", NULL, 0, 16, "truncated: the tensors need 20 bytes of data but the file holds 16"},
        {"{" A_OK "," B_OK "}", NULL, 0, 24, "4 unexpected bytes after the last tensor"},
        {NULL, too_short, sizeof too_short, 0, "truncated: 5 bytes"},
        {NULL, cut_header, sizeof cut_header, 0, "truncated: the header claims 64 bytes but only 4 follow"},
        {NULL, huge_len, sizeof huge_len, 0, "exceeds the limit"},
        /* JSON */
        {"{" A_OK "," B_OK, NULL, 0, 20, "corrupt header: unterminated object"},
        {"{" A_OK "," B_OK "}}", NULL, 0, 20, "unexpected data after the JSON value"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,2e1]}}", NULL, 0, 20, "non-integer"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,020]}}", NULL, 0, 20, "leading zero"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,99999999999999999999]}}", NULL, 0, 20,
         "too large"},
        {"{" A_OK ",\"b\":{\"dtype\":true,\"shape\":[3],\"data_offsets\":[8,20]}}", NULL, 0, 20, "true, false or null"},
        {"{" A_OK ",\"b\\q\":{}}", NULL, 0, 20, "bad escape"},
        {"{" A_OK ",\"b\\ud800\":{}}", NULL, 0, 20, "surrogate"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20],}}", NULL, 0, 20, "quoted key"},
        {"{" A_OK " " B_OK "}", NULL, 0, 20, "expected ','"},
        {"{" A_OK ",\"b\"{}}", NULL, 0, 20, "expected ':'"},
        {"[1,2]", NULL, 0, 0, "not a JSON object"},
        {"", NULL, 0, 0, "unexpected end"},
        {"{\"a\":\"unterminated}", NULL, 0, 0, "unterminated string"},
        {"{\"a\":\"tab\there\"}", NULL, 0, 0, "control character"},
        {deep, NULL, 0, 0, "nested deeper than"},
        {NULL, bad_utf8, sizeof bad_utf8, 0, "invalid UTF-8"},
        {"{" A_OK "," B_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[20,20]}}", NULL, 0, 20,
         "appears twice"},
    };
    sg_model *m = ab_model();
    size_t count;
    float *snap = snapshot(m, &count);
    unsigned char data[64];
    for (int i = 0; i < 16; i++)
        le_floats(data + 4 * i, (float[]){100.f + (float)i}, 1); /* differs from the model */
    const char *path = tmp_path("bad.safetensors");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (cases[k].header)
            write_st(path, cases[k].header, data, cases[k].data_len);
        else
            spit(path, cases[k].raw, cases[k].raw_len);
        sg_clear_error();
        ck_assert_msg(sg_model_load(m, path) == -1, "case %zu (%s) loaded", k, cases[k].expect);
        ck_assert_msg(strstr(sg_last_error(), cases[k].expect) != NULL, "case %zu: \"%s\" lacks \"%s\"", k,
                      sg_last_error(), cases[k].expect);
        ck_assert_msg(strstr(sg_last_error(), "model_load: ") == sg_last_error(), "case %zu: %s", k, sg_last_error());
        ck_assert_msg(same_values(m, snap, count), "case %zu changed the model", k);
    }
    /* a missing file */
    sg_clear_error();
    ck_assert_int_eq(sg_model_load(m, tmp_path("does-not-exist.safetensors")), -1);
    ERR_HAS("cannot open");
    /* the control: the same layout with good values loads */
    write_st(path, "{" A_OK "," B_OK "}", data, 20);
    sg_clear_error();
    ck_assert_msg(sg_model_load(m, path) == 0, "%s", sg_last_error());
    ck_assert_float_eq(sg_data(sg_model_param(m, "b"))[2], 104.f);
    free(snap);
    sg_model_free(m);
}
END_TEST

START_TEST(test_partial_file_changes_nothing)
{
    /* a file whose first tensors are fine but whose last one is wrong must
     * not load the fine ones either */
    sg_model *a = io_model(1), *b = io_model(2);
    const char *good = tmp_path("good.safetensors"), *bad = tmp_path("partial.safetensors");
    ck_assert_int_eq(sg_model_save(b, good), 0);
    size_t n;
    unsigned char *bytes = slurp(good, &n);
    char *shape = strstr((char *)bytes + 8, "\"shape\":[4]"); /* fc.b, the last tensor */
    ck_assert_ptr_nonnull(shape);
    shape[9] = '5';                                       /* [5]: 20 bytes, the offsets say 16 */
    spit(bad, bytes, n);
    free(bytes);
    size_t count;
    float *snap = snapshot(a, &count);
    sg_clear_error();
    ck_assert_int_eq(sg_model_load(a, bad), -1);
    ERR_HAS("fc.b");
    ck_assert(same_values(a, snap, count));
    /* a model with another layer size: the shape message names both */
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_model *c = sg_model_new();
    sg_model_add(c, sg_conv2d_new(c, "conv1", 2, 3, 3, 1, 0, SG_INIT_HE, &rng));
    sg_model_add(c, sg_batchnorm_new(c, "bn1", 3));
    sg_model_add(c, sg_linear_new(c, "fc", 5, 6, SG_INIT_HE, &rng));
    sg_clear_error();
    ck_assert_int_eq(sg_model_load(c, good), -1);
    ERR_HAS("tensor \"fc.W\" has shape (5,4) in the file but (5,6) in the model");
    free(snap);
    sg_model_free(a);
    sg_model_free(b);
    sg_model_free(c);
}
END_TEST

START_TEST(test_save_errors_and_generic_api)
{
    sg_model *m = ab_model();
    sg_clear_error();
    ck_assert_int_eq(sg_model_save(m, "/nonexistent-dir/x.safetensors"), -1);
    ERR_HAS("cannot create");
    sg_clear_error();
    ck_assert_int_eq(sg_model_save(NULL, tmp_path("x")), -1);
    ERR_HAS("NULL model");
    /* the generic functions: any named tensors, e.g. an optimizer's state */
    sg_tensor *v = sg_from_data((float[]){1, 2, 3}, SG_DIMS(3)), *w = sg_zeros(SG_DIMS(3));
    sg_named_param list[2] = {{"state.v", v, false}, {"state.v", w, false}};
    sg_clear_error();
    ck_assert_int_eq(sg_safetensors_save(tmp_path("g.safetensors"), list, 2), -1);
    ERR_HAS("used twice");
    ck_assert_int_eq(sg_safetensors_save(tmp_path("g.safetensors"), list, 1), 0);
    sg_named_param into = {"state.v", w, false};
    ck_assert_int_eq(sg_safetensors_load(tmp_path("g.safetensors"), &into, 1), 0);
    ck_assert_float_eq(sg_data(w)[2], 3.f);
    list[1].name = "bad\x01name";
    sg_clear_error();
    ck_assert_int_eq(sg_safetensors_save(tmp_path("g.safetensors"), list + 1, 1), -1);
    ERR_HAS("control character");
    sg_clear_error();
    ck_assert_int_eq(sg_safetensors_load(NULL, &into, 1), -1);
    sg_tensor_free(v);
    sg_tensor_free(w);
    sg_model_free(m);
    sg_clear_error();
}
END_TEST


/* ---- bounded reading (issue 12, part 8) ---- */

/* Peak resident memory of this process so far, in MB. */
static double peak_rss_mb(void)
{
    struct rusage ru;
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
    return (double)ru.ru_maxrss / 1024.0; /* kB on Linux */
}

START_TEST(test_load_not_regular_files)
{
    /* Only a regular file is read: /dev/zero never ends (it used to be read
     * up to 4 GB), a FIFO may never answer, a directory is no data ("read
     * error" before). Each message names the function, the path and why. */
    sg_model *m = ab_model();
    size_t count;
    float *snap = snapshot(m, &count);
    char want[400];
    sg_clear_error();
    ck_assert_int_eq(sg_model_load(m, "/dev/zero"), -1);
    ck_assert_str_eq(sg_last_error(),
                     "model_load: /dev/zero is not a regular file (a character device): only regular files are read");
    sg_clear_error();
    ck_assert_int_eq(sg_model_load(m, tmpdir), -1);
    snprintf(want, sizeof want, "model_load: %s is a directory, not a file", tmpdir);
    ck_assert_str_eq(sg_last_error(), want);
    const char *fifo = tmp_path("fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    sg_clear_error();
    ck_assert_int_eq(sg_model_load(m, fifo), -1); /* returns at once: no writer is waited for */
    snprintf(want, sizeof want, "model_load: %s is not a regular file (a FIFO (named pipe))", fifo);
    ERR_HAS(want);
    sg_named_param into = {"a", sg_model_param(m, "a"), true};
    sg_clear_error();
    ck_assert_int_eq(sg_safetensors_load("/dev/zero", &into, 1), -1);
    ERR_HAS("safetensors_load: /dev/zero is not a regular file");
    ck_assert(same_values(m, snap, count));
    remove(fifo);
    free(snap);
    sg_model_free(m);
}
END_TEST

START_TEST(test_header_memory_bounded)
{
    /* A 16 MB header holding 8 million integers under an unknown key of an
     * entry (which the reader skips, as the reference reader does) loads
     * with memory of the order of the header itself; the old tree parser
     * spent ~56 bytes per value (~450 MB here) before looking at any. */
    const size_t n_ints = 8u << 20;
    size_t cap = 2 * n_ints + 256;
    char *h = malloc(cap);
    ck_assert_ptr_nonnull(h);
    int o = snprintf(h, cap, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":[");
    for (size_t i = 0; i < n_ints; i++) {
        h[o++] = '0';
        h[o++] = ',';
    }
    o--; /* the last comma */
    snprintf(h + o, cap - (size_t)o, "]}," B_OK "}");
    unsigned char data[20];
    le_floats(data, (float[]){10, 11, 12, 13, 14}, 5);
    const char *path = tmp_path("big-header.safetensors");
    write_st(path, h, data, sizeof data);
    free(h);
    sg_model *m = ab_model();
    double before = peak_rss_mb();
    sg_clear_error();
    ck_assert_msg(sg_model_load(m, path) == 0, "%s", sg_last_error());
    double grew = peak_rss_mb() - before;
    ck_assert_float_eq(sg_data(sg_model_param(m, "b"))[2], 14.f);
    /* the header (16 MB) plus slack for the allocator and sanitizers */
    ck_assert_msg(grew < 100.0, "loading a 16 MB header raised the peak memory by %.0f MB", grew);
    remove(path);
    sg_model_free(m);
}
END_TEST

START_TEST(test_entry_key_twice)
{
    /* a key given twice inside an entry: which one counts would be a guess */
    sg_model *m = ab_model();
    unsigned char data[20] = {0};
    const char *path = tmp_path("bad.safetensors");
    write_st(path, "{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"shape\":[5],\"data_offsets\":[8,20]}}", data,
             20);
    sg_clear_error();
    ck_assert_int_eq(sg_model_load(m, path), -1);
    ERR_HAS("corrupt header: tensor \"b\" has \"shape\" twice");
    sg_model_free(m);
}
END_TEST

/* "__metadata__" (checkpoints keep their bookkeeping there): written
 * before the tensors with its keys sorted and strings escaped, as the
 * reference writer does; read back in file order; tensors load as before;
 * the Python convention file's {"format": "pt"} is read; bad entries are
 * refused with a message. */
START_TEST(test_metadata_roundtrip)
{
    const float v[2] = {1.5f, -2.f};
    sg_tensor *t = sg_from_data(v, SG_DIMS(2));
    sg_named_param p = {"w", t, false};
    const sg_safetensors_meta md[3] = {{"epoch", "5"}, {"b \"q\"", "tab\there\x01"}, {"a", ""}};
    const char *path = tmp_path("meta.safetensors");
    ck_assert_msg(sg_safetensors_save_meta(path, &p, 1, md, 3) == 0, "%s", sg_last_error());
    size_t n;
    unsigned char *b = slurp(path, &n);
    const char *want = "{\"__metadata__\":{\"a\":\"\",\"b \\\"q\\\"\":\"tab\\u0009here\\u0001\",\"epoch\":\"5\"},"
                       "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
    ck_assert_msg(n > 8 + strlen(want) && !memcmp(b + 8, want, strlen(want)), "header: %.*s", (int)(n - 8), b + 8);
    free(b);
    int nm = -1;
    sg_safetensors_meta *got = sg_safetensors_metadata(path, &nm);
    ck_assert_msg(got != NULL, "%s", sg_last_error());
    ck_assert_int_eq(nm, 3);
    ck_assert_str_eq(got[0].key, "a"); /* file order: sorted */
    ck_assert_str_eq(sg_safetensors_meta_get(got, nm, "epoch"), "5");
    ck_assert_str_eq(sg_safetensors_meta_get(got, nm, "b \"q\""), "tab\there\x01");
    ck_assert_str_eq(sg_safetensors_meta_get(got, nm, "a"), "");
    ck_assert_ptr_null(sg_safetensors_meta_get(got, nm, "missing"));
    ck_assert_ptr_null(sg_safetensors_meta_get(NULL, 3, "a"));
    free(got);
    sg_tensor *into = sg_zeros(SG_DIMS(2));
    sg_named_param q = {"w", into, false};
    ck_assert_msg(sg_safetensors_load(path, &q, 1) == 0, "%s", sg_last_error());
    ck_assert(!memcmp(sg_data(into), v, sizeof v));
    /* no metadata: an empty list, not an error */
    ck_assert_int_eq(sg_safetensors_save(path, &p, 1), 0);
    got = sg_safetensors_metadata(path, &nm);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(nm, 0);
    free(got);
    /* the Python writer's convention */
    const char *py = tmp_path("py.safetensors");
    unsigned char data[8] = {0};
    write_st(py, "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
             data, 8);
    got = sg_safetensors_metadata(py, &nm);
    ck_assert_msg(got && nm == 1 && !strcmp(got[0].key, "format") && !strcmp(got[0].value, "pt"), "%s",
                  sg_last_error());
    free(got);
    /* refusals */
    const sg_safetensors_meta twice[2] = {{"k", "1"}, {"k", "2"}}, null_value[1] = {{"k", NULL}},
                              not_utf8[1] = {{"k", "\xff"}};
    ck_assert_int_eq(sg_safetensors_save_meta(path, &p, 1, twice, 2), -1);
    ERR_HAS("safetensors_save_meta: ");
    ERR_HAS("the metadata key \"k\" is given twice");
    sg_clear_error();
    ck_assert_int_eq(sg_safetensors_save_meta(path, &p, 1, null_value, 1), -1);
    ERR_HAS("metadata entry 0 (key \"k\") is NULL");
    sg_clear_error();
    ck_assert_int_eq(sg_safetensors_save_meta(path, &p, 1, not_utf8, 1), -1);
    ERR_HAS("metadata entry 0 (key \"k\") is not valid UTF-8");
    sg_clear_error();
    ck_assert_int_eq(sg_safetensors_save_meta(path, &p, 1, NULL, 1), -1);
    ERR_HAS("bad arguments");
    sg_clear_error();
    write_st(py, "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", NULL, 0);
    nm = 7;
    ck_assert_ptr_null(sg_safetensors_metadata(py, &nm));
    ck_assert_int_eq(nm, 0);
    ERR_HAS("safetensors_metadata: ");
    ERR_HAS("\"__metadata__\" has the key \"k\" twice");
    sg_clear_error();
    write_st(py, "{\"__metadata__\":{\"k\":1}}", NULL, 0);
    ck_assert_ptr_null(sg_safetensors_metadata(py, &nm));
    ERR_HAS("\"__metadata__\" must map strings to strings");
    sg_clear_error();
    write_st(py, "{\"__metadata__\":{},\"__metadata__\":{}}", NULL, 0);
    ck_assert_ptr_null(sg_safetensors_metadata(py, &nm));
    ERR_HAS("\"__metadata__\" appears twice");
    sg_clear_error();
    write_st(py, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data, 4);
    ck_assert_ptr_null(sg_safetensors_metadata(py, &nm)); /* the layout is checked too */
    ERR_HAS("truncated");
    sg_clear_error();
    ck_assert_ptr_null(sg_safetensors_metadata(py, NULL));
    ERR_HAS("safetensors_metadata: n_meta is NULL");
    sg_clear_error();
    ck_assert_ptr_null(sg_safetensors_metadata(NULL, &nm));
    ERR_HAS("safetensors_metadata: bad arguments");
    sg_clear_error();
    sg_clear_error();
    sg_tensor_free(t);
    sg_tensor_free(into);
}
END_TEST

/* ---- messages (issue 12, part 7): user-given names are escaped ---- */

START_TEST(test_control_chars_escaped)
{
    sg_model *m = ab_model();
    unsigned char data[32] = {0};
    const char *path = tmp_path("bad.safetensors");
    /* a tensor name from the file, with ESC [31m (red) in it */
    write_st(path, "{" A_OK "," B_OK ",\"c\\u001b[31m\\n\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[20,24]}}",
             data, 24);
    sg_clear_error();
    ck_assert_int_eq(sg_model_load(m, path), -1);
    ERR_HAS("extra tensor \"c\\x1b[31m\\x0a\"");
    ck_assert_ptr_null(strchr(sg_last_error(), '\x1b'));
    ck_assert_ptr_null(strchr(sg_last_error(), '\n'));
    /* a path with control characters and a backslash */
    char bad_path[300];
    snprintf(bad_path, sizeof bad_path, "%s/x\x1b]0;title\x07\\y", tmpdir);
    sg_clear_error();
    ck_assert_int_eq(sg_model_load(m, bad_path), -1);
    ERR_HAS("/x\\x1b]0;title\\x07\\\\y: cannot open");
    ck_assert_ptr_null(strchr(sg_last_error(), '\x1b'));
    ck_assert_ptr_null(strchr(sg_last_error(), '\x07'));
    /* a caller's name refused on save */
    sg_named_param bad = {"bad\x01name", sg_model_param(m, "a"), true};
    sg_clear_error();
    ck_assert_int_eq(sg_safetensors_save(tmp_path("g.safetensors"), &bad, 1), -1);
    ERR_HAS("name \"bad\\x01name\" contains a control character");
    ck_assert_ptr_null(strchr(sg_last_error(), '\x01'));
    sg_model_free(m);
}
END_TEST

/* ---- the JSON pull parser (nn/json.c) ---- */

START_TEST(test_json_walk)
{
    static const char text[] = " {\"k\\u00e9y\": [1, -2, 9223372036854775807], \"s\": \"a\\\"b\\ud83d\\ude00\","
                               " \"skip\": {\"x\": [[], {}, \"\\n\"]}} ";
    sg_json j;
    sg_json_init(&j, text, sizeof text - 1);
    ck_assert_int_eq(sg_json_peek(&j), SG_JSON_OBJECT);
    ck_assert_int_eq(sg_json_enter(&j), 0);
    const char *key, *str;
    size_t len;
    long long v[3];
    ck_assert_int_eq(sg_json_next(&j, &key), 1);
    ck_assert_str_eq(key, "k\xc3\xa9y");
    ck_assert_int_eq(sg_json_enter(&j), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sg_json_next(&j, NULL), 1);
        ck_assert_int_eq(sg_json_int(&j, &v[i]), 0);
    }
    ck_assert_int_eq(sg_json_next(&j, NULL), 0);
    ck_assert(v[0] == 1 && v[1] == -2 && v[2] == 9223372036854775807LL);
    ck_assert_int_eq(sg_json_next(&j, &key), 1);
    ck_assert_str_eq(key, "s");
    ck_assert_int_eq(sg_json_string(&j, &str, &len), 0);
    ck_assert_str_eq(str, "a\"b\xf0\x9f\x98\x80");
    ck_assert_uint_eq(len, 7);
    ck_assert_int_eq(sg_json_next(&j, &key), 1);
    ck_assert_str_eq(key, "skip");
    size_t pool = j.pool_used;
    ck_assert_int_eq(sg_json_skip(&j), 0);
    ck_assert_uint_eq(j.pool_used, pool); /* a skipped value keeps nothing */
    ck_assert_int_eq(sg_json_next(&j, &key), 0);
    ck_assert_int_eq(sg_json_finish(&j), 0);
    ck_assert_str_eq(j.err, "");
    sg_json_free(&j);
}
END_TEST

START_TEST(test_json_errors)
{
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"", "unexpected end at byte 0"},
        {"[1,]", "unexpected character ']' at byte 3"},
        {"[1 2]", "expected ',' or ']' at byte 3"},
        {"{\"a\" 1}", "expected ':' after a key at byte 5"},
        {"{1:2}", "expected a quoted key at byte 1"},
        {"[01]", "number with a leading zero at byte 1"},
        {"[1.5]", "non-integer number (only integers are expected) at byte 2"},
        {"[-]", "bad number at byte 2"},
        {"[9223372036854775808]", "integer too large at byte 19"},
        {"[null]", "unsupported JSON value (true, false or null) at byte 1"},
        {"[\"\\u0000\"]", "\\u0000 in a string at byte 8"},
        {"[\"\\udc00\"]", "unpaired surrogate in a \\u escape at byte 8"},
        {"[\"\xc0\xaf\"]", "invalid UTF-8 in a string at byte 2"},
        {"[\"\x1f\"]", "control character 0x1f in a string at byte 2"},
        {"[1] x", "unexpected data after the JSON value at byte 4"},
        {"[[1]", "unterminated array at byte 4"},
        {"[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]", "nested deeper than 16 levels at byte 17"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sg_json j;
        sg_json_init(&j, cases[k].text, strlen(cases[k].text));
        ck_assert_msg(sg_json_skip(&j) < 0 || sg_json_finish(&j) < 0, "case %zu passed", k);
        ck_assert_msg(strcmp(j.err, cases[k].err) == 0, "case %zu: \"%s\", expected \"%s\"", k, j.err,
                      cases[k].err);
        ck_assert_int_eq(sg_json_next(&j, NULL), -1); /* sticky */
        sg_json_free(&j);
    }
    /* 17 levels are fine */
    sg_json j;
    sg_json_init(&j, "[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]", 34);
    ck_assert_int_eq(sg_json_skip(&j), 0);
    ck_assert_int_eq(sg_json_finish(&j), 0);
    /* the length is the end, not a NUL */
    sg_json_init(&j, "[12]", 3);
    ck_assert_int_eq(sg_json_skip(&j), -1);
    ck_assert_str_eq(j.err, "unterminated array at byte 3");
}
END_TEST

static Suite *io_suite(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("safetensors");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_roundtrip_exact);
    tcase_add_test(tc, test_bytes_match_reference_serializer);
    tcase_add_test(tc, test_load_python_convention_file);
    tcase_add_test(tc, test_corrupt_files);
    tcase_add_test(tc, test_partial_file_changes_nothing);
    tcase_add_test(tc, test_save_errors_and_generic_api);
    suite_add_tcase(s, tc);

    tc = tcase_create("bounded_reading");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60); /* the 16 MB header under valgrind */
    tcase_add_test(tc, test_load_not_regular_files);
    tcase_add_test(tc, test_header_memory_bounded);
    tcase_add_test(tc, test_entry_key_twice);
    tcase_add_test(tc, test_metadata_roundtrip);
    suite_add_tcase(s, tc);

    tc = tcase_create("messages");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_control_chars_escaped);
    suite_add_tcase(s, tc);

    tc = tcase_create("json");
    tcase_add_test(tc, test_json_walk);
    tcase_add_test(tc, test_json_errors);
    suite_add_tcase(s, tc);
    return s;
}

static void remove_tree(void)
{
    const char *names[] = {"roundtrip.safetensors", "ref.safetensors", "empty.safetensors", "python.safetensors",
                           "bad.safetensors", "good.safetensors", "partial.safetensors", "g.safetensors", "fifo", "big-header.safetensors"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        remove(tmp_path(names[i]));
    rmdir(tmpdir);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sg_test_io_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(io_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_tree();
    sg_release_memory();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
