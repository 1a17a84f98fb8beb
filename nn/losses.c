/*
 * losses.c — the book's losses as compositions of primitives: sum of
 * squares, mean squared error, cross-entropy (one-hot targets or class
 * indices) and softmax-with-loss; plus one-hot and accuracy helpers.
 *
 * Shapes: y is (N,K) for a batch of N or (K) for one sample (N = 1).
 * Targets are one-hot (y's shape) or class indices (N). Indices given as a
 * tensor are floats (how sg_dataset_labels() hands them out); they are
 * turned into a one-hot constant, so every cross-entropy is the same
 * expression -sum(t * log p) / N and no gradient flows to t. The _labels
 * forms take int labels and pick each row's log-probability with the
 * gather primitive instead (-sum(gather(log p, labels)) / N): no (N,K)
 * one-hot is made, and the gradient is gather's scatter-add.
 */
#include "nn_internal.h"

#include <math.h>
#include <stdlib.h>

/* The book's guard against log(0). */
#define SG_CE_EPS 1e-7f

static sg_tensor *need_same_shape(const char *op, sg_tensor *y, sg_tensor *t)
{
    if (!sg_check_tensor(op, y) || !sg_check_tensor(op, t))
        return NULL;
    if (!sg_same_shape(y, t)) {
        char by[96], bt[96];
        sg_set_error("%s: y %s and t %s differ in shape", op, SG_NN_SHAPE(y, by), SG_NN_SHAPE(t, bt));
        return NULL;
    }
    return y;
}

static sg_tensor *sum_squares_loss_body(sg_tensor *y, sg_tensor *t)
{
    if (!need_same_shape("sum_squares_loss", y, t))
        return NULL;
    return sg_mul_scalar(sg_sum_all(sg_square(sg_sub(y, t))), 0.5f);
}

sg_tensor *sg_sum_squares_loss(sg_tensor *y, sg_tensor *t)
{
    const char *token = sg_api_enter("sum_squares_loss");
    sg_tensor *out = sum_squares_loss_body(y, t);
    sg_api_leave(token);
    return out;
}

static sg_tensor *mse_loss_body(sg_tensor *y, sg_tensor *t)
{
    if (!need_same_shape("mse_loss", y, t))
        return NULL;
    if (sg_size(y) == 0) {
        sg_set_error("mse_loss: empty inputs have no mean");
        return NULL;
    }
    return sg_mean_all(sg_square(sg_sub(y, t)));
}

sg_tensor *sg_mse_loss(sg_tensor *y, sg_tensor *t)
{
    const char *token = sg_api_enter("mse_loss");
    sg_tensor *out = mse_loss_body(y, t);
    sg_api_leave(token);
    return out;
}

/* N and K of a prediction (N,K) or (K); -1 with a message otherwise. */
static int batch_dims(const char *op, sg_tensor *y, int *N, int *K)
{
    char b[96];
    if (sg_ndim(y) == 1) {
        *N = 1;
        *K = sg_dim(y, 0);
    } else if (sg_ndim(y) == 2) {
        *N = sg_dim(y, 0);
        *K = sg_dim(y, 1);
    } else {
        sg_set_error("%s: predictions must be (N,K) or (K), got %s", op, SG_NN_SHAPE(y, b));
        return -1;
    }
    if (*N < 1 || *K < 1) {
        sg_set_error("%s: predictions %s are empty", op, SG_NN_SHAPE(y, b));
        return -1;
    }
    return 0;
}

/* n integer labels fit predictions y: n = N, each in [0, K). */
static int labels_ok(const char *op, sg_tensor *y, const int *labels, int n, int *N, int *K)
{
    if (batch_dims(op, y, N, K) < 0)
        return -1;
    if (!labels || n != *N) {
        char b[96];
        sg_set_error("%s: %d labels for predictions %s (expected %d)", op, labels ? n : 0,
                     SG_NN_SHAPE(y, b), *N);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= *K) {
            sg_set_error("%s: label %d of sample %d is outside [0, %d)", op, labels[i], i, *K);
            return -1;
        }
    }
    return 0;
}

/* One-hot constant of y's shape from n integer labels. */
/* t (n, k), zeros, of either dtype: t[i, labels[i]] = 1 (labels checked). */
static void put_ones(sg_tensor *t, const int *labels, int n, int k)
{
    for (int i = 0; i < n; i++) {
        size_t at = (size_t)i * (size_t)k + (size_t)labels[i];
        if (sg_dtype_of(t) == SG_FLOAT64)
            sg_data64(t)[at] = 1.0;
        else
            sg_data(t)[at] = 1.f;
    }
}

