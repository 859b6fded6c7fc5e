// The capture worker's receiving path for bench/capture-throughput.ts, as worker/main.ts runs it.
import type { Socket } from 'node:net';
import { PagePool, type CheckpointStore, type Manifest } from '../src/checkpoint/page-store/index.ts';
import { MigrationStreamParser } from '../src/checkpoint/stream/index.ts';

export const poolOption = (): number | undefined => {
  const a = process.argv.find((x) => x.startsWith('--pool='));
  return a ? Number(a.split('=')[1]) : undefined;
};

const meta = (id: string) => ({
  id, vmId: 'bench', vmName: 'bench', createdAt: new Date().toISOString(), parent: null, kind: 'manual' as const,
  qemu: { version: '7.2' }, spec: {}, wasRunning: true, guestReady: true, disks: [],
  stats: { pauseMs: null, durationMs: 0 },
});

let shared: PagePool | undefined;
/** The receiving path with the pool the worker uses (`--pool=0`: single-threaded). */
export async function receiveInto(store: CheckpointStore, parent: Manifest | undefined, id: string) {
  const size = poolOption();
  const pool = size === 0 ? undefined : (shared ??= new PagePool(size));
  const writer = await store.beginCheckpoint({ parent, pool });
  const parser = new MigrationStreamParser(writer);
  let sealMs = 0;
  let m: Manifest | undefined;
  return {
    push: (s: Socket, c: Buffer) => {
      parser.push(c);
      if (writer.congested) {
        s.pause();
        void writer.room().then(() => s.resume());
      }
    },
    end: async () => {
      const parsed = parser.end();
      await writer.flushPages();
      const t = performance.now();
      writer.seal(parsed);
      m = writer.publish(meta(id));
      sealMs = performance.now() - t;
    },
    sealMs: () => sealMs,
    manifest: () => m!,
  };
}

/** The restore pre-check as restore.ts runs it (`--old-precheck`: one object at a time, as before); returns the
 * number of objects read. */
export async function precheck(store: CheckpointStore, m: Manifest): Promise<number> {
  if (!process.argv.includes('--old-precheck')) return store.checkAll(m, poolOption());
  const all = new Set(store.references(m));
  for (const h of all) store.blob(h);
  return all.size;
}

export async function closePool(): Promise<void> {
  await shared?.close();
}
