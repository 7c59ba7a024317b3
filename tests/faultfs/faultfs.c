/* A fault-injecting file layer, loaded with LD_PRELOAD into a replica process.
 *
 * It counts every call that changes a file under FAULTFS_DIR (open for writing or
 * creating, write, pwrite, writev, ftruncate, fallocate, fsync, fdatasync, rename,
 * unlink, mkdir) and, at call number FAULTFS_AT, does what FAULTFS_MODE says:
 *   crash   the process dies there (_exit), before the call takes effect;
 *   enospc  that call and every later write, allocation or creation fails with ENOSPC
 *           (a full disk stays full);
 *   eio     that one call fails with EIO (a failed sync: what reached the disk is unknown);
 *   erofs   that call and every later one fails with EROFS (a read-only file system).
 * With FAULTFS_MATCH set, only calls whose "<call> <path>" contains it are counted (say
 * ".codex" for checkpoint writing, publication and cleanup). With FAULTFS_COUNT set, the
 * number of counted calls is written there at exit, so a test can enumerate the points
 * of a run. Every fault is reported on stderr with the call and the path. Calls on other
 * files, sockets and pipes pass through untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum mode { NONE, CRASH, ENOSPC_MODE, EIO_MODE, EROFS_MODE };
enum kind { CHANGE, GROW, SYNC };

static const char *dir;
static size_t dir_len;
static const char *match;
static long at;
static enum mode mode;
static long calls;
static int failing;

__attribute__((constructor)) static void init(void) {
    dir = getenv("FAULTFS_DIR");
    dir_len = dir ? strlen(dir) : 0;
    match = getenv("FAULTFS_MATCH");
    const char *a = getenv("FAULTFS_AT");
    at = a ? atol(a) : 0;
    const char *m = getenv("FAULTFS_MODE");
    mode = !m ? NONE
         : !strcmp(m, "crash") ? CRASH
         : !strcmp(m, "enospc") ? ENOSPC_MODE
         : !strcmp(m, "eio") ? EIO_MODE
         : !strcmp(m, "erofs") ? EROFS_MODE
         : NONE;
}

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("FAULTFS_COUNT");
    if (!path) return;
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "%ld\n", __atomic_load_n(&calls, __ATOMIC_SEQ_CST));
    fclose(f);
}

static int under_dir(const char *path) {
    return dir && path && !strncmp(path, dir, dir_len) && (path[dir_len] == '/' || path[dir_len] == 0);
}

/* The path of `fd` if it lies under FAULTFS_DIR (in `path`), else NULL. */
static const char *fd_path(int fd, char *path, size_t len) {
    if (!dir) return NULL;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, len - 1);
    if (n < 0) return NULL;
    path[n] = 0;
    return under_dir(path) ? path : NULL;
}

/* Decides the fate of one call: 0 to go ahead, else the errno to fail with. */
static int fate(const char *call, const char *path, enum kind kind) {
    char what[4200];
    snprintf(what, sizeof what, "%s %s", call, path);
    if (!match || strstr(what, match)) {
        long n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
        if (mode != NONE && n == at) {
            const char *name[] = {"", "crash", "ENOSPC", "EIO", "EROFS"};
            fprintf(stderr, "faultfs: %s at call %ld: %s\n", name[mode], n, what);
            if (mode == CRASH) _exit(137);
            __atomic_store_n(&failing, 1, __ATOMIC_SEQ_CST);
            return mode == ENOSPC_MODE ? ENOSPC : mode == EIO_MODE ? EIO : EROFS;
        }
    }
    if (__atomic_load_n(&failing, __ATOMIC_SEQ_CST)) {
        if (mode == EROFS_MODE) return EROFS;
        if (mode == ENOSPC_MODE && kind == GROW) return ENOSPC;
    }
    return 0;
}

