// A malloc counter for Benchmarks/run.sh (MALLOCS=1): preloaded into the proxy only, it counts every allocation
// call (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) and writes the running total to
// $MALLOC_COUNT_FILE ten times a second, so that the script reads it before and after a run. Frees are not counted.
//
//   cc -O2 -shared -fPIC -o malloc_count.so Benchmarks/malloc_count.c -lpthread
//   MALLOC_COUNT_FILE=/tmp/mallocs LD_PRELOAD=$PWD/malloc_count.so ocpp-proxy serve ...
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static _Atomic unsigned long long allocations;

static inline void counted(void) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); }

void *malloc(size_t size) {
    counted();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    counted();
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    counted();
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    counted();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    counted();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    counted();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *out = pointer;
    return 0;
}

static void *writer(void *path) {
    char temporary[4096];
    snprintf(temporary, sizeof temporary, "%s.tmp", (const char *)path);
    for (;;) {
        FILE *file = fopen(temporary, "w");
        if (file != NULL) {
            fprintf(file, "%llu\n", atomic_load_explicit(&allocations, memory_order_relaxed));
            fclose(file);
            rename(temporary, (const char *)path);
        }
        usleep(100000);
    }
    return NULL;
}

__attribute__((constructor)) static void start(void) {
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (path == NULL) return;
    pthread_t thread;
    if (pthread_create(&thread, NULL, writer, (void *)path) == 0) pthread_detach(thread);
}
