# Bash completion for mailbox-bridge: its options, the values of --log-level, files for
# --creds and --tls-*, and the live namespaces for -N (as mbx.bash completes them).
# Installed as share/bash-completion/completions/mailbox-bridge, where bash-completion
# finds it; it is loaded alone, so it does not rely on mbx.bash.

# The namespaces this user's clients can reach.
_mailbox_bridge_namespaces()
{
    mbx namespaces 2>/dev/null | awk 'NR > 1 {print $1}'
}

_mailbox_bridge()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local opts="-N --namespace --nats --node --cluster --names --topics --durable --creds --tls-ca --tls-cert --tls-key --log-level -h --help -V --version"
    COMPREPLY=()
    case "$prev" in
    -N | --namespace)
        mapfile -t COMPREPLY < <(compgen -W "$(_mailbox_bridge_namespaces)" -- "$cur")
        return
        ;;
    --log-level)
        mapfile -t COMPREPLY < <(compgen -W "error warn info debug" -- "$cur")
        return
        ;;
    --creds | --tls-ca | --tls-cert | --tls-key)
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return
        ;;
    --node)
        # The default: the host name up to its first '.'.
        mapfile -t COMPREPLY < <(compgen -W "${HOSTNAME%%.*}" -- "$cur")
        return
        ;;
    --nats | --cluster | --names | --topics)
        return # a value of the user's own
        ;;
    esac
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
}

complete -F _mailbox_bridge mailbox-bridge
