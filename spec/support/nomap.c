/*
** nomap.c: an LD_PRELOAD shim for spec/fault_spec.lua.  In every process
** but the one it was loaded into (so in par.map's workers), mmap with
** MAP_NORESERVE fails with ENOMEM, as under a ulimit -v that leaves a
** worker no room for its arena (src/arena.c) or its buffers (src/buf.c).
** glibc's malloc maps with its own internal call, which this leaves alone.
*/
#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

void *mmap (void *addr, size_t len, int prot, int flags, int fd, off_t off);

static pid_t first;

__attribute__((constructor)) static void nomap_init (void) {
  first = getpid();
}

void *mmap (void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  if (first != 0 && getpid() != first && (flags & MAP_NORESERVE)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}
