#!/usr/bin/env bash
# test_disk_full.sh — write failures of `mixlm train` name the file, errno's text and the remedy,
# exit 1 (never a crash) and keep the last good checkpoint: log.jsonl on a full device
# (/dev/full); and, where tmpfs can be mounted (root), a checkpoint on a full file system and a
# resume in a read-only run directory (skipped elsewhere: chmod does not stop root).
set -u
bin=${MIXLM_BIN:?MIXLM_BIN not set}
dir=$(mktemp -d /tmp/mixlm-full.XXXXXX)
mnt=""
cleanup() { [ -n "$mnt" ] && umount "$mnt" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

awk 'BEGIN{srand(9); for(i=0;i<3000;i++){ printf "%s ", substr("abcdefgh", int(rand()*8)+1, int(rand()*3)+1) } }' \
  > "$dir/corpus.txt"
common=(--data "$dir/corpus.txt" --layers 2 --heads 2 --dim 64 --context 16 --batch 2 --eval-batches 2
        --log-every 1 --threads 2 --quiet)

# log.jsonl on a full device: the first append fails, naming the step, the file and ENOSPC.
if [ -w /dev/full ]; then
  "$bin" train "${common[@]}" --steps 10 --stop-after 4 --out "$dir/log" > /dev/null 2>&1
  sum=$(md5sum < "$dir/log/model.safetensors")
  rm "$dir/log/log.jsonl" && ln -s /dev/full "$dir/log/log.jsonl"
  out=$("$bin" train --resume "$dir/log" --quiet 2>&1); rc=$?
  check "log on a full device: exit 1 naming step, file and errno (rc $rc)" \
    "[ $rc -eq 1 ] && grep -q 'cannot append step 5 to log.jsonl: No space left on device' <<< \"\$out\""
  check "log on a full device: the checkpoint is untouched" "[ \"\$(md5sum < $dir/log/model.safetensors)\" = \"$sum\" ]"
else
  echo "skip log on a full device: no writable /dev/full"
fi

if [ "$(id -u)" = 0 ] && mkdir -p "$dir/mnt" && mount -t tmpfs -o size=160k tmpfs "$dir/mnt" 2>/dev/null; then
  mnt="$dir/mnt"
  # A checkpoint that does not fit: named with errno's text; no temporary left behind.
  out=$("$bin" train "${common[@]}" --steps 10 --ckpt-every 5 --out "$mnt/run" 2>&1); rc=$?
  check "checkpoint on a full file system: exit 1, the temporary, errno and the remedy (rc $rc)" \
    "[ $rc -eq 1 ] && grep -q \"cannot write '$mnt/run/model.safetensors.tmp.[0-9]*': No space left on device; free space\" <<< \"\$out\""
  check "checkpoint on a full file system: says none was saved before" "grep -q 'none was saved before' <<< \"\$out\""
  check "checkpoint on a full file system: no temporary left" "! ls $mnt/run | grep -q '\.tmp\.'"
  # A run directory made read-only: eval works, a resume says what to do.
  rm -rf "$mnt/run"
  "$bin" train "${common[@]}" --layers 1 --dim 16 --steps 4 --out "$mnt/ro" > /dev/null 2>&1
  mount -o remount,ro "$mnt"
  "$bin" eval "$mnt/ro" > /dev/null 2>&1
  check "read-only run: eval works" "[ $? -eq 0 ]"
  out=$("$bin" train --resume "$mnt/ro" --extend-to 8 --quiet 2>&1); rc=$?
  check "read-only run: a resume exits 1 naming the file, errno and the fix (rc $rc)" \
    "[ $rc -eq 1 ] && grep -q 'log.jsonl.* for appending: Read-only file system; .*make it writable' <<< \"\$out\""
else
  echo "skip full and read-only file systems: tmpfs cannot be mounted here (needs root)"
fi
exit $fail
