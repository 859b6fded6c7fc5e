#!/bin/sh
# The guest half of Oriel's shared folders (oriel-shared-folder.service, as root, beside oriel-webdavd, which relays
# TCP connections to 127.0.0.1:9843 to the SPICE client's WebDAV server). A client that is there answers OPTIONS
# with "X-Oriel-Share: folder" (a folder is shared) or "drops"; without a client, oriel-webdavd closes the connection.
# The shared folder is mounted with davfs2 at ~/Shared for the desktop user, and unmounted when the client leaves or
# stops sharing. (Dropped files are fetched by oriel-webdavd itself.)
url=http://127.0.0.1:9843
dir=/home/user/Shared
mkdir -p "$dir" /home/user/Downloads && chown user:user "$dir" /home/user/Downloads
unmount() { if mountpoint -q "$dir"; then umount -l "$dir"; fi; }
trap 'unmount; exit 0' TERM INT
while :; do
  share=$(curl -s -m 5 -o /dev/null -D - -X OPTIONS "$url/" | tr -d '\r' |
    sed -n 's/^[Xx]-[Oo]riel-[Ss]hare: *//p')
  case "$share" in
    folder) mountpoint -q "$dir" ||
      mount -t davfs -o uid=user,gid=user,dir_mode=0755,file_mode=0644 "$url/" "$dir" </dev/null ;;
    *) unmount ;;
  esac
  sleep 2
done
