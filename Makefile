# owlet - native (gcc) and WebAssembly (Emscripten) builds, tests, benchmarks, demo.
#
#   make            native library, build/owlet CLI, build/owlet-convert
#   make wasm       build/wasm/owlet.{js,wasm} (SIMD128 + pthreads), owlet-st.{js,wasm},
#                   owlet-relaxed.{js,wasm} (relaxed SIMD + pthreads, for Chromium / Firefox)
#   make test       bootstrap, include layering check, then native (ASan/UBSan), wasm (node, mt + st),
#                   JS, browser and adversarial tests, 10 s fuzz per target
#   make bench      kernel benchmarks (wasm SIMD128 vs scalar, 1 and 2 threads)
#   make demo       the demo model end to end
#   make npm-pack   the npm package build/npm/owlet-vlm-VERSION.tgz (npm/: package.json, README, owlet.d.ts)
#
# Sources are found by wildcard: a new .c file in src/<module>/ joins the
# library, tests/c/test_*.c files join the test runner, bench/*.c the bench.

SHELL := /bin/bash
CC ?= gcc
EMCC ?= emcc
export NODE_PATH := /usr/share/nodejs
NODE := node --no-experimental-fetch

STB_INC := -I/usr/include/stb
WARN := -std=c11 -Wall -Wextra -Werror -Wno-unused-function -D_GNU_SOURCE
NATIVE_CFLAGS := $(WARN) -O2 -g -DOWL_USE_SIMDE -msse4.1 -DOWL_AVX2_DISPATCH $(STB_INC)
TEST_CFLAGS := $(WARN) -O1 -g -DOWL_USE_SIMDE -msse4.1 -DOWL_AVX2_DISPATCH -DOWL_DEBUG $(STB_INC) \
	-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
WASM_CFLAGS := $(WARN) -O3 $(STB_INC)
WASM_MEM := -Wno-pthreads-mem-growth -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB -sINITIAL_MEMORY=64MB -sTOTAL_STACK=1MB
WASM_MT := -msimd128 -pthread
WASM_ST := -msimd128
LIBS := -lm -lpthread

