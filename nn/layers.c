/*
 * layers.c — the layers as functions of tensors: linear (affine), conv2d,
 * max/average pooling, global average pooling, residual addition, dropout,
 * batch normalisation. Each checks its shapes, then composes primitives.
 *
 *   conv2d:  cols = reshape(unfold(x), N, OH*OW, C*KH*KW)
 *            y    = [b as (FN,1) +] reshape(W, FN, -1) @ cols^T   (N, FN, OH*OW)
 *            out  = reshape(y, N,FN,OH,OW)
 *            (one shared matrix times the batch of images' columns: the
 *            result is already NCHW, with no transpose to copy)
 *   pooling: each channel is its own image: reshape x to (N*C,1,H,W),
 *            unfold to (N*C*OH*OW, K*K), reduce axis 1 (max or mean); the
 *            rows are already ordered (n, c, oh, ow), so a reshape to
 *            (N,C,OH,OW) finishes (no transpose, unlike the book's im2col).
 *            Windows that tile x exactly (stride = K, no padding, K divides
 *            H and W) need no unfold: x is (N*C*OH, K, OW, K) as it lies, and
 *            reducing axes 1 and 3 gives the same values without the copy.
 *   batchnorm: statistics over axis 0 of (N,D), or axes 0,2,3 of (N,C,H,W),
 *            kept as (1,D) / (1,C,1,1) so they broadcast back.
 *
 * The running statistics of batch normalisation are plain buffers updated
 * in place from the batch's values; they are not part of any graph.
 */
#include "nn_internal.h"

#include <math.h>

static sg_tensor *linear_body(sg_tensor *x, sg_tensor *W, sg_tensor *b)
{
    if (!sg_check_tensor("linear", x) || !sg_check_tensor("linear", W))
        return NULL;
    char bx[96], bw[96], bb[96];
    if (sg_ndim(W) != 2) {
        sg_set_error("linear: weight %s must be (in,out)", SG_NN_SHAPE(W, bw));
        return NULL;
    }
    if (sg_ndim(x) < 1 || sg_dim(x, -1) != sg_dim(W, 0)) {
        sg_set_error("linear: input %s and weight %s do not align", SG_NN_SHAPE(x, bx), SG_NN_SHAPE(W, bw));
        return NULL;
    }
    if (b && (sg_ndim(b) != 1 || sg_dim(b, 0) != sg_dim(W, 1))) {
        sg_set_error("linear: bias %s does not match weight %s (expected (%d))", SG_NN_SHAPE(b, bb),
                     SG_NN_SHAPE(W, bw), sg_dim(W, 1));
        return NULL;
    }
    /* with a bias, addmm starts from b and adds x @ W: no separate product */
    if (sg_ndim(x) == 1) { /* one sample: (in) -> (1,in) -> (out) */
        int row[2] = {1, sg_dim(x, 0)}, out = sg_dim(W, 1);
        sg_tensor *x2 = sg_reshape(x, 2, row);
        return sg_reshape(b ? sg_addmm(b, x2, W) : sg_matmul(x2, W), 1, &out);
    }
    return b ? sg_addmm(b, x, W) : sg_matmul(x, W);
}

sg_tensor *sg_linear(sg_tensor *x, sg_tensor *W, sg_tensor *b)
{
    const char *token = sg_api_enter("linear");
    sg_tensor *out = linear_body(x, W, b);
    sg_api_leave(token);
    return out;
}

