/*
 * fuzz_common.h — helpers shared by the libFuzzer targets.
 *
 * The file readers take a path, so a target writes its input into an
 * anonymous in-memory file (memfd_create) and hands the reader
 * /proc/self/fd/N: the whole public path is exercised (open, fstat, the
 * gzip sniffing) at the cost of one write per input, and nothing touches
 * the disk.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* An in-memory file; its path is written to path (32 bytes suffice). */
static int fuzz_memfile(const char *tag, char path[static 32])
{
    int fd = memfd_create(tag, 0);
    if (fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(path, 32, "/proc/self/fd/%d", fd);
    return fd;
}

/* Replace the file's contents with data[0, n). */
static void fuzz_fill(int fd, const void *data, size_t n)
{
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        abort();
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            abort();
        p += w;
        n -= (size_t)w;
    }
}

#endif /* FUZZ_COMMON_H */
