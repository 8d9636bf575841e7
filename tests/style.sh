#!/bin/sh
# style.sh SRCDIR - every tracked C file is formatted by the project's own
# .clang-format (STYLE.md; clang-format 14). Generated tables are skipped.
set -eu
cd "$1"
files=$(git ls-files '*.c' '*.h' | grep -v '^tests/unit/code_kat.h$')
if clang-format --dry-run --Werror $files; then
    echo "style: $(echo "$files" | wc -l) files formatted"
else
    echo "style: run clang-format -i on the files above"
    exit 1
fi