static sg_tensor *conv2d_body(sg_tensor *x, sg_tensor *W, sg_tensor *b, int stride, int pad)
{
    if (!sg_check_tensor("conv2d", x) || !sg_check_tensor("conv2d", W))
        return NULL;
    char bx[96], bw[96], bb[96];
    if (sg_ndim(x) != 4 || sg_ndim(W) != 4) {
        sg_set_error("conv2d: input %s must be (N,C,H,W) and weight %s (FN,C,KH,KW)", SG_NN_SHAPE(x, bx),
                     SG_NN_SHAPE(W, bw));
        return NULL;
    }
    const int N = sg_dim(x, 0), C = sg_dim(x, 1), H = sg_dim(x, 2), Wd = sg_dim(x, 3);
    const int FN = sg_dim(W, 0), KH = sg_dim(W, 2), KW = sg_dim(W, 3);
    if (sg_dim(W, 1) != C) {
        sg_set_error("conv2d: input %s has %d channels but weight %s expects %d", SG_NN_SHAPE(x, bx), C,
                     SG_NN_SHAPE(W, bw), sg_dim(W, 1));
        return NULL;
    }
    if (b && (sg_ndim(b) != 1 || sg_dim(b, 0) != FN)) {
        sg_set_error("conv2d: bias %s does not match weight %s (expected (%d))", SG_NN_SHAPE(b, bb),
                     SG_NN_SHAPE(W, bw), FN);
        return NULL;
    }
    if (stride < 1 || pad < 0) {
        sg_set_error("conv2d: stride %d must be >= 1 and padding %d >= 0", stride, pad);
        return NULL;
    }
    /* (H + 2P - KH) / S + 1 in 64 bits: 2P alone can pass INT_MAX */
    const int64_t OH = H + 2 * (int64_t)pad < KH ? -1 : (H + 2 * (int64_t)pad - KH) / stride + 1;
    const int64_t OW = Wd + 2 * (int64_t)pad < KW ? -1 : (Wd + 2 * (int64_t)pad - KW) / stride + 1;
    if (OH <= 0 || OW <= 0 || KH < 1 || KW < 1) {
        sg_set_error("conv2d: a %dx%d kernel with stride %d and padding %d does not fit input %s", KH, KW,
                     stride, pad, SG_NN_SHAPE(x, bx));
        return NULL;
    }
    /* the columns (N*OH*OW, C*KH*KW) and the output (N, FN, OH, OW),
     * checked before any int product is formed */
    const int64_t rows = sg_count_mul(sg_count_mul(N, OH), OW), ncol = sg_count_mul(sg_count_mul(C, KH), KW);
    const int64_t cols_dims[2] = {rows, ncol}, out_dims[4] = {N, FN, OH, OW};
    if (!sg_shape_fits("conv2d", "columns (N*OH*OW, C*KH*KW)", 2, cols_dims, NULL) ||
        !sg_shape_fits("conv2d", "output (N,FN,OH,OW)", 4, out_dims, NULL))
        return NULL;
    sg_window w = {.kh = KH, .kw = KW, .sh = stride, .sw = stride, .ph = pad, .pw = pad, .pad_value = 0.f};
    int wflat[2] = {FN, (int)ncol}, cols3[3] = {N, (int)(OH * OW), (int)ncol}, bcol[2] = {FN, 1};
    int out[4] = {N, FN, (int)OH, (int)OW};
    sg_tensor *wf = sg_reshape(W, 2, wflat), *cols = sg_reshape(sg_unfold(x, w), 3, cols3);
    sg_tensor *y = b ? sg_addmm_t(sg_reshape(b, 2, bcol), wf, cols, false, true)
                     : sg_matmul_t(wf, cols, false, true);
    return sg_reshape(y, 4, out);
}

sg_tensor *sg_conv2d(sg_tensor *x, sg_tensor *W, sg_tensor *b, int stride, int pad)
{
    const char *token = sg_api_enter("conv2d");
    sg_tensor *out = conv2d_body(x, W, b, stride, pad);
    sg_api_leave(token);
    return out;
}

