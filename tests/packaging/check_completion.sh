#!/usr/bin/env bash
# Drives the bash completion of mbx and mailboxd as bash would (COMP_WORDS, COMP_CWORD),
# against a live broker of its own: subcommands, options, and live namespace and client
# names.
set -euo pipefail
build_dir=$1
script=$2
export PATH="$build_dir/tools:$build_dir/broker:$PATH"
export MBX_RUNTIME_DIR
MBX_RUNTIME_DIR=$(mktemp -d)
ns="mbxtest-${MBX_TEST_TAG:-local}-compl-$$"
broker=
cleanup() {
    [ -z "$broker" ] || kill "$broker" 2>/dev/null || true
    rm -rf "$MBX_RUNTIME_DIR"
}
trap cleanup EXIT
broker=$(mailboxd -N "$ns" -d --log "$MBX_RUNTIME_DIR/broker.log")
mbx recv -N "$ns" --ready worker-one 2>"$MBX_RUNTIME_DIR/ready" &
recv=$!
for _ in $(seq 200); do grep -q ready "$MBX_RUNTIME_DIR/ready" 2>/dev/null && break; sleep 0.05; done

# shellcheck source=/dev/null
source "$script"
complete_words() { # words... (the last one is being completed)
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    "$(complete -p "$1" | awk '{print $3}')"
    printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}
expect() { # what, got
    case " $2 " in *" $1 "*) ;; *) echo "completion: '$1' not in: $2"; exit 1 ;; esac
}
expect sub "$(complete_words mbx s)"
expect send "$(complete_words mbx s)"
expect namespaces "$(complete_words mbx n)"
expect --whole "$(complete_words mbx send --w)"
expect --envelope "$(complete_words mbx recv --e)"
expect --linger "$(complete_words mbx recv --l)"
expect --busy-poll "$(complete_words mbx bench --b)"
expect --slots "$(complete_words mbx run --s)"
expect "$ns" "$(complete_words mbx list -N mbxtest-)"
expect worker-one "$(complete_words mbx send -N "$ns" wor)"
expect fanout "$(complete_words mbx bench --mode f)"
expect --log-level "$(complete_words mailboxd --log-)"
expect debug "$(complete_words mailboxd --log-level d)"
expect "$ns" "$(complete_words mailboxd -N mbxtest-)"
kill "$recv" 2>/dev/null || true
echo "completion: subcommands, options, namespaces and clients complete"
