/* Tiny unit-test helpers shared by the C tests. Each test program counts
 * checks and failures, prints failures with file:line, and exits 1 if any
 * check failed (meson reports the program as failed). The counters are
 * atomic: a CHECK may run on any thread (a loop's callback, a worker),
 * not only main; t_done reads them after the other threads are joined or
 * have handed their results over. */
#ifndef WISP_TEST_H
#define WISP_TEST_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static _Atomic int t_checks, t_failures;

#define CHECK(cond)                                                         \
    do {                                                                    \
        t_checks++;                                                         \
        if (!(cond)) {                                                      \
            t_failures++;                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                       \
        }                                                                   \
    } while (0)

#define CHECK_MSG(cond, ...)                                                \
    do {                                                                    \
        t_checks++;                                                         \
        if (!(cond)) {                                                      \
            t_failures++;                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__,         \
                    __LINE__, #cond);                                       \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
        }                                                                   \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                  \
    do {                                                                    \
        long long t_a = (long long)(a), t_b = (long long)(b);               \
        t_checks++;                                                         \
        if (t_a != t_b) {                                                   \
            t_failures++;                                                   \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n",      \
                    __FILE__, __LINE__, #a, #b, t_a, t_b);                  \
        }                                                                   \
    } while (0)

#define CHECK_STRN(ptr, len, lit)                                           \
    CHECK_MSG((len) == strlen(lit) && memcmp((ptr), (lit), (len)) == 0,     \
              "got \"%.*s\", want \"%s\"", (int)(len), (const char *)(ptr), \
              (lit))

static inline int t_done(const char *name)
{
    int checks = atomic_load(&t_checks), failures = atomic_load(&t_failures);
    printf("%s: %d checks, %d failed\n", name, checks, failures);
    return failures ? 1 : 0;
}

/* A copy of buf[0..len) placed so that its last byte is the last readable
 * byte before a PROT_NONE page: any read past the end faults. Release
 * with t_guard_free. */
typedef struct t_guard {
    char *map;
    size_t map_len;
    char *data;
} t_guard;

static inline t_guard t_guard_copy(const void *buf, size_t len)
{
    t_guard g;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page + 1;
    g.map_len = pages * page;
    g.map = mmap(NULL, g.map_len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g.map == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    mprotect(g.map + (pages - 1) * page, page, PROT_NONE);
    g.data = g.map + (pages - 1) * page - len;
    if (len)
        memcpy(g.data, buf, len);
    return g;
}

static inline void t_guard_free(t_guard *g)
{
    munmap(g->map, g->map_len);
}

#endif