static sg_tensor *pool(const char *op, sg_tensor *x, int k, int stride, int pad, bool is_max)
{
    if (!sg_check_tensor(op, x))
        return NULL;
    char bx[96];
    if (sg_ndim(x) != 4) {
        sg_set_error("%s: input %s must be (N,C,H,W)", op, SG_NN_SHAPE(x, bx));
        return NULL;
    }
    if (stride <= 0)
        stride = k;
    if (k < 1 || pad < 0 || pad > k / 2) {
        sg_set_error("%s: window %d needs k >= 1 and padding %d in [0, k/2]", op, k, pad);
        return NULL;
    }
    const int N = sg_dim(x, 0), C = sg_dim(x, 1), H = sg_dim(x, 2), W = sg_dim(x, 3);
    const int OH = sg_window_out(H, k, stride, pad), OW = sg_window_out(W, k, stride, pad);
    if (OH <= 0 || OW <= 0) {
        sg_set_error("%s: a %dx%d window with stride %d and padding %d does not fit input %s", op, k, k,
                     stride, pad, SG_NN_SHAPE(x, bx));
        return NULL;
    }
    const int64_t win_dims[2] = {sg_count_mul(sg_count_mul(sg_count_mul(N, C), OH), OW), sg_count_mul(k, k)};
    if (!sg_shape_fits(op, "windows (N*C*OH*OW, k*k)", 2, win_dims, NULL))
        return NULL;
    if (stride == k && pad == 0 && H % k == 0 && W % k == 0) {
        int tiles[4] = {N * C * OH, k, OW, k}, out[4] = {N, C, OH, OW}, axes[2] = {1, 3};
        sg_tensor *t = sg_reshape(x, 4, tiles);
        sg_tensor *r = is_max ? sg_max(t, axes, 2, false) : sg_mean(t, axes, 2, false);
        return sg_reshape(r, 4, out);
    }
    /* padding must never win a max: it reads -inf (0 for the average) */
    sg_window w = {.kh = k, .kw = k, .sh = stride, .sw = stride, .ph = pad, .pw = pad,
                   .pad_value = is_max && pad > 0 ? -INFINITY : 0.f};
    int planes[4] = {N * C, 1, H, W}, out[4] = {N, C, OH, OW}, axis = 1;
    sg_tensor *cols = sg_unfold(sg_reshape(x, 4, planes), w); /* (N*C*OH*OW, k*k) */
    sg_tensor *r = is_max ? sg_max(cols, &axis, 1, false) : sg_mean(cols, &axis, 1, false);
    return sg_reshape(r, 4, out);
}

sg_tensor *sg_max_pool2d(sg_tensor *x, int k, int stride, int pad)
{
    const char *token = sg_api_enter("max_pool2d");
    sg_tensor *out = pool("max_pool2d", x, k, stride, pad, true);
    sg_api_leave(token);
    return out;
}

sg_tensor *sg_avg_pool2d(sg_tensor *x, int k, int stride, int pad)
{
    const char *token = sg_api_enter("avg_pool2d");
    sg_tensor *out = pool("avg_pool2d", x, k, stride, pad, false);
    sg_api_leave(token);
    return out;
}

static sg_tensor *global_avg_pool2d_body(sg_tensor *x)
{
    if (!sg_check_tensor("global_avg_pool2d", x))
        return NULL;
    char bx[96];
    if (sg_ndim(x) != 4 || sg_dim(x, 2) * sg_dim(x, 3) == 0) {
        sg_set_error("global_avg_pool2d: input %s must be (N,C,H,W) with H, W >= 1", SG_NN_SHAPE(x, bx));
        return NULL;
    }
    int axes[2] = {2, 3};
    return sg_mean(x, axes, 2, false);
}

sg_tensor *sg_global_avg_pool2d(sg_tensor *x)
{
    const char *token = sg_api_enter("global_avg_pool2d");
    sg_tensor *out = global_avg_pool2d_body(x);
    sg_api_leave(token);
    return out;
}

static sg_tensor *residual_add_body(sg_tensor *x, sg_tensor *fx)
{
    if (!sg_check_tensor("residual_add", x) || !sg_check_tensor("residual_add", fx))
        return NULL;
    if (!sg_same_shape(x, fx)) {
        char bx[96], bf[96];
        sg_set_error("residual_add: shortcut %s and branch %s differ in shape", SG_NN_SHAPE(x, bx),
                     SG_NN_SHAPE(fx, bf));
        return NULL;
    }
    return sg_add(x, fx);
}