static sg_tensor *one_hot_like(const char *op, sg_tensor *y, const int *labels, int n)
{
    int N, K;
    if (labels_ok(op, y, labels, n, &N, &K) < 0)
        return NULL;
    sg_tensor *t = sg_zeros_like(y); /* y's dtype */
    if (!t)
        return NULL;
    put_ones(t, labels, n, K);
    return t;
}

/* The target as a one-hot (or distribution) tensor of y's shape: t itself
 * if it has y's shape, else t read as N class indices. */
static sg_tensor *target_like(const char *op, sg_tensor *y, sg_tensor *t)
{
    if (!sg_check_tensor(op, y) || !sg_check_tensor(op, t))
        return NULL;
    if (sg_same_shape(y, t))
        return t;
    int N, K;
    if (batch_dims(op, y, &N, &K) < 0)
        return NULL;
    bool indices = sg_ndim(y) == 2 ? (sg_ndim(t) == 1 && sg_dim(t, 0) == N) : sg_size(t) == 1;
    if (!indices) {
        char by[96], bt[96];
        sg_set_error("%s: target %s is neither one-hot like %s nor %d class indices", op,
                     SG_NN_SHAPE(t, bt), SG_NN_SHAPE(y, by), N);
        return NULL;
    }
    sg_tensor *t32 = sg_to_dtype(t, SG_FLOAT32); /* indices are whole numbers: exact */
    const float *v = t32 ? sg_data(t32) : NULL;
    if (!v)
        return NULL;
    int small[64];
    int *labels = N <= 64 ? small : malloc((size_t)N * sizeof *labels);
    if (!labels) {
        sg_set_error("%s: out of memory for %d labels", op, N);
        return NULL;
    }
    sg_tensor *r = NULL;
    int i = 0;
    for (; i < N; i++) {
        float f = v[i];
        if (!(f >= 0.f && f < (float)K && f == floorf(f))) {
            sg_set_error("%s: target %g of sample %d is not a class index in [0, %d)", op, f, i, K);
            break;
        }
        labels[i] = (int)f;
    }
    if (i == N)
        r = one_hot_like(op, y, labels, N);
    if (t32 != t)
        sg_tensor_free(t32);
    if (labels != small)
        free(labels);
    return r;
}

/* -sum(t * logp) / N */
static sg_tensor *nll(sg_tensor *logp, sg_tensor *t, int N)
{
    /* -1/N in the tensor's precision (float32: as it always was) */
    double s = sg_dtype_of(logp) == SG_FLOAT64 ? -1.0 / (double)N : (double)(-1.f / (float)N);
    return sg_mul_scalar(sg_sum_all(sg_mul(t, logp)), s);
}

static sg_tensor *cross_entropy_body(sg_tensor *y, sg_tensor *t)
{
    int N, K;
    sg_tensor *oh = target_like("cross_entropy", y, t);
    if (!oh || batch_dims("cross_entropy", y, &N, &K) < 0)
        return NULL;
    return nll(sg_log(sg_add_scalar(y, SG_CE_EPS)), oh, N);
}

sg_tensor *sg_cross_entropy(sg_tensor *y, sg_tensor *t)
{
    const char *token = sg_api_enter("cross_entropy");
    sg_tensor *out = cross_entropy_body(y, t);
    sg_api_leave(token);
    return out;
}

/* -sum(logp[i, labels[i]]) / N: each row's entry picked by gather along
 * the last axis (labels checked against logp's shape first). */
static sg_tensor *nll_labels(const char *op, sg_tensor *logp, const int *labels, int n)
{
    int N, K;
    if (!logp || labels_ok(op, logp, labels, n, &N, &K) < 0)
        return NULL;
    int shape[2] = {N, 1};
    sg_tensor *idx = sg_from_ints(labels, sg_ndim(logp), sg_ndim(logp) == 2 ? shape : shape + 1);
    return sg_mul_scalar(sg_sum_all(sg_gather(logp, -1, idx)), -1.0 / N);
}

static sg_tensor *cross_entropy_labels_body(sg_tensor *y, const int *labels, int n)
{
    if (!sg_check_tensor("cross_entropy_labels", y))
        return NULL;
    int N, K;
    if (labels_ok("cross_entropy_labels", y, labels, n, &N, &K) < 0)
        return NULL;
    return nll_labels("cross_entropy_labels", sg_log(sg_add_scalar(y, SG_CE_EPS)), labels, n);
}

sg_tensor *sg_cross_entropy_labels(sg_tensor *y, const int *labels, int n)
{
    const char *token = sg_api_enter("cross_entropy_labels");
    sg_tensor *out = cross_entropy_labels_body(y, labels, n);
    sg_api_leave(token);
    return out;
}

