#!/usr/bin/env bash
# check_includes.sh - enforce the layering of design.md section 2 on #include "..." lines:
#
#   kernels <- core <- model / text / image <- owlet.h (+ chat) <- cli, wasm_glue <- web
#
# Each C file (.c/.h) of src/, wasm_glue/ and weights_tool/ may include (quoted includes,
# resolved against the file's own folder) only what its module's row below allows:
#
#   module          may include
#   src/kernels     src/kernels                            the lowest layer: nothing else
#   src/core        src/core src/kernels
#   src/image       src/image + core, kernels, src/owlet.h (image/text/model are siblings and
#   src/text        src/text  + core, kernels, src/owlet.h  do not include each other, except:)
#   src/model       src/model + core, kernels, src/owlet.h, and src/text/sampler.h: the last
#                   pipeline stage samples and returns the token id (design.md section 6)
#   src/chat        the library layer under owlet.h: chat, model, text, image, core, kernels,
#                   src/owlet.h (the conversation, design.md section 7)
#   src/owlet.h     core, kernels, model, text, image (the public header sits above them)
#   src/cli         src/owlet.h only: a consumer of the library
#   wasm_glue       src/owlet.h only: a consumer of the library
#   weights_tool    weights_tool, src/core, src/kernels, src/text, src/owlet.h: the converter
#                   writes the file format (GGUF writer, block quantizers, SentencePiece reader,
#                   chat template) but never runs the model: no model, image, chat or cli
#
# Modules may include src/owlet.h only to implement the API it declares. tests/ and bench/
# may include anything and are not checked. A folder under src/ without a row is an error
# (give a new module its place in the layers first), and so is an include that does not
# resolve to a file.
#
# The allowlist (default scripts/include_allowlist.txt; lines "FILE INCLUDED", both
# repository-relative, '#' starts a comment) lets the consumers src/cli/* and wasm_glue/*
# keep named violations while the conversation moves into the library; entries for any
# other file, and entries that no longer match a violation, are errors, so the list can
# only shrink.
#
# Usage: scripts/check_includes.sh [ROOT [ALLOWLIST]]   (ROOT defaults to the repository)
# Exit 0 when every include is allowed, 1 with one line per violation otherwise.
set -uo pipefail

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
allow_file=${2:-$root/scripts/include_allowlist.txt}
cd "$root" || { echo "check_includes: cannot enter $root" >&2; exit 2; }

# MOD = the module a repository-relative path belongs to ("" when outside the checked tree).
module_of() {
    case $1 in
        src/owlet.h) MOD=src/owlet.h ;;
        src/*/*) MOD=${1#src/}; MOD=src/${MOD%%/*} ;;
        src/*) MOD="src/?" ;;
        wasm_glue/*) MOD=wasm_glue ;;
        weights_tool/*) MOD=weights_tool ;;
        *) MOD="" ;;
    esac
}

# RULES = what a module may include: modules, or single files (a path with a dot).
allowed_for() {
    case $1 in
        src/kernels) RULES="src/kernels" ;;
        src/core) RULES="src/core src/kernels" ;;
        src/image) RULES="src/image src/core src/kernels src/owlet.h" ;;
        src/text) RULES="src/text src/core src/kernels src/owlet.h" ;;
        src/model) RULES="src/model src/core src/kernels src/owlet.h src/text/sampler.h" ;;
        src/chat) RULES="src/chat src/model src/text src/image src/core src/kernels src/owlet.h" ;;
        src/owlet.h) RULES="src/core src/kernels src/model src/text src/image" ;;
        src/cli) RULES="src/owlet.h" ;;
        wasm_glue) RULES="src/owlet.h" ;;
        weights_tool) RULES="weights_tool src/core src/kernels src/text src/owlet.h" ;;
        *) return 1 ;;
    esac
}

# NORM = path with "." and ".." folded away (a leading ".." stays).
normalize() {
    local IFS=/ part out=()
    for part in $1; do
        case $part in
            ""|.) ;;
            ..) if [ ${#out[@]} -gt 0 ] && [ "${out[-1]}" != .. ]; then unset 'out[-1]'; else out+=(..); fi ;;
            *) out+=("$part") ;;
        esac
    done
    NORM="${out[*]}"
}

declare -A allowlisted=() used=()
fail=0
err() { echo "check_includes: $*"; fail=1; }

if [ -f "$allow_file" ]; then
    n=0
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        line=${line%%#*}
        read -r file inc extra <<<"$line"
        [ -z "${file:-}" ] && continue
        if [ -z "${inc:-}" ] || [ -n "${extra:-}" ]; then
            err "$allow_file:$n: want 'FILE INCLUDED', got '$line'"
            continue
        fi
        case $file in
            src/cli/*|wasm_glue/*) allowlisted["$file $inc"]=$n ;;
            *) err "$allow_file:$n: $file: only src/cli/ and wasm_glue/ files may be allowlisted" ;;
        esac
    done <"$allow_file"
fi

files=$(find src wasm_glue weights_tool -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | sort)
declare -A no_rule=()
# every quoted include at once: FILE:LINE:PATH
while IFS=: read -r f ln inc; do
    [ -z "$f" ] && continue
    module_of "$f"; mod=$MOD
    if ! allowed_for "$mod"; then
        [ -z "${no_rule[$mod]+x}" ] && err "$f: no layering rule for module $mod (add its row to scripts/check_includes.sh)"
        no_rule[$mod]=1
        continue
    fi
    normalize "${f%/*}/$inc"; target=$NORM
    if [ ! -f "$target" ]; then
        err "$f:$ln: #include \"$inc\": no such file ($target)"
        continue
    fi
    module_of "$target"; tmod=$MOD
    ok=0
    for r in $RULES; do
        if [ "$r" = "$tmod" ] || [ "$r" = "$target" ]; then ok=1; break; fi
    done
    [ $ok = 1 ] && continue
    if [ -n "${allowlisted["$f $target"]+x}" ]; then
        used["$f $target"]=1
        continue
    fi
    err "$f:$ln: includes $target (${tmod:-outside the library}); $mod may include only: $RULES"
done < <([ -n "$files" ] && grep -n -H -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' $files |
         sed -E 's/^([^:]*):([0-9]+):[^"]*"([^"]*)".*/\1:\2:\3/')

# a file of a module without a row fails even when it includes nothing
for f in $files; do
    module_of "$f"
    if ! allowed_for "$MOD" && [ -z "${no_rule[$MOD]+x}" ]; then
        err "$f: no layering rule for module $MOD (add its row to scripts/check_includes.sh)"
        no_rule[$MOD]=1
    fi
done

for k in "${!allowlisted[@]}"; do
    [ -n "${used[$k]+x}" ] && continue
    err "$allow_file:${allowlisted[$k]}: '$k' is no longer a violation: remove the line"
done

if [ $fail = 0 ]; then
    echo "check_includes: $(echo "$files" | grep -c .) files follow the layering (${#allowlisted[@]} allowlisted includes)"
fi
exit $fail
