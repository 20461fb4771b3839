#include "CSystem.h"

int csys_cpu_has_avx2_fma(void) {
#if defined(__x86_64__)
    // The builtins read cpuid, and count AVX only when xgetbv says the OS saves the YMM state.
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}
