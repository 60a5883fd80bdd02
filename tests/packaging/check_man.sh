#!/bin/sh
# The generated man pages render with no warning at all (groff -ww), and mbx(1) names
# every subcommand that `mbx --help` lists.
set -eu
fail=0
for page in "$@"; do
    out=$(groff -ww -z -man "$page" 2>&1) || true
    if [ -n "$out" ]; then
        echo "$page: $out"
        fail=1
    fi
done
for page in "$@"; do
    case "$page" in
    */mbx.1)
        for cmd in send recv request reply pub sub wait list namespaces clean bench run; do
            grep -q "fBmbx $cmd" "$page" || { echo "mbx.1 lacks 'mbx $cmd'"; fail=1; }
        done
        ;;
    esac
done
[ "$fail" -eq 0 ] && echo "man: $# pages, no warnings"
exit "$fail"
