/* Shared bits of the libFuzzer harnesses: REQUIRE traps (libFuzzer saves
 * the input as a crash), ASan poisoning when ASan is there. */
#ifndef WISP_FUZZ_COMMON_H
#define WISP_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(__has_include)
#if __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

#define REQUIRE(c)                                                          \
    do {                                                                    \
        if (!(c))                                                           \
            __builtin_trap();                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
