/* simd.h - one spelling of SIMD128 for wasm and native.
 *
 * In wasm builds (-msimd128) this is <wasm_simd128.h>. Natively the same wasm_*
 * intrinsics come from Debian's SIMDe (simde/wasm/simd128.h), so the native
 * ASan/UBSan run exercises the very code the browser runs. OWL_SIMD128 is
 * defined in both cases; a build without it (the scalar wasm bench build)
 * uses the reference kernels only. */
#ifndef OWL_SIMD_H
#define OWL_SIMD_H

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#define OWL_SIMD128 1
#elif defined(OWL_USE_SIMDE)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/wasm/simd128.h>
#define OWL_SIMD128 1
#endif

#endif
