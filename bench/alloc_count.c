/*
 * alloc_count.c — counts the allocation calls of the engine and of
 * bench_train, for bench_train's mallocs_per_step.
 *
 * Key idea: the linker's --wrap. bench/meson.build links the engine's
 * objects a second time, into libscratchgrad_counted.so (bench_train's copy
 * of the library), and links that library and bench_train with
 * -Wl,--wrap=malloc (and calloc, realloc, aligned_alloc, posix_memalign,
 * memalign). In those two links, and only there, a call to malloc becomes a
 * call to __wrap_malloc below, and __real_malloc names the C library's
 * malloc. Nothing here is named malloc: no other program, library or
 * reader of the tree sees a replaced allocator, and the engine's sources do
 * not change.
 *
 * Counted: the calls made by the engine's code and by bench_train's, from
 * any thread. Not counted: calls made inside other shared libraries (libc's
 * own, such as fopen's buffer; OpenBLAS; libgomp). free is not wrapped.
 * The count works under AddressSanitizer and valgrind too: __real_malloc is
 * whatever malloc the process has.
 */
#include "alloc_count.h"

#include <stddef.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
int __real_posix_memalign(void **out, size_t align, size_t size);
void *__real_memalign(size_t align, size_t size);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void *__wrap_aligned_alloc(size_t align, size_t size);
int __wrap_posix_memalign(void **out, size_t align, size_t size);
void *__wrap_memalign(size_t align, size_t size);

static unsigned long calls; /* updated atomically: the engine's threads allocate too */

static void count(void) { __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED); }

unsigned long sg_bench_alloc_calls(void) { return __atomic_load_n(&calls, __ATOMIC_RELAXED); }

void *__wrap_malloc(size_t size)
{
    count();
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    count();
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    count();
    return __real_realloc(p, size);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    count();
    return __real_aligned_alloc(align, size);
}

int __wrap_posix_memalign(void **out, size_t align, size_t size)
{
    count();
    return __real_posix_memalign(out, align, size);
}

void *__wrap_memalign(size_t align, size_t size)
{
    count();
    return __real_memalign(align, size);
}