sg_tensor *sg_residual_add(sg_tensor *x, sg_tensor *fx)
{
    const char *token = sg_api_enter("residual_add");
    sg_tensor *out = residual_add_body(x, fx);
    sg_api_leave(token);
    return out;
}

static sg_tensor *dropout_body(sg_tensor *x, float p, bool training, sg_rng *rng)
{
    if (!sg_check_tensor("dropout", x))
        return NULL;
    if (!(p >= 0.f && p <= 1.f)) {
        sg_set_error("dropout: drop probability %g is outside [0, 1]", p);
        return NULL;
    }
    if (!training || p == 0.f)
        return x;
    if (!rng)
        rng = sg_default_rng();
    const double keep = 1.0 - (double)p;
    const float scale = keep > 0.0 ? (float)(1.0 / keep) : 0.f;
    sg_tensor *mask = sg_zeros_like(x); /* a constant: mask / keep */
    if (!mask)
        return NULL;
    const size_t n = sg_size(x);
    if (sg_dtype_of(x) == SG_FLOAT64) {
        double *md = sg_data64(mask);
        for (size_t i = 0; i < n; i++)
            md[i] = sg_rng_uniform(rng) < keep ? 1.0 / keep : 0.0;
        return sg_mul(x, mask);
    }
    float *md = sg_data(mask);
    for (size_t i = 0; i < n; i++)
        md[i] = sg_rng_uniform(rng) < keep ? scale : 0.f;
    return sg_mul(x, mask);
}

sg_tensor *sg_dropout(sg_tensor *x, float p, bool training, sg_rng *rng)
{
    const char *token = sg_api_enter("dropout");
    sg_tensor *out = dropout_body(x, p, training, rng);
    sg_api_leave(token);
    return out;
}

/* Check a per-feature vector: NULL is allowed, else shape (C). */
static bool feature_vec_ok(const char *what, sg_tensor *v, int C, sg_tensor *x)
{
    if (!v || (sg_ndim(v) == 1 && sg_dim(v, 0) == C))
        return true;
    char bv[96], bx[96];
    sg_set_error("batch_norm: %s %s does not match the %d features of input %s", what, SG_NN_SHAPE(v, bv),
                 C, SG_NN_SHAPE(x, bx));
    return false;
}

/* running = (1 - momentum) running + momentum batch (var unbiased), as
 * torch.nn.BatchNorm; float32 statistics with float arithmetic as always,
 * float64 ones in double. The running buffers must have x's dtype. */
static int update_running(sg_tensor *mu, sg_tensor *var, sg_tensor *running_mean, sg_tensor *running_var, int C,
                          size_t count, float momentum)
{
    sg_dtype dt = sg_dtype_of(mu);
    for (sg_tensor *r = running_mean; r; r = r == running_mean ? running_var : NULL) {
        if (sg_dtype_of(r) != dt) {
            sg_set_error("batch_norm: running statistics are %s, the input is %s", sg_dtype_name(sg_dtype_of(r)),
                         sg_dtype_name(dt));
            return -1;
        }
    }
    if (dt == SG_FLOAT64) {
        const double *m = sg_data64(mu), *v = sg_data64(var), unbias = (double)count / (double)(count - 1);
        double *rm = running_mean ? sg_data64(running_mean) : NULL;
        double *rv = running_var ? sg_data64(running_var) : NULL;
        for (int c = 0; c < C; c++) {
            if (rm)
                rm[c] = (1.0 - momentum) * rm[c] + momentum * m[c];
            if (rv)
                rv[c] = (1.0 - momentum) * rv[c] + momentum * v[c] * unbias;
        }
        return 0;
    }
    const float *m = sg_data(mu), *v = sg_data(var);
    const float unbias = (float)((double)count / (double)(count - 1));
    float *rm = running_mean ? sg_data(running_mean) : NULL;
    float *rv = running_var ? sg_data(running_var) : NULL;
    for (int c = 0; c < C; c++) {
        if (rm)
            rm[c] = (1.f - momentum) * rm[c] + momentum * m[c];
        if (rv)
            rv[c] = (1.f - momentum) * rv[c] + momentum * v[c] * unbias;
    }
    return 0;
}