#define REAL(name) static __typeof__(&name) real_##name; if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)
#define FD_FATE(call, fd, kind) \
    char path_[4096]; const char *p_ = fd_path(fd, path_, sizeof path_); \
    int err = p_ ? fate(call, p_, kind) : 0; \
    if (err) { errno = err; return -1; }
#define PATH_FATE(call, path, kind) \
    int err = under_dir(path) ? fate(call, path, kind) : 0; \
    if (err) { errno = err; return -1; }

static int writes(int flags) { return flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC); }

static int grows(const char *path, int flags) {
    struct stat st;
    return (flags & O_CREAT) && stat(path, &st) != 0 ? GROW : CHANGE;
}

#define OPEN(name, ...) \
    mode_t m = 0; \
    if (flags & (O_CREAT | __O_TMPFILE)) { va_list ap; va_start(ap, flags); m = va_arg(ap, mode_t); va_end(ap); } \
    if (writes(flags)) { PATH_FATE(#name, path, grows(path, flags)) } \
    return real_##name(__VA_ARGS__, m);

int open(const char *path, int flags, ...) { REAL(open); OPEN(open, path, flags) }
int open64(const char *path, int flags, ...) { REAL(open64); OPEN(open64, path, flags) }
int openat(int d, const char *path, int flags, ...) { REAL(openat); OPEN(openat, d, path, flags) }
int openat64(int d, const char *path, int flags, ...) { REAL(openat64); OPEN(openat64, d, path, flags) }

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write);
    FD_FATE("write", fd, GROW) return real_write(fd, buf, n);
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite);
    FD_FATE("pwrite", fd, GROW) return real_pwrite(fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite64);
    FD_FATE("pwrite64", fd, GROW) return real_pwrite64(fd, buf, n, off);
}
ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    REAL(writev);
    FD_FATE("writev", fd, GROW) return real_writev(fd, iov, cnt);
}
int ftruncate(int fd, off_t len) {
    REAL(ftruncate);
    FD_FATE("ftruncate", fd, GROW) return real_ftruncate(fd, len);
}
int ftruncate64(int fd, off_t len) {
    REAL(ftruncate64);
    FD_FATE("ftruncate64", fd, GROW) return real_ftruncate64(fd, len);
}
int fallocate(int fd, int m, off_t off, off_t len) {
    REAL(fallocate);
    FD_FATE("fallocate", fd, GROW) return real_fallocate(fd, m, off, len);
}
int fallocate64(int fd, int m, off_t off, off_t len) {
    REAL(fallocate64);
    FD_FATE("fallocate64", fd, GROW) return real_fallocate64(fd, m, off, len);
}
int fsync(int fd) {
    REAL(fsync);
    FD_FATE("fsync", fd, SYNC) return real_fsync(fd);
}
int fdatasync(int fd) {
    REAL(fdatasync);
    FD_FATE("fdatasync", fd, SYNC) return real_fdatasync(fd);
}
int rename(const char *from, const char *to) {
    REAL(rename);
    PATH_FATE("rename", to, CHANGE) return real_rename(from, to);
}
int renameat(int fd, const char *from, int tfd, const char *to) {
    REAL(renameat);
    PATH_FATE("renameat", to, CHANGE) return real_renameat(fd, from, tfd, to);
}
int renameat2(int fd, const char *from, int tfd, const char *to, unsigned flags) {
    REAL(renameat2);
    PATH_FATE("renameat2", to, CHANGE) return real_renameat2(fd, from, tfd, to, flags);
}
int unlink(const char *path) {
    REAL(unlink);
    PATH_FATE("unlink", path, CHANGE) return real_unlink(path);
}
int unlinkat(int d, const char *path, int flags) {
    REAL(unlinkat);
    PATH_FATE("unlinkat", path, CHANGE) return real_unlinkat(d, path, flags);
}
int mkdir(const char *path, mode_t m) {
    REAL(mkdir);
    PATH_FATE("mkdir", path, GROW) return real_mkdir(path, m);
}