static sg_tensor *softmax_cross_entropy_body(sg_tensor *x, sg_tensor *t)
{
    int N, K;
    sg_tensor *oh = target_like("softmax_cross_entropy", x, t);
    if (!oh || batch_dims("softmax_cross_entropy", x, &N, &K) < 0)
        return NULL;
    return nll(sg_log_softmax(x), oh, N);
}

sg_tensor *sg_softmax_cross_entropy(sg_tensor *x, sg_tensor *t)
{
    const char *token = sg_api_enter("softmax_cross_entropy");
    sg_tensor *out = softmax_cross_entropy_body(x, t);
    sg_api_leave(token);
    return out;
}

static sg_tensor *softmax_cross_entropy_labels_body(sg_tensor *x, const int *labels, int n)
{
    if (!sg_check_tensor("softmax_cross_entropy_labels", x))
        return NULL;
    int N, K;
    if (labels_ok("softmax_cross_entropy_labels", x, labels, n, &N, &K) < 0)
        return NULL;
    return nll_labels("softmax_cross_entropy_labels", sg_log_softmax(x), labels, n);
}

sg_tensor *sg_softmax_cross_entropy_labels(sg_tensor *x, const int *labels, int n)
{
    const char *token = sg_api_enter("softmax_cross_entropy_labels");
    sg_tensor *out = softmax_cross_entropy_labels_body(x, labels, n);
    sg_api_leave(token);
    return out;
}

sg_tensor *sg_one_hot(const int *labels, int n, int k)
{
    if (n < 0 || k < 1 || (n > 0 && !labels)) {
        sg_set_error("one_hot: bad arguments (%d labels, %d classes)", n, k);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= k) {
            sg_set_error("one_hot: label %d of sample %d is outside [0, %d)", labels[i], i, k);
            return NULL;
        }
    }
    int shape[2] = {n, k};
    const char *token = sg_api_enter("one_hot");
    sg_tensor *t = sg_zeros(2, shape);
    sg_api_leave(token);
    if (!t)
        return NULL;
    put_ones(t, labels, n, k);
    return t;
}

/* The first index of the largest value of a row of K (float32 data, or
 * float64 when row64 is given). */
static size_t argmax_row(const float *row, const double *row64, int K)
{
    size_t best = 0;
    for (int j = 1; j < K; j++)
        if (row64 ? row64[j] > row64[best] : row[j] > row[best])
            best = (size_t)j;
    return best;
}

static float accuracy_of(const float *yd, const double *yd64, const float *td, bool one_hot, int N, int K)
{
    for (int i = 0; !one_hot && i < N; i++) { /* the losses' rule for class indices */
        if (!(td[i] >= 0.f && td[i] < (float)K && td[i] == floorf(td[i]))) {
            sg_set_error("accuracy: target %g of sample %d is not a class index in [0, %d)", td[i], i, K);
            return NAN;
        }
    }
    int correct = 0;
    for (int i = 0; i < N; i++) {
        size_t at = (size_t)i * (size_t)K;
        size_t pred = argmax_row(yd ? yd + at : NULL, yd64 ? yd64 + at : NULL, K);
        size_t want = one_hot ? argmax_row(td + at, NULL, K) : (size_t)td[i];
        correct += pred == want;
    }
    return (float)correct / (float)N;
}

float sg_accuracy(sg_tensor *y, sg_tensor *t)
{
    if (!sg_check_tensor("accuracy", y) || !sg_check_tensor("accuracy", t))
        return NAN;
    int N, K;
    if (batch_dims("accuracy", y, &N, &K) < 0)
        return NAN;
    bool one_hot = sg_same_shape(y, t);
    if (!one_hot && sg_size(t) != (size_t)N) {
        char by[96], bt[96];
        sg_set_error("accuracy: target %s is neither one-hot like %s nor %d class indices",
                     SG_NN_SHAPE(t, bt), SG_NN_SHAPE(y, by), N);
        return NAN;
    }
    /* float64 predictions are compared in float64; targets are 0/1 or
     * whole numbers, exact in float32 */
    const bool f64 = sg_dtype_of(y) == SG_FLOAT64;
    const float *yd = f64 ? NULL : sg_data(y);
    const double *yd64 = f64 ? sg_data64(y) : NULL;
    sg_tensor *t32 = sg_to_dtype(t, SG_FLOAT32);
    const float *td = t32 ? sg_data(t32) : NULL;
    float acc = NAN;
    if ((yd || yd64) && td)
        acc = accuracy_of(yd, yd64, td, one_hot, N, K);
    if (t32 != t)
        sg_tensor_free(t32); /* a persistent copy when no scope is open; else its scope frees it */
    return acc;
}

