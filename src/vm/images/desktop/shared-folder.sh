#!/bin/sh
# The guest half of Oriel's shared folders and fast file drops (oriel-shared-folder.service, as root, while
# spice-webdavd runs). spice-webdavd relays TCP connections to 127.0.0.1:9843 to the SPICE client, which serves
# WebDAV. A client that is there answers OPTIONS with "X-Oriel-Share: folder" (a folder is shared) or "drops";
# one that is not never answers. The shared folder is mounted with davfs2 at ~/Shared for the desktop user, and
# unmounted when the client leaves or stops sharing. Files the client drops are offered one by one at
# /.oriel-drops/next ("ID/SIZE/NAME", or 204 after a while): one bigger than the free space is refused at once ("no
# space"); each other one is fetched into ~/Downloads as the user, under a free
# name, and the client is told how it went (POST ...?status=done or failed, with the name or the error).
url=http://127.0.0.1:9843
dir=/home/user/Shared
dl=/home/user/Downloads
mkdir -p "$dir" "$dl" && chown user:user "$dir" "$dl"
unmount() { if mountpoint -q "$dir"; then umount -l "$dir"; fi; }
trap 'unmount; exit 0' TERM INT
while :; do
  share=$(curl -s -m 5 -o /dev/null -D - -X OPTIONS "$url/" | tr -d '\r' |
    sed -n 's/^[Xx]-[Oo]riel-[Ss]hare: *//p')
  case "$share" in
    '') unmount; sleep 1; continue ;;
    folder) mountpoint -q "$dir" ||
      mount -t davfs -o uid=user,gid=user,dir_mode=0755,file_mode=0644 "$url/" "$dir" </dev/null ;;
    *) unmount ;;
  esac
  drop=$(curl -sf -m 30 "$url/.oriel-drops/next")
  case "$drop" in */*) ;; *) continue ;; esac
  id=${drop%%/*}
  rest=${drop#*/}
  size=${rest%%/*}
  name=$(basename -- "${rest#*/}")
  part="$dl/.oriel-drop-$id.part"
  avail=$(df -P -B1 "$dl" | awk 'NR==2 {print $4}')
  if [ "$size" -gt "$((avail - 16777216))" ] 2>/dev/null; then
    printf 'no space left in ~/Downloads for %s (%s bytes, %s free)' "$name" "$size" "$avail" |
      curl -s -m 10 -o /dev/null --data-binary @- "$url/.oriel-drops/$id?status=failed"
    continue
  fi
  if runuser -u user -- curl -sSf -o "$part" "$url/.oriel-drops/$id" 2>/run/oriel-drop-error; then
    target=$name
    n=1
    while [ -e "$dl/$target" ]; do target="$name ($n)"; n=$((n + 1)); done
    runuser -u user -- mv -- "$part" "$dl/$target"
    printf '%s' "$target" | curl -s -m 10 -o /dev/null --data-binary @- "$url/.oriel-drops/$id?status=done"
  else
    rm -f -- "$part"
    curl -s -m 10 -o /dev/null --data-binary @/run/oriel-drop-error "$url/.oriel-drops/$id?status=failed"
  fi
done
