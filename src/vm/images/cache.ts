// The image cache's folder rules, shared by the builders: an image is a folder <cacheDir>/images/<name>-<recipe>
// whose manifest.json is written last; builds happen in <cacheDir>/tmp/<name>-<pid>-<random>/ and are renamed into
// place whole, so an interrupted build never leaves a folder that looks like an image.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ImageManifest } from './types.ts';

export function readManifest(dir: string): ImageManifest | undefined {
  const f = join(dir, 'manifest.json');
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as ImageManifest) : undefined;
}

/** Renames the finished folder into place; if another process got there first, its image is the one returned. */
export function publish(out: string, dir: string): ImageManifest | undefined {
  mkdirSync(dirname(dir), { recursive: true });
  const theirs = readManifest(dir);
  if (theirs) return theirs;
  removeTree(dir); // a folder without manifest is nobody's image
  try {
    renameSync(out, dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const won = (code === 'ENOTEMPTY' || code === 'EEXIST') && readManifest(dir);
    if (won) return won;
    throw e;
  }
  return undefined;
}

/**
 * Removes a build folder without ever crossing into another file system: a chroot tree may hold a mount point
 * (builders mount only inside private mount namespaces, so none should be visible here, but a tree removed by
 * mistake would take the host's /proc or /dev with it).
 */
export function removeTree(dir: string): void {
  if (!existsSync(dir)) return;
  try {
    execFileSync('rm', ['-rf', '--one-file-system', '--', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch {
    rmSync(dir, { recursive: true, force: true }); // no GNU rm: the plain way (no mounts can be there, see above)
  }
}

/** Removes build folders (<name>-<pid>-<random>) whose process is gone (a build killed midway). */
export function removeAbandoned(tmpRoot: string): void {
  if (!existsSync(tmpRoot)) return;
  for (const name of readdirSync(tmpRoot)) {
    const pid = Number(name.match(/^[a-z]+-(\d+)-[0-9a-f]+$/)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) continue;
    removeTree(join(tmpRoot, name));
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` holding <cacheDir>/tmp/<name>.lock, so that two processes (a server and a test run, say) never build the
 * same image at once: the second waits, then finds the first one's image (its `fn` checks the cache first). A lock
 * whose process is gone is taken over.
 */
export async function withBuildLock<T>(
  cacheDir: string,
  name: string,
  fn: () => Promise<T>,
  o: { signal?: AbortSignal; onWait?(pid: number): void } = {},
): Promise<T> {
  const lock = join(cacheDir, 'tmp', `${name}.lock`);
  mkdirSync(dirname(lock), { recursive: true });
  let told = false;
  for (;;) {
    o.signal?.throwIfAborted();
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let pid = NaN;
    try { pid = Number(readFileSync(join(lock, 'pid'), 'utf8')); } catch { /* being written, or removed */ }
    if (pid && (pid === process.pid || !alive(pid))) {
      // its owner died (our own pid: a lock left by an earlier process with the same pid)
      rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (pid && !told) { o.onWait?.(pid); told = true; }
    await new Promise((r) => setTimeout(r, 1000));
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
