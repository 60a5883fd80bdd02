# Bash completion for mbx and mailboxd: subcommands, options, and the live names of
# namespaces (mbx namespaces) and of their clients (mbx list --json). Installed as
# share/bash-completion/completions/{mbx,mailboxd}, where bash-completion finds it.

# The namespaces this user's clients can reach.
_mbx_namespaces()
{
    mbx namespaces 2>/dev/null | awk 'NR > 1 {print $1}'
}

# The clients of namespace $1 (the default one when empty).
_mbx_clients()
{
    local ns_opt=()
    [ -n "$1" ] && ns_opt=(-N "$1")
    # sort -u: the members of a group share one name (each would be offered once more).
    mbx list "${ns_opt[@]}" --json 2>/dev/null | grep -o '"name":"[^"]*"' | cut -d'"' -f4 | sort -u
}

# The namespace named on the command line so far (-N NS, --namespace NS or =NS).
_mbx_namespace_in_words()
{
    local i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
        -N | --namespace) echo "${COMP_WORDS[i + 1]}"; return ;;
        --namespace=*) echo "${COMP_WORDS[i]#--namespace=}"; return ;;
        esac
    done
}

_mbx()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    COMPREPLY=()
    if [ "$COMP_CWORD" -eq 1 ]; then
        # The commands as mbx lists them (`mbx options`: one "CMD --option" per line).
        local commands
        commands="$(mbx options 2>/dev/null | cut -d' ' -f1 | sort -u | tr '\n' ' ')"
        commands+="help options --help --version"
        mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
        return
    fi
    # The options come from mbx itself (`mbx options CMD`: its parser's table), so the
    # completion never offers one that is gone nor misses a new one.
    local cmd=${COMP_WORDS[1]} opts
    opts=$(mbx options "$cmd" 2>/dev/null | tr '\n' ' ')
    case "$prev" in
    -N | --namespace | --peer-namespace)
        mapfile -t COMPREPLY < <(compgen -W "$(_mbx_namespaces)" -- "$cur")
        return
        ;;
    -m | --mode)
        mapfile -t COMPREPLY < <(compgen -W "pingpong throughput request fanout" -- "$cur")
        return
        ;;
    --pin)
        mapfile -t COMPREPLY < <(compgen -W "none same split" -- "$cur")
        return
        ;;
    -f | --file)
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return
        ;;
    -t | --timeout | --wait | -c | --count | --linger | -i | --interval | --from | --name | \
        --exec | -s | --senders | --responders | --subscribers | --size | --busy-poll)
        return # a value of the user's own
        ;;
    esac
    if [[ "$cur" == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
        return
    fi
    case "$cmd" in
    send | request | wait | recv | reply | monitor)
        # Recipients, and for recv/reply names that may be taken: the live clients.
        mapfile -t COMPREPLY < <(compgen -W "$(_mbx_clients "$(_mbx_namespace_in_words)")" -- "$cur")
        ;;
    clean)
        mapfile -t COMPREPLY < <(compgen -W "$(_mbx_namespaces)" -- "$cur")
        ;;
    esac
}

_mailboxd()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local opts="-N --namespace --slots --depth --max-message --mailbox-bytes --subscriptions --retained --mode --fresh -d --daemon --pidfile --log --log-level -v --verbose -h --help --version"
    COMPREPLY=()
    case "$prev" in
    -N | --namespace)
        mapfile -t COMPREPLY < <(compgen -W "$(_mbx_namespaces)" -- "$cur")
        return
        ;;
    --log-level)
        mapfile -t COMPREPLY < <(compgen -W "error warn info debug" -- "$cur")
        return
        ;;
    --pidfile | --log)
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return
        ;;
    --slots | --depth | --max-message | --mailbox-bytes | --subscriptions | --retained | --mode)
        return
        ;;
    esac
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
}

complete -F _mbx mbx
complete -F _mailboxd mailboxd
