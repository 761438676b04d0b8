#!/usr/bin/env bash
# Device side of split-model.sh: `join-model.sh a` stores the first half under /tmp/devmodel;
# `join-model.sh b` joins it with the second half into /tmp/devmodel/NAME/, checks the sha256, and
# restores dist/ (from /tmp/keep) and the node environment of unpack.sh for the command that follows.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p /tmp/devmodel
case ${1:?usage: join-model.sh a|b} in
  a) cp .devmodel/a/part /tmp/devmodel/part-a && echo "join-model: first half stored ($(stat -c %s /tmp/devmodel/part-a) bytes)" ;;
  b)
    [[ -f /tmp/devmodel/part-a ]] || { echo "join-model: run 'join-model.sh a' in the call before (same warm machine)" >&2; exit 1; }
    name=$(cat .devmodel/b/name)
    dir=/tmp/devmodel/$name
    mkdir -p "$dir"
    cat /tmp/devmodel/part-a .devmodel/b/part > "$dir/model.safetensors"
    find .devmodel/b -maxdepth 1 -type f ! -name part ! -name sha256 ! -name name -exec cp {} "$dir/" \;
    echo "$(cat .devmodel/b/sha256)  $dir/model.safetensors" | sha256sum -c --quiet
    [[ -d dist ]] || cp -r /tmp/keep/dist .
    echo "join-model: $dir ready (sha256 ok)" ;;
  *) echo "join-model: a or b" >&2; exit 1 ;;
esac
