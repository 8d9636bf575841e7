# cli_lib.sh - sourced by the command-line test scripts: run a command and
# check its exit status, check its output, and finish with a verdict.
# Needs $dir (a temp dir the script owns).
fails=0

check() { # check DESCRIPTION WANT_RC CMD...
    desc=$1
    want=$2
    shift 2
    "$@" > "$dir/out" 2> "$dir/err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "FAIL: $desc: exit $rc, want $want"
        cat "$dir/out" "$dir/err"
        fails=$((fails + 1))
    fi
}

has() { # has DESCRIPTION FILE TEXT
    grep -q -- "$3" "$2" || { echo "FAIL: $1: '$3' not in:"; cat "$2"; fails=$((fails + 1)); }
}

verdict() { # verdict NAME
    if [ "$fails" -ne 0 ]; then
        echo "$fails check(s) failed"
        exit 1
    fi
    echo "$1: all checks passed"
}
