/*
 * file_internal.h — what every file reader here shares (private; not
 * installed; used by datasets/ and nn/safetensors.c): user-given text made
 * safe to print in a message, and opening a file for reading that refuses
 * anything but a regular file.
 *
 * A path or a tensor name comes from the user or from a file; printed raw,
 * an ESC or a newline in it would drive the terminal or forge a line of
 * output. sg_escape() copies it with every byte below 0x20, 0x7f and the
 * backslash written as \xNN (\\ for the backslash), so the message shows
 * exactly which bytes the name holds. Bytes >= 0x80 pass unchanged (names
 * are UTF-8; a path is whatever the file system holds).
 *
 * Header-only so that the stand-alone tool mnist_json2idx, built from
 * idx.c and mnist_json.c alone, has it too.
 */
#ifndef SG_FILE_INTERNAL_H
#define SG_FILE_INTERNAL_H

#include "sg_autograd.h" /* sg_set_error */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Room for an escaped name in messages: long names are cut to fit. */
#define SG_ESCAPE_MAX 200

/* s escaped into buf (cap bytes, at least 8), returning buf. If the
 * escaped text does not fit, it is cut and marked with "...": at its end,
 * or (keep_tail, for paths: the file's own name is at the end) at its
 * start. NULL prints as "(null)". */
static inline const char *sg_escape(const char *s, char *buf, size_t cap, bool keep_tail)
{
    static const char hex[] = "0123456789abcdef";
    if (!s)
        s = "(null)";
    size_t len = strlen(s), need = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        need += c < 0x20 || c == 0x7f ? 4 : c == '\\' ? 2 : 1;
    }
    size_t from = 0, room = cap - 1;
    bool cut = need > room;
    if (cut) {
        room -= 3; /* the "..." */
        if (keep_tail) { /* skip bytes from the start until the rest fits */
            size_t w = need;
            while (w > room) {
                unsigned char c = (unsigned char)s[from++];
                w -= c < 0x20 || c == 0x7f ? 4 : c == '\\' ? 2 : 1;
            }
            while ((unsigned char)s[from] >= 0x80 && (unsigned char)s[from] < 0xC0)
                from++; /* not in the middle of a UTF-8 sequence */
        }
    }
    size_t o = 0;
    if (cut && keep_tail) {
        memcpy(buf, "...", 3);
        o = 3;
        room += 3;
    }
    for (size_t i = from; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t w = c < 0x20 || c == 0x7f ? 4 : c == '\\' ? 2 : 1;
        if (o + w > room) { /* cut at the end, not inside a UTF-8 sequence */
            while (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0x80)
                o--;
            if (o > 0 && (unsigned char)buf[o - 1] >= 0xC0)
                o--;
            break;
        }
        if (w == 4) {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        } else if (w == 2) {
            buf[o++] = '\\';
            buf[o++] = '\\';
        } else {
            buf[o++] = (char)c;
        }
    }
    if (cut && !keep_tail) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* What kind of file st describes, for messages. */
static inline const char *sg_file_kind(const struct stat *st)
{
    if (S_ISDIR(st->st_mode))
        return "a directory";
    if (S_ISCHR(st->st_mode))
        return "a character device";
    if (S_ISBLK(st->st_mode))
        return "a block device";
    if (S_ISFIFO(st->st_mode))
        return "a FIFO (named pipe)";
    if (S_ISSOCK(st->st_mode))
        return "a socket";
    return "not a regular file";
}

/* Open path for reading if it is a regular file; *size receives its
 * length. Anything else fails with a message naming op and the path:
 * "op: PATH is a directory", "op: PATH is not a regular file (a character
 * device)", or "op: PATH: cannot open: <reason>". A reader must know how
 * much a file holds before it reads: /dev/zero never ends and a FIFO may
 * never answer, so neither is read at all. The file is opened with
 * O_NONBLOCK (a FIFO without a writer would otherwise block the open
 * itself), cleared again once the file is known to be regular. */
static inline FILE *sg_open_regular(const char *op, const char *path, uint64_t *size)
{
    char ep[SG_ESCAPE_MAX];
    sg_escape(path, ep, sizeof ep, true);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        sg_set_error("%s: %s: cannot open: %s", op, ep, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        sg_set_error("%s: %s: cannot read: %s", op, ep, strerror(errno));
        close(fd);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        sg_set_error("%s: %s is a directory, not a file", op, ep);
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        sg_set_error("%s: %s is not a regular file (%s): only regular files are read", op, ep,
                     sg_file_kind(&st));
        close(fd);
        return NULL;
    }
    int flags = fcntl(fd, F_GETFL);
    FILE *f = flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        sg_set_error("%s: %s: cannot open: %s", op, ep, strerror(errno));
        close(fd);
        return NULL;
    }
    *size = (uint64_t)st.st_size;
    return f;
}

#endif /* SG_FILE_INTERNAL_H */
