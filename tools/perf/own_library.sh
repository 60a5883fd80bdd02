# Sourced by the scripts that compare builds (ab_run.sh, instructions.sh).
# own_library SCRIPT BUILD: fails unless BUILD's mbx loads the library of BUILD itself. A
# build tree copied elsewhere still loads the library its run path names, the original
# tree's: comparing it would compare one library with itself. Build the old tree from a
# git worktree (git worktree add DIR REV) instead.
own_library() {
    local lib
    lib=$(ldd "$2/tools/mbx" | awk '/libmailbox/ { print $3 }')
    case "$(cd "$(dirname "$lib")" && pwd -P)/" in
    "$(cd "$2" && pwd -P)"/*) ;;
    *)
        echo "$1: $2/tools/mbx loads $lib, not its own build's library (build the old tree from a git worktree, do not copy a build)" >&2
        return 1
        ;;
    esac
}
