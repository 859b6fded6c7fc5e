// Failure artefacts of tests that boot guests: when a test fails, what its VMs left goes to
// test-artifacts/<test file>/<test name>/<vm>/ (gitignored): QEMU's log (qemu.log: its stderr and the start banners),
// the guest console (serial.log, serial.log.1), the QMP transcript (qmp-transcript.log, see
// src/vm/qmp/transcript.ts), a capture worker's log, and a screenshot of a VM still running (screen.png).
//
// Nothing to do in a test: the helpers that make data directories call `watchDataDir` (startTestServer, the
// checkpoint rig), and `stashDataDir` before they remove one (destroyServer, killVmsIn), so a test that cleans up
// in its own `finally` still leaves its logs; an after-each hook (registered when this module loads, for every test
// of the file) keeps them if the test failed and drops them otherwise.
import { afterEach } from 'node:test';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { VmManager } from '../../src/vm/manager.ts';

process.env.ORIEL_QMP_TRANSCRIPT = '1';

const ROOT = resolve(import.meta.dirname, '../..');
const OUT = join(ROOT, 'test-artifacts');
/** What this test process has stashed since the last test ended. */
const STAGE = join(OUT, '.pending', String(process.pid));
const LOGS = ['qemu.log', 'serial.log.1', 'serial.log', 'qmp-transcript.log', 'ckpt-worker.log'];

/** Data directories in use, with the manager of their VMs when in this process (for names and screenshots). */
const watched = new Map<string, () => VmManager | undefined>();
/** VM folder names (name-id) seen, for stashes after the server has closed its database. */
const folders = new Map<string, string>();

export function watchDataDir(dataDir: string, vms?: () => VmManager | undefined): void {
  watched.set(dataDir, vms ?? (() => undefined));
}

/** Copies what the VMs of `dataDir` left into the stage (screenshots first, with `shots`: before they are stopped).
 * Synchronous without `shots`. Never throws. */
export async function stashDataDir(dataDir: string, opts: { shots?: boolean } = {}): Promise<void> {
  const vms = watched.get(dataDir)?.();
  const root = join(dataDir, 'vms');
  if (!existsSync(root)) return;
  for (const id of readdirSync(root)) {
    let vm: ReturnType<VmManager['get']> | undefined;
    try { vm = vms?.get(id); } catch { /* deleted meanwhile, or the server has closed */ }
    if (vm) folders.set(id, `${vm.name}-${id}`);
    const dest = join(STAGE, folders.get(id) ?? id);
    mkdirSync(dest, { recursive: true });
    if (opts.shots && vm && (vm.state === 'running' || vm.state === 'paused')) {
      await vms!.qmp(id).execute('screendump', { filename: join(dest, 'screen.png'), format: 'png' })
        .catch(() => undefined); // no display, or QEMU going away
    }
    for (const f of LOGS) {
      try { copyFileSync(join(root, id, f), join(dest, f)); } catch { /* not there */ }
    }
  }
}

const safe = (s: string) => s.replace(/[^\w.-]+/g, '_').slice(0, 120);

afterEach(async (t) => {
  // TestContext.passed (Node >= 20.12; not in this @types/node yet).
  if ((t as { passed?: boolean }).passed !== false) {
    rmSync(STAGE, { recursive: true, force: true });
    return;
  }
  for (const dir of watched.keys()) await stashDataDir(dir, { shots: true }); // those still there

  if (!existsSync(STAGE)) return;
  const file = relative(join(ROOT, 'test'), resolve(process.argv[1] ?? 'unknown'));
  const dest = join(OUT, ...file.split('/').map(safe), safe(t.name));
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(join(dest, '..'), { recursive: true });
  renameSync(STAGE, dest);
  process.stderr.write(`test artefacts of '${t.name}' kept in ${relative(ROOT, dest)}\n`);
});

process.once('exit', () => rmSync(STAGE, { recursive: true, force: true }));
