/*
 * threads.c — one knob for the two thread pools a build may have: OpenMP
 * (our kernels) and OpenBLAS (sgemm).
 */
#include "sg_internal.h"

#ifdef SG_HAVE_OPENMP
#include <omp.h>
#endif
#ifdef SG_HAVE_CBLAS
#include <cblas.h>
#endif
#include <unistd.h>

int sg_set_threads(int n)
{
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
#if defined(SG_HAVE_OPENMP)
    omp_set_num_threads(n);
#endif
#if defined(SG_HAVE_CBLAS) && defined(OPENBLAS_VERSION)
    openblas_set_num_threads(n);
#endif
#if defined(SG_HAVE_OPENMP) || (defined(SG_HAVE_CBLAS) && defined(OPENBLAS_VERSION))
    return n;
#else
    return 1;
#endif
}
