#!/usr/bin/env bash
# selftest.sh - the include checker (scripts/check_includes.sh) must be able to fail.
# Builds a small tree that follows the layering, checks that it passes, then adds one bad
# include at a time (or a bad allowlist) and checks that the checker fails and names the
# offending file and line. Ends with "N passed, N failed" like the other runners.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
checker=$here/../../scripts/check_includes.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failed=0

put() { # put PATH [INCLUDE...]: a file of the tree whose lines include the given paths
    local p=$tmp/tree/$1 i
    shift
    [ -d "${p%/*}" ] || mkdir -p "${p%/*}"
    : >"$p"
    for i in "$@"; do echo "#include \"$i\"" >>"$p"; done
}

base_tree() { # a fresh copy of the layered tree, an empty allowlist
    rm -rf "$tmp/tree"
    cp -r "$tmp/base" "$tmp/tree"
    : >"$tmp/allow.txt"
}

make_base() {
    put src/kernels/ops.h
    put src/kernels/pool.c pool.h
    put src/kernels/pool.h
    put src/core/status.h ../kernels/ops.h
    put src/text/sampler.h ../core/status.h
    put src/text/template.h ../core/status.h
    put src/image/image.h ../core/status.h
    put src/model/model.h ../core/status.h ../kernels/pool.h ../owlet.h
    put src/model/owl2.c model.h ../text/sampler.h
    put src/chat/chat.c ../model/model.h ../image/image.h ../text/template.h ../owlet.h
    put src/owlet.h core/status.h kernels/ops.h
    put src/cli/main.c ../owlet.h
    put wasm_glue/api.c ../src/owlet.h
    put weights_tool/convert.c ../src/core/status.h ../src/text/template.h convert.h
    put weights_tool/convert.h
    mv "$tmp/tree" "$tmp/base"
}
make_base

# expect pass|fail NAME [GREP]: run the checker on the tree; on fail, its output must
# contain GREP.
expect() {
    local want=$1 name=$2 pattern=${3:-} out rc
    out=$(bash "$checker" "$tmp/tree" "$tmp/allow.txt" 2>&1)
    rc=$?
    if [ "$want" = pass ] && [ $rc = 0 ]; then
        pass=$((pass + 1)); echo "ok $name"
    elif [ "$want" = fail ] && [ $rc = 1 ] && grep -qF -- "$pattern" <<<"$out"; then
        pass=$((pass + 1)); echo "ok $name"
    else
        failed=$((failed + 1)); echo "not ok $name (want $want${pattern:+ naming '$pattern'}, exit $rc)"
        sed 's/^/    /' <<<"$out"
    fi
}

base_tree
expect pass layered_tree_passes

base_tree; put src/kernels/attention.c ops.h ../core/status.h
expect fail kernels_including_core_fails "src/kernels/attention.c:2: includes src/core/status.h"

base_tree; put src/core/gguf.c ../model/model.h
expect fail core_including_model_fails "src/core/gguf.c:1: includes src/model/model.h"

base_tree; put src/model/vision.c model.h ../image/image.h
expect fail model_including_image_fails "src/model/vision.c:2: includes src/image/image.h"

base_tree; put src/model/llm.c ../text/template.h
expect fail model_including_text_beyond_sampler_fails "src/model/llm.c:1: includes src/text/template.h"

base_tree; put src/text/tokenizer.c ../model/model.h
expect fail text_including_model_fails "src/text/tokenizer.c:1: includes src/model/model.h"

base_tree; put src/image/decode.c ../cli/main.c
expect fail image_including_cli_fails "src/image/decode.c:1: includes src/cli/main.c"

base_tree; put src/cli/main.c ../owlet.h ../text/template.h
expect fail cli_including_private_header_fails "src/cli/main.c:2: includes src/text/template.h"

base_tree; put wasm_glue/exports.c ../src/kernels/pool.h
expect fail wasm_glue_including_private_header_fails "wasm_glue/exports.c:1: includes src/kernels/pool.h"

base_tree; put weights_tool/inspect.c ../src/model/model.h
expect fail weights_tool_including_model_fails "weights_tool/inspect.c:1: includes src/model/model.h"

base_tree; put src/core/json.c ../../weights_tool/convert.h
expect fail library_including_tool_fails "src/core/json.c:1: includes weights_tool/convert.h"

base_tree; put src/core/json.c json.h
expect fail missing_include_fails "src/core/json.c:1: #include \"json.h\": no such file"

base_tree; put src/extra/x.c ../core/status.h
expect fail module_without_rule_fails "no layering rule for module src/extra"

base_tree; put src/extra/y.c
expect fail module_without_rule_fails_without_includes "src/extra/y.c: no layering rule"

base_tree; put src/core/json.c ../../../outside.h; : >"$tmp/outside.h"
expect fail include_outside_the_tree_fails "src/core/json.c:1: includes ../outside.h (outside the library)"

base_tree; put src/cli/main.c ../owlet.h ../text/template.h
echo "src/cli/main.c src/text/template.h   # until owl_chat" >"$tmp/allow.txt"
expect pass allowlisted_consumer_include_passes

base_tree; put src/model/llm.c ../image/image.h
echo "src/model/llm.c src/image/image.h" >"$tmp/allow.txt"
expect fail allowlist_outside_consumers_fails "only src/cli/ and wasm_glue/ files may be allowlisted"

base_tree
echo "wasm_glue/api.c src/text/sampler.h" >"$tmp/allow.txt"
expect fail stale_allowlist_entry_fails "is no longer a violation"

echo "$pass passed, $failed failed"
[ $failed = 0 ]