static sg_tensor *batch_norm_body(sg_tensor *x, sg_tensor *gamma, sg_tensor *beta, sg_tensor *running_mean,
                         sg_tensor *running_var, bool training, double momentum_, double eps_)
{
    const float momentum = (float)momentum_, eps = (float)eps_;
    if (!sg_check_tensor("batch_norm", x))
        return NULL;
    char bx[96];
    const int nd = sg_ndim(x);
    if (nd != 2 && nd != 4) {
        sg_set_error("batch_norm: input %s must be (N,D) or (N,C,H,W)", SG_NN_SHAPE(x, bx));
        return NULL;
    }
    const int C = sg_dim(x, 1);
    if (!feature_vec_ok("gamma", gamma, C, x) || !feature_vec_ok("beta", beta, C, x) ||
        !feature_vec_ok("running_mean", running_mean, C, x) ||
        !feature_vec_ok("running_var", running_var, C, x))
        return NULL;
    if (!(eps_ > 0.0 && isfinite(eps_) && eps > 0.f) || !(momentum_ >= 0.0 && momentum_ <= 1.0)) {
        sg_set_error("batch_norm: eps %g must be > 0 and finite, and momentum %g in [0, 1]", eps_, momentum_);
        return NULL;
    }
    /* statistics over every axis but 1; kept with size 1 to broadcast */
    int axes[3] = {0, 2, 3}, n_axes = nd == 2 ? 1 : 3;
    int vshape[4] = {1, C, 1, 1};
    size_t count = C ? sg_size(x) / (size_t)C : 0;
    sg_tensor *xn;
    if (training) {
        if (count < 2) {
            sg_set_error("batch_norm: training needs more than 1 value per feature, input %s has %zu",
                         SG_NN_SHAPE(x, bx), count);
            return NULL;
        }
        sg_tensor *mu = sg_mean(x, axes, n_axes, true);
        sg_tensor *xc = sg_sub(x, mu);
        sg_tensor *var = sg_mean(sg_square(xc), axes, n_axes, true); /* biased */
        xn = sg_mul(xc, sg_pow(sg_add_scalar(var, eps), -0.5f));
        if (!xn)
            return NULL;
        if (update_running(mu, var, running_mean, running_var, C, count, momentum) < 0)
            return NULL;
    } else {
        if (!running_mean || !running_var) {
            sg_set_error("batch_norm: evaluation mode needs running_mean and running_var");
            return NULL;
        }
        sg_tensor *rm = nd == 4 ? sg_reshape(running_mean, 4, vshape) : running_mean;
        sg_tensor *rv = nd == 4 ? sg_reshape(running_var, 4, vshape) : running_var;
        xn = sg_mul(sg_sub(x, rm), sg_pow(sg_add_scalar(rv, eps), -0.5f));
    }
    sg_tensor *y = xn;
    if (gamma)
        y = sg_mul(y, nd == 4 ? sg_reshape(gamma, 4, vshape) : gamma);
    if (beta)
        y = sg_add(y, nd == 4 ? sg_reshape(beta, 4, vshape) : beta);
    return y;
}

sg_batch_norm_opts sg_batch_norm_defaults(void)
{
    return (sg_batch_norm_opts){.training = true, .momentum = 0.1, .eps = 1e-5};
}

sg_tensor *sg_batch_norm(sg_tensor *x, sg_tensor *gamma, sg_tensor *beta, const sg_batch_norm_opts *opts)
{
    const sg_batch_norm_opts o = opts ? *opts : sg_batch_norm_defaults();
    const char *token = sg_api_enter("batch_norm");
    sg_tensor *out = batch_norm_body(x, gamma, beta, o.running_mean, o.running_var, o.training, o.momentum, o.eps);
    sg_api_leave(token);
    return out;
}
