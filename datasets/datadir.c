/*
 * datadir.c — where a data set lives on disk: sg_find_dataset() looks in
 * the standard places, in order, and returns the first directory that
 * holds an MNIST-layout set.
 *
 *   1. $SG_DATA_DIR/<name>                 (the user's choice, for one run)
 *   2. $XDG_DATA_HOME/scratchgrad/<name>   (default ~/.local/share/...;
 *                                          datasets/fetch_mnist_digits.sh
 *                                          writes the digits here)
 *   3. <d>/scratchgrad/<name> for each d of $XDG_DATA_DIRS
 *                                          (default /usr/local/share:/usr/share)
 *   4. /usr/share/datasets/<name>          (Debian's dataset-* packages:
 *                                          dataset-fashion-mnist)
 *
 * This is the XDG Base Directory order (data home, then data dirs) with an
 * override in front, as scikit-learn's SCIKIT_LEARN_DATA or PyTorch's
 * TORCH_HOME. Nothing here depends on where the library or the program was
 * built: an installed program never reads the source tree.
 */
#include "sg_datasets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A set is there when its training images are (plain or gzip). */
static bool holds_set(const char *dir)
{
    static const char *const names[] = {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"};
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) < sizeof path &&
            stat(path, &st) == 0 && S_ISREG(st.st_mode))
            return true;
    }
    return false;
}

/* Try base/sub/name: 1 and the path in out if it holds a set, 0 if not,
 * -1 with a message if it does but does not fit out. Appends the place
 * tried to `tried` (for the message when nothing is found). */
static int try_dir(const char *base, const char *sub, const char *name, char *out, size_t len,
                   char *tried, size_t tried_len)
{
    char dir[4096];
    int n = snprintf(dir, sizeof dir, "%s%s%s/%s", base, sub[0] ? "/" : "", sub, name);
    if (n < 0 || (size_t)n >= sizeof dir)
        return 0;
    size_t used = strlen(tried), sep = used ? 2 : 0;
    if (used + sep + (size_t)n < tried_len) {
        memcpy(tried + used, ", ", sep);
        memcpy(tried + used + sep, dir, (size_t)n + 1);
    }
    if (!holds_set(dir))
        return 0;
    if ((size_t)n >= len) {
        sg_set_error("find_dataset: the path %s does not fit the buffer of %zu bytes", dir, len);
        return -1;
    }
    memcpy(out, dir, (size_t)n + 1);
    return 1;
}

/* $XDG_DATA_HOME/scratchgrad, or $HOME/.local/share/scratchgrad (XDG
 * ignores a relative XDG_DATA_HOME). False if neither is set or the path
 * does not fit. */
static bool data_home(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, len, "%s/scratchgrad", xdg);
    else if (home && home[0])
        n = snprintf(buf, len, "%s/.local/share/scratchgrad", home);
    else
        n = -1;
    return n >= 0 && (size_t)n < len;
}

static bool name_ok(const char *name)
{
    if (!name || !name[0] || !strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

int sg_data_home(char *buf, size_t len)
{
    if (!buf || len == 0) {
        sg_set_error("data_home: NULL or empty buffer");
        return -1;
    }
    if (!data_home(buf, len)) {
        buf[0] = '\0';
        sg_set_error("data_home: neither XDG_DATA_HOME (an absolute path) nor HOME is set, or the "
                     "path does not fit the buffer of %zu bytes", len);
        return -1;
    }
    return 0;
}

int sg_find_dataset(const char *name, char *buf, size_t len)
{
    if (!buf || len == 0) {
        sg_set_error("find_dataset: NULL or empty buffer");
        return -1;
    }
    buf[0] = '\0';
    if (!name_ok(name)) {
        sg_set_error("find_dataset: a set's name is letters, digits, '-', '_' and '.' (got %s%s%s)",
                     name ? "'" : "", name ? name : "NULL", name ? "'" : "");
        return -1;
    }
    char tried[1024] = "", home[4096];
    int r = 0;
    const char *own = getenv("SG_DATA_DIR");
    if (own && own[0])
        r = try_dir(own, "", name, buf, len, tried, sizeof tried);
    if (r == 0 && data_home(home, sizeof home))
        r = try_dir(home, "", name, buf, len, tried, sizeof tried);
    const char *dirs = getenv("XDG_DATA_DIRS");
    if (!dirs || !dirs[0])
        dirs = "/usr/local/share:/usr/share";
    for (const char *p = dirs; r == 0 && *p;) {
        size_t n = strcspn(p, ":");
        char d[4096];
        if (n > 0 && n < sizeof d && p[0] == '/') {
            memcpy(d, p, n);
            d[n] = '\0';
            r = try_dir(d, "scratchgrad", name, buf, len, tried, sizeof tried);
        }
        p += n + (p[n] == ':');
    }
    if (r == 0)
        r = try_dir("/usr/share/datasets", "", name, buf, len, tried, sizeof tried);
    if (r == 1)
        return 0;
    if (r == 0)
        sg_set_error("find_dataset: no directory holds the data set %s (train-images-idx3-ubyte, "
                     "plain or .gz); looked in %s%s",
                     name, own && own[0] ? "" : "(SG_DATA_DIR unset) ", tried);
    return -1;
}
