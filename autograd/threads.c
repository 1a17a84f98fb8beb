/*
 * threads.c — one knob for the engine's threads: the pool that runs the
 * kernels and splits the matrix products (parallel.c). OpenBLAS itself is
 * kept at one thread, so the two never compete for the cores.
 */
#include "sg_internal.h"
#include "sg_parallel.h"

#include <unistd.h>

int sg_set_threads(int n)
{
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    sg_pool_set_threads(n);
    return sg_pool_threads();
}
