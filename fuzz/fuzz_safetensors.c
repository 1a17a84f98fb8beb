/*
 * fuzz_safetensors.c — libFuzzer target for the safetensors loader,
 * sg_safetensors_load() (nn/safetensors.c): header length, JSON header,
 * entries, layout checks, the match against the caller's tensors, the copy;
 * and the metadata reader, sg_safetensors_metadata(), on the same file.
 *
 * Input: one byte choosing the caller's tensor set, then the file.
 *   set 0: no tensors          set 1: "a" (2,3)
 *   set 2: "w" (2,2), "b" (2)  set 3: "s" () (a scalar), "e" (0,4)
 * A load that fails must leave the tensors untouched (checked: they hold
 * a marker value that no load of a valid file writes... unless the file
 * wrote it, so the check is only that a failed load changes nothing).
 */
#include "fuzz_common.h"
#include "sg_autograd.h"
#include "sg_nn.h"

#include <stdlib.h>
#include <string.h>

static int fd = -1;
static char path[32];
static sg_tensor *ta, *tw, *tb, *ts, *te;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fill(sg_tensor *t, float v)
{
    float *d = sg_data(t);
    for (size_t i = 0; i < sg_size(t); i++)
        d[i] = v;
}

static void check(sg_tensor *t, float v)
{
    const float *d = sg_data(t);
    for (size_t i = 0; i < sg_size(t); i++)
        if (memcmp(&d[i], &v, sizeof v) != 0)
            abort(); /* a failed load wrote into a tensor */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (fd < 0) {
        fd = fuzz_memfile("st", path);
        ta = sg_zeros(SG_DIMS(2, 3));
        tw = sg_zeros(SG_DIMS(2, 2));
        tb = sg_zeros(SG_DIMS(2));
        ts = sg_zeros(0, NULL);
        te = sg_zeros(SG_DIMS(0, 4));
        if (!ta || !tw || !tb || !ts || !te)
            abort();
    }
    const sg_named_param sets[4][2] = {
        {{0}},
        {{"a", ta, true}},
        {{"w", tw, true}, {"b", tb, true}},
        {{"s", ts, true}, {"e", te, true}},
    };
    const int counts[4] = {0, 1, 2, 2};
    int set = data[0] & 3;
    fuzz_fill(fd, data + 1, size - 1);
    const float marker = -12345.5f;
    for (int i = 0; i < counts[set]; i++)
        fill(sets[set][i].tensor, marker);
    int rc = sg_safetensors_load(path, sets[set], counts[set]);
    if (rc != 0) {
        if (!sg_last_error()[0])
            abort();
        for (int i = 0; i < counts[set]; i++)
            check(sets[set][i].tensor, marker);
    }
    sg_clear_error();
    /* the metadata reader walks the same header and keeps its strings: it
     * fails with a message, or returns n_meta entries whose keys and values
     * are strings (read to the end here, so ASan sees any overrun) */
    int n_meta = -1;
    sg_safetensors_meta *meta = sg_safetensors_metadata(path, &n_meta);
    if (!meta && (!sg_last_error()[0] || n_meta != 0))
        abort();
    size_t chars = 0;
    for (int i = 0; meta && i < n_meta; i++)
        chars += strlen(meta[i].key) + strlen(meta[i].value);
    if (meta && n_meta > 0 && sg_safetensors_meta_get(meta, n_meta, meta[0].key) != meta[0].value)
        abort(); /* the first entry of a key is the one found (keys are unique) */
    (void)chars;
    free(meta);
    sg_clear_error();
    return 0;
}
