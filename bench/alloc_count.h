/*
 * alloc_count.h — how many allocation calls the engine and bench_train have
 * made (bench/alloc_count.c; bench/meson.build links them to it).
 */
#ifndef SG_BENCH_ALLOC_COUNT_H
#define SG_BENCH_ALLOC_COUNT_H

/** Calls of malloc, calloc, realloc, aligned_alloc, posix_memalign and
 *  memalign made so far by the code linked with alloc_count.c's --wrap
 *  flags (any thread). Not counted: calls made inside other shared
 *  libraries (libc's own, OpenBLAS, libgomp). */
unsigned long sg_bench_alloc_calls(void);

#endif
