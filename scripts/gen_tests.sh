#!/bin/sh
# Writes the X(name) list of every TEST(name) in the given C files (stdout).
grep -ho '^TEST([A-Za-z0-9_]*)' "$@" | sed 's/^TEST(\(.*\))/X(\1)/'