LIB_SRC := $(sort $(wildcard src/*/*.c))
LIB_SRC := $(filter-out src/cli/%,$(LIB_SRC))
CLI_SRC := $(wildcard src/cli/*.c)
CONV_SRC := $(wildcard weights_tool/*.c)
# weights_tool minus its main: linked into the CLI (inspect) and the tests
CONV_LIB_SRC := $(filter-out weights_tool/main.c,$(CONV_SRC))
GLUE_SRC := $(wildcard wasm_glue/*.c)
TEST_SRC := $(sort $(wildcard tests/c/*.c))
BENCH_SRC := bench/kernels.c bench/profile.c
HEADERS := $(wildcard src/*.h src/*/*.h tests/c/*.h weights_tool/*.h)

# Debian's stb_image 2.27 overflows signed ints in its JPEG IDCT on corrupt
# input: make that wrap (defined) in every build of the one file that includes it.
$(foreach f,native asan wasm-mt wasm-st wasm-scalar wasm-relaxed,build/$(f)/src/image/decode.o): XFLAGS += -fwrapv

# Native x86-64 builds run SSE4.1 code anywhere and, where the CPU has AVX2,
# quant_simd128.c's second compile (src/kernels/quant_avx2.c, picked at run
# time by dispatch.c).
$(foreach f,native asan,build/$(f)/src/kernels/quant_avx2.o): XFLAGS += -mavx2 -ffp-contract=off
$(foreach f,native asan,build/$(f)/src/kernels/quant_avx2.o): src/kernels/quant_simd128.c

# object lists per build flavour: $(call objs,DIR,SOURCES)
objs = $(patsubst %.c,build/$(1)/%.o,$(2))

.PHONY: all native wasm test check-includes test-native test-wasm test-adversarial test-py test-js test-browser test-package test-fixtures npm-pack bench bench-fullscale demo bootstrap clean fuzz

all: native
native: build/libowlet.a build/owlet build/owlet-convert

# ---------------------------------------------------------------- native
build/native/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(NATIVE_CFLAGS) $(XFLAGS) -c $< -o $@

build/libowlet.a: $(call objs,native,$(LIB_SRC))
	@rm -f $@
	ar rcs $@ $^

# `owlet inspect` is weights_tool/inspect.c: the CLI links the converter's
# library objects (everything in weights_tool/ but its main).
build/owlet: $(call objs,native,$(CLI_SRC) $(CONV_LIB_SRC)) build/libowlet.a
	$(CC) $(NATIVE_CFLAGS) -o $@ $(call objs,native,$(CLI_SRC) $(CONV_LIB_SRC)) build/libowlet.a $(LIBS)

build/owlet-convert: $(call objs,native,$(CONV_SRC)) build/libowlet.a
	$(CC) $(NATIVE_CFLAGS) -o $@ $(call objs,native,$(CONV_SRC)) build/libowlet.a $(LIBS)


# ---------------------------------------------------------------- tests (native, sanitizers)
build/gen/test_list.h: $(TEST_SRC) scripts/gen_tests.sh
	@mkdir -p $(dir $@)
	scripts/gen_tests.sh $(TEST_SRC) > $@.tmp && mv $@.tmp $@

build/asan/%.o: %.c $(HEADERS) build/gen/test_list.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $(XFLAGS) -Ibuild/gen -c $< -o $@

TEST_ALL_SRC := $(LIB_SRC) $(CONV_LIB_SRC) $(TEST_SRC)
build/owlet-tests: $(call objs,asan,$(TEST_ALL_SRC))
	$(CC) $(TEST_CFLAGS) -o $@ $^ $(LIBS)

# The CLI and the converter with ASan/UBSan, for tests/adversarial/.
build/asan-owlet: $(call objs,asan,$(LIB_SRC) $(CLI_SRC) $(CONV_LIB_SRC))
	$(CC) $(TEST_CFLAGS) -o $@ $^ $(LIBS)
build/asan-owlet-convert: $(call objs,asan,$(LIB_SRC) $(CONV_SRC))
	$(CC) $(TEST_CFLAGS) -o $@ $^ $(LIBS)

# ---------------------------------------------------------------- wasm
build/wasm-mt/%.o: %.c $(HEADERS) build/gen/test_list.h
	@mkdir -p $(dir $@)
	$(EMCC) $(WASM_CFLAGS) $(XFLAGS) $(WASM_MT) -Ibuild/gen -c $< -o $@
build/wasm-st/%.o: %.c $(HEADERS) build/gen/test_list.h
	@mkdir -p $(dir $@)
	$(EMCC) $(WASM_CFLAGS) $(XFLAGS) $(WASM_ST) -Ibuild/gen -c $< -o $@
build/wasm-scalar/%.o: %.c $(HEADERS) build/gen/test_list.h
	@mkdir -p $(dir $@)
	$(EMCC) $(WASM_CFLAGS) $(XFLAGS) -pthread -Ibuild/gen -c $< -o $@

WASM_ENGINE_SRC := $(LIB_SRC) $(GLUE_SRC)
WASM_ENGINE_LINK := -sMODULARIZE=1 -sEXPORT_NAME=createOwlet -sENVIRONMENT=web,worker,node \
	-sEXPORTED_RUNTIME_METHODS=ccall,cwrap,UTF8ToString,stringToUTF8,lengthBytesUTF8 \
	-sEXPORTED_FUNCTIONS=_malloc,_free $(WASM_MEM)

wasm: build/wasm/owlet.mjs build/wasm/owlet-st.mjs build/wasm/owlet-relaxed.mjs

build/wasm/%.mjs: build/wasm/%.js wasm_glue/engine-entry.mjs
	sed 's/__ENGINE__/$*/' wasm_glue/engine-entry.mjs > $@

build/wasm/owlet.js: $(call objs,wasm-mt,$(WASM_ENGINE_SRC))
	@mkdir -p $(dir $@)
	$(EMCC) -O3 $(WASM_MT) $(WASM_ENGINE_LINK) -sPTHREAD_POOL_SIZE=0 -o $@ $^

build/wasm/owlet-st.js: $(call objs,wasm-st,$(WASM_ENGINE_SRC))
	@mkdir -p $(dir $@)
	$(EMCC) -O3 $(WASM_ST) $(WASM_ENGINE_LINK) -o $@ $^

# The relaxed-SIMD engine: the threaded SIMD128 build whose dispatch
# (OWL_RELAXED_BUILD, src/kernels/dispatch.c) runs quant_relaxed.c's tiles,
# the only file compiled with -mrelaxed-simd. Its relaxed dots are stand-ins
# until scripts/relaxed_patch.py rewrites them after the link (why:
# src/kernels/simd.h). wasm_glue/features.mjs tells owlet.mjs when to load it.
WASM_RELAXED := $(WASM_MT) -DOWL_RELAXED_BUILD
build/wasm-relaxed/%.o: %.c $(HEADERS) build/gen/test_list.h
	@mkdir -p $(dir $@)
	$(EMCC) $(WASM_CFLAGS) $(XFLAGS) $(WASM_RELAXED) -Ibuild/gen -c $< -o $@
build/wasm-relaxed/src/kernels/quant_relaxed.o build/wasm-relaxed/bench/kernels.o: XFLAGS += -mrelaxed-simd
RELAXED_PATCH = /usr/bin/python3 scripts/relaxed_patch.py $(1) || { rm -f $(1) $(1:.wasm=.js); exit 1; }

build/wasm/owlet-relaxed.js: $(call objs,wasm-relaxed,$(WASM_ENGINE_SRC)) scripts/relaxed_patch.py
	@mkdir -p $(dir $@)
	$(EMCC) -O3 $(WASM_RELAXED) $(WASM_ENGINE_LINK) -sPTHREAD_POOL_SIZE=0 -o $@ $(filter %.o,$^)
	$(call RELAXED_PATCH,build/wasm/owlet-relaxed.wasm)

# The kernel tests (tests/c/test_{quant,matmul,ops,attention}.c) in the
# relaxed build, for a Chromium page (tests/browser/relaxed.test.mjs).
KERNEL_TEST_SRC := tests/c/test_quant.c tests/c/test_matmul.c tests/c/test_ops.c tests/c/test_attention.c
build/gen-kernels/test_list.h: $(KERNEL_TEST_SRC) scripts/gen_tests.sh
	@mkdir -p $(dir $@)
	scripts/gen_tests.sh $(KERNEL_TEST_SRC) > $@.tmp && mv $@.tmp $@
build/wasm-relaxed/kernel-tests/main.o: tests/c/main.c $(HEADERS) build/gen-kernels/test_list.h
	@mkdir -p $(dir $@)
	$(EMCC) $(WASM_CFLAGS) $(WASM_RELAXED) -Ibuild/gen-kernels -c $< -o $@
build/wasm/owlet-kernel-tests-relaxed.js: build/wasm-relaxed/kernel-tests/main.o \
		$(call objs,wasm-relaxed,$(LIB_SRC) $(KERNEL_TEST_SRC)) scripts/relaxed_patch.py
	@mkdir -p $(dir $@)
	$(EMCC) -O3 $(WASM_RELAXED) -sMODULARIZE=1 -sEXPORT_NAME=createKernelTests -sENVIRONMENT=web,worker \
		$(WASM_MEM) -sPTHREAD_POOL_SIZE=9 -o $@ $(filter %.o,$^)
	$(call RELAXED_PATCH,build/wasm/owlet-kernel-tests-relaxed.wasm)

# The test runner as wasm, reading fixtures straight from the file system.
WASM_TEST_LINK := -sNODERAWFS=1 -sEXIT_RUNTIME=1 -sENVIRONMENT=node $(WASM_MEM)
build/wasm/owlet-tests.js: $(call objs,wasm-mt,$(TEST_ALL_SRC))
	@mkdir -p $(dir $@)
	$(EMCC) -O3 $(WASM_MT) $(WASM_TEST_LINK) -sPTHREAD_POOL_SIZE=9 -o $@ $^

build/wasm/owlet-tests-st.js: $(call objs,wasm-st,$(TEST_ALL_SRC))
	@mkdir -p $(dir $@)
	$(EMCC) -O3 $(WASM_ST) $(WASM_TEST_LINK) -o $@ $^

# ---------------------------------------------------------------- test driver
bootstrap:
	@bash scripts/bootstrap.sh

test: bootstrap
	$(MAKE) check-includes
	$(MAKE) test-native
	$(MAKE) test-wasm
	$(MAKE) test-py
	$(MAKE) test-js
	$(MAKE) test-browser
	$(MAKE) test-adversarial
	$(MAKE) fuzz FUZZ_SECONDS=10
	@echo "make test: all suites passed"

# The layering of design.md section 2 on every #include of src/, wasm_glue/ and
# weights_tool/ (rules in scripts/check_includes.sh), then the checker's own test.
check-includes:
	bash scripts/check_includes.sh
	bash tests/includes/selftest.sh

# Inputs the tests make from committed fixtures (never committed themselves):
# the oracle GGUF, a bf16 torch checkpoint, the LLaMA-2 tokenizer cases.
test-fixtures: build/test-out/oracle_a_f32.gguf build/convert-fixtures/bf16/.done build/test-out/pil/.done
	bash tests/tokenizer/prepare.sh

build/test-out/pil/.done: tests/image/gen_pil_goldens.py
	/usr/bin/python3 tests/image/gen_pil_goldens.py
	touch $@

build/test-out/oracle_a_f32.gguf: build/owlet-convert $(wildcard tests/fixtures/oracle_a/*)
	@mkdir -p $(dir $@)
	build/owlet-convert tests/fixtures/oracle_a $@ --type f32 -q

build/convert-fixtures/bf16/.done: tests/convert/make_bf16_checkpoint.py
	rm -rf $(dir $@) && mkdir -p build/convert-fixtures
	/usr/bin/python3 tests/convert/make_bf16_checkpoint.py $(dir $@)
	touch $@

# twice: with the AVX2 kernels where the CPU has them, then forced to SSE4.1
# (what a CPU without AVX2 runs: src/kernels/quant_avx2.c)
test-native: build/owlet-tests native test-fixtures
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./build/owlet-tests
	OWL_NO_AVX2=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./build/owlet-tests

test-wasm: build/wasm/owlet-tests.js build/wasm/owlet-tests-st.js test-fixtures
	$(NODE) build/wasm/owlet-tests.js
	$(NODE) build/wasm/owlet-tests-st.js

test-py:
	/usr/bin/python3 tests/reference/check_oracle.py

# plain node, as users run the API (NODE adds --no-experimental-fetch, which only
# the Emscripten test runners owlet-tests*.js need: docs/API.md); the chunk store
# once more without a global fetch (its node:http fallback)
test-js: native wasm
	node --test tests/js/*.test.mjs
	$(NODE) --test tests/js/store.test.mjs

# Bad inputs through the converter, the CLI (ASan/UBSan builds) and the JS API
# (tests/adversarial/run.mjs; about a minute).
test-adversarial: native wasm build/asan-owlet build/asan-owlet-convert test-fixtures
	node tests/adversarial/run.mjs

# ---------------------------------------------------------------- bench
# node and browser alike (bench/kernels_browser.mjs sets Module.arguments / print)
BENCH_LINK := -sEXIT_RUNTIME=1 -sENVIRONMENT=web,worker,node $(WASM_MEM) -sPTHREAD_POOL_SIZE=4
build/wasm/owlet-bench.js: $(call objs,wasm-mt,$(LIB_SRC) $(BENCH_SRC))
	@mkdir -p $(dir $@)
	$(EMCC) -O3 $(WASM_MT) $(BENCH_LINK) -o $@ $^
build/wasm/owlet-bench-scalar.js: $(call objs,wasm-scalar,$(LIB_SRC) $(BENCH_SRC))
	@mkdir -p $(dir $@)
	$(EMCC) -O3 -pthread $(BENCH_LINK) -o $@ $^
build/wasm/owlet-bench-relaxed.js: $(call objs,wasm-relaxed,$(LIB_SRC) $(BENCH_SRC)) scripts/relaxed_patch.py
	@mkdir -p $(dir $@)
	$(EMCC) -O3 $(WASM_RELAXED) $(BENCH_LINK) -o $@ $(filter %.o,$^)
	$(call RELAXED_PATCH,build/wasm/owlet-bench-relaxed.wasm)

# demo.test.mjs and faults.test.mjs run in Chromium, Firefox and WebKit (tests/browser/engines.mjs,
# docs/BROWSERS.md); capabilities.mjs prints each engine's table and checks its threads.
test-browser: native wasm build/wasm/owlet-kernel-tests-relaxed.js
	node tests/browser/capabilities.mjs
	node tests/browser/run.mjs
	node --test tests/browser/web.test.mjs tests/browser/page.test.mjs tests/browser/web/units.test.mjs
	node --test tests/browser/demo.test.mjs
	node --test tests/browser/wllama_parity.test.mjs
	node --test tests/browser/faults.test.mjs
	node --test tests/browser/relaxed.test.mjs
	$(MAKE) test-package

# ---------------------------------------------------------------- npm package
# npm/ holds the package's package.json, README.md and owlet.d.ts; the runtime
# files keep the repository's layout (wasm_glue/*.mjs beside build/wasm/), so
# engine.mjs finds the engines at its default wasmBase, ../build/wasm/.
# The engines are classic scripts that engine-worker.mjs require()s: build/wasm/
# gets a package.json saying "commonjs" (the package itself is "type": "module").
NPM_DIR := build/npm/package
NPM_GLUE := $(filter-out wasm_glue/engine-entry.mjs,$(wildcard wasm_glue/*.mjs))
NPM_WASM := $(foreach b,owlet owlet-relaxed,build/wasm/$(b).js build/wasm/$(b).wasm build/wasm/$(b).worker.js) \
	build/wasm/owlet-st.js build/wasm/owlet-st.wasm
npm-pack: wasm
	rm -rf $(NPM_DIR) build/npm/*.tgz
	mkdir -p $(NPM_DIR)/wasm_glue $(NPM_DIR)/build/wasm
	cp npm/package.json npm/README.md npm/owlet.d.ts $(NPM_DIR)/
	cp $(NPM_GLUE) $(NPM_DIR)/wasm_glue/
	cp $(NPM_WASM) $(NPM_DIR)/build/wasm/
	echo '{ "type": "commonjs" }' > $(NPM_DIR)/build/wasm/package.json
	cd $(NPM_DIR) && npm pack --pack-destination .. --silent

# The packed tarball installed into a scratch project: a Node script and a page
# in Chromium import it by name (tests/package/pack.test.mjs).
test-package: npm-pack
	node --test tests/package/pack.test.mjs

# libFuzzer targets (clang, ASan+UBSan); make test runs each for 10 s.
FUZZ_SECONDS ?= 60
fuzz:
	bash tests/fuzz/run.sh $(FUZZ_SECONDS)

# Kernels (SIMD128 vs scalar) then end to end against wllama in one Chromium
# session (30-60 min); BENCH_E2E=0 runs the kernel part only.
bench: bootstrap native wasm build/wasm/owlet-bench.js build/wasm/owlet-bench-scalar.js build/wasm/owlet-bench-relaxed.js
	bash bench/run.sh

# The released 7B's size end to end (random weights; ~40 GB of scratch space in
# OWLET_FULLSCALE_DIR, default /var/tmp/owlet-fullscale; about an hour here).
bench-fullscale: bootstrap native wasm
	node bench/fullscale/run.mjs

# only what the demo runs: the three wasm engines (no native build, no test
# packages: scripts/bootstrap.sh demo installs Emscripten, stb and Node only)
demo:
	@bash scripts/bootstrap.sh demo
	@$(MAKE) --no-print-directory -j2 wasm
	@bash scripts/demo.sh

clean:
	rm -rf build
