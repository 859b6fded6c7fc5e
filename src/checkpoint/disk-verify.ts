// Checks of checkpoint disk images (qcow2 files in a chain, disk.ts): a digest of what an image holds of its own,
// recorded when the checkpoint is taken, and a check that compares it, the qcow2 metadata (`qemu-img check`) and the
// backing the manifest names with what is on disk.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { DiskRecord } from './page-store/index.ts';

const run = promisify(execFile);
/** Digest unit: qcow2's default cluster size, so the digest does not depend on how `qemu-img map` merges extents. */
const UNIT = 65_536;

interface MapExtent { start: number; length: number; depth: number; present: boolean; zero: boolean; offset?: number }

/**
 * SHA-256 over the clusters an image holds itself (not its backing's): for each, in guest order, its guest offset,
 * whether it reads as zeros, and its bytes as stored in the file. Found with `qemu-img map`; the backing chain must
 * be readable. Changes only when the image's own content does (a rebase that merges a parent in: recompute).
 */
export async function diskDigest(qemuImg: string, file: string): Promise<string> {
  const { stdout } = await run(qemuImg, ['map', '-U', '--output=json', '-f', 'qcow2', file], {
    maxBuffer: 256 * 1024 * 1024,
  });
  const extents = JSON.parse(stdout) as MapExtent[];
  const h = createHash('sha256');
  const buf = Buffer.alloc(UNIT);
  const fd = openSync(file, 'r');
  try {
    for (const e of extents) {
      if (e.depth !== 0 || !e.present) continue;
      for (let at = 0; at < e.length; at += UNIT) {
        const n = Math.min(UNIT, e.length - at);
        h.update(`${e.start + at}:${n}:${e.zero ? 'Z' : 'D'};`);
        if (e.zero) continue;
        if (e.offset === undefined) throw new Error(`${file}: data at ${e.start + at} has no file offset (compressed?)`);
        let got = 0;
        while (got < n) {
          const r = readSync(fd, buf, got, n - got, e.offset + at + got);
          if (r === 0) throw new Error(`${file}: ends before its data at file offset ${e.offset + at + got}`);
          got += r;
        }
        h.update(buf.subarray(0, n));
      }
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** What is wrong with a checkpoint's disk image (root = the checkpoint root), or null when it is sound: missing,
 * qcow2 metadata corrupt, backed by another file than the manifest says, or its content not what was recorded. */
export async function diskImageProblem(qemuImg: string, root: string, rec: DiskRecord): Promise<string | null> {
  const file = join(root, rec.file);
  if (!existsSync(file)) return 'missing';
  let info: { 'backing-filename'?: string };
  try {
    info = JSON.parse((await run(qemuImg, ['info', '-U', '--output=json', '-f', 'qcow2', file])).stdout) as typeof info;
  } catch (e) {
    return `not a readable qcow2 image (${firstLine(e)})`;
  }
  const backing = info['backing-filename'] ? relative(root, info['backing-filename']) : null;
  if (backing !== rec.backing) return `backed by ${backing ?? 'nothing'}, expected ${rec.backing ?? 'nothing'}`;
  if (rec.backing && !existsSync(join(root, rec.backing))) return `its backing image ${rec.backing} is missing`;
  // qemu-img check exits 2 for corruptions, 3 for leaked clusters only (harmless), with the JSON report either way.
  const checked = await run(qemuImg, ['check', '-U', '--output=json', '-f', 'qcow2', file]).then(
    (r) => r.stdout,
    (e: { stdout?: string; code?: number }) => (e.code === 3 ? e.stdout ?? '{}' : `!${firstLine(e)}`),
  );
  if (checked.startsWith('!')) return `qemu-img check: ${checked.slice(1)}`;
  const rep = JSON.parse(checked) as { corruptions?: number; 'check-errors'?: number };
  if (rep.corruptions || rep['check-errors'])
    return `qcow2 metadata damaged (${rep.corruptions ?? 0} corruptions, ${rep['check-errors'] ?? 0} errors)`;
  if (rec.digest) {
    let digest: string;
    try {
      digest = await diskDigest(qemuImg, file);
    } catch (e) {
      return `cannot be read (${firstLine(e)})`;
    }
    if (digest !== rec.digest) return `its content does not match its digest (${digest.slice(0, 12)}…)`;
  }
  return null;
}

function firstLine(e: unknown): string {
  const err = e as { stderr?: string; message?: string };
  return (err.stderr?.trim() || err.message || String(e)).split('\n')[0]!;
}
