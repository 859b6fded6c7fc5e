// Fills a process's hugetlb memfd (QEMU's `memory-backend-memfd` of a huge-page VM) from outside it: fallocate(2) on
// the file through /proc/PID/fd. After a lazy restore, QEMU's postcopy ADVISE has punched every page out of the file,
// and hugetlbfs dropped their reservations with them: a page the restore never sent (an all-zero one) would be taken
// from the host's pool only when the guest first touches it, and if the pool is empty then, QEMU gets SIGBUS.
// Filling the file takes those pages from the pool now, zeroed, as `prealloc=on` did at the start.
import { closeSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { errnoName, lastErrno, libcFunction, type CFunction } from './libc.ts';

let fallocate: CFunction | null | undefined;

/** Allocates every page of `pid`'s memfd named `name`; never throws. */
export async function fillMemfd(pid: number, bytes: number, name = 'memory-backend-memfd'):
  Promise<{ ms: number } | { failed: string }> {
  fallocate ??= libcFunction('int fallocate(int fd, int mode, int64_t offset, int64_t len)');
  if (!fallocate) return { failed: 'no fallocate in libc' };
  const t0 = Date.now();
  let fd: number | undefined;
  try {
    const dir = `/proc/${pid}/fd`;
    const n = readdirSync(dir).find((f) => {
      try {
        return readlinkSync(`${dir}/${f}`).startsWith(`/memfd:${name} `);
      } catch {
        return false;
      }
    });
    if (n === undefined) return { failed: `no memfd '${name}' in process ${pid}` };
    fd = openSync(`${dir}/${n}`, 'r+');
    const f = fallocate;
    const [r, e] = await new Promise<[number, number]>((ok, fail) =>
      f.async(fd, 0, 0, bytes, (err: Error | null, v: number) => (err ? fail(err) : ok([v, lastErrno()]))));
    return r === 0 ? { ms: Date.now() - t0 } : { failed: `fallocate: ${errnoName(e)}${e === 28 ? ' (the pool is short)' : ''}` };
  } catch (e) {
    return { failed: (e as Error).message };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
