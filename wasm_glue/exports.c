/* exports.c - build-level queries exported to JavaScript from the wasm engine
 * builds (the engine API proper is api.c). */
#include <emscripten.h>

#include "../src/owlet.h"

/* Number of threads a pool can actually use in this build (1 in owlet-st). */
EMSCRIPTEN_KEEPALIVE int owl_wasm_max_threads(void)
{
#ifdef __EMSCRIPTEN_PTHREADS__
    return 64;
#else
    return 1;
#endif
}

/* 1 when the build uses SIMD128 kernels. */
EMSCRIPTEN_KEEPALIVE int owl_wasm_has_simd(void)
{
#ifdef __wasm_simd128__
    return 1;
#else
    return 0;
#endif
}
