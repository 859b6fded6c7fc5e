// Child process for the crash test: writes a checkpoint of a captured stream into a store, slowly, so the parent
// can kill it (SIGKILL) in the middle. Usage: node --import tsx write-child.ts ROOT STREAM_FILE
import { readFileSync } from 'node:fs';
import { CheckpointStore } from '../../src/checkpoint/page-store/index.ts';
import { MigrationStreamParser } from '../../src/checkpoint/stream/index.ts';

const [root, file] = process.argv.slice(2) as [string, string];
const store = new CheckpointStore(root);
const w = await store.beginCheckpoint();
const p = new MigrationStreamParser(w);
const bytes = readFileSync(file);
process.stdout.write('started\n');
for (let i = 0; i < bytes.length; i += 256 * 1024) {
  p.push(bytes.subarray(i, i + 256 * 1024));
  await new Promise((r) => setTimeout(r, 20));
}
const parsed = p.end();
w.finish(parsed, {
  id: 'child', vmId: 'vm', vmName: 'vm', createdAt: new Date().toISOString(), parent: null, kind: 'manual',
  qemu: { version: '7.2', machine: parsed.machine }, spec: {}, wasRunning: true, guestReady: true, disks: [],
  stats: { pauseMs: null, durationMs: 0 },
});
process.stdout.write('finished\n');
