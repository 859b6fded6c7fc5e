// A VmManager on a scratch data directory (no HTTP server), for checkpoint tests and benchmarks that drive one
// tiny guest directly.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig, scratchRoot } from '../../src/config.ts';
import { openDatabase, type Db } from '../../src/db/database.ts';
import { VmManager } from '../../src/vm/manager.ts';
import { HUGE_PAGE_POOL, hugePages } from '../../src/vm/hugepages.ts';
import { ensureTinyImage } from '../helpers/images.ts';
import { killVmsIn } from '../helpers/server.ts';
import { stashDataDir, watchDataDir } from '../helpers/artifacts.ts';

export interface Rig {
  dataDir: string;
  db: Db;
  vms: VmManager;
  qemuImg: string;
  destroy(): Promise<void>;
}

export async function makeRig(): Promise<Rig> {
  await ensureTinyImage();
  const cfg = defaultConfig();
  const dataDir = mkdtempSync(join(scratchRoot(), 'ock-'));
  const db = openDatabase(join(dataDir, 'oriel.db'));
  db.prepare(
    "INSERT INTO users (id, name, role, password_hash, created_at) VALUES ('u1', 'admin', 'admin', 'x', ?)",
  ).run(new Date().toISOString());
  const vms = new VmManager({
    db, dataDir, cacheDir: cfg.cacheDir, qemuBinary: cfg.qemuBinary, qemuImgBinary: cfg.qemuImgBinary,
    accel: 'tcg', stopTimeoutSec: 10,
  });
  watchDataDir(dataDir, () => vms);
  return {
    dataDir, db, vms, qemuImg: cfg.qemuImgBinary,
    async destroy() {
      await stashDataDir(dataDir, { shots: true }); // kept if the test fails (helpers/artifacts.ts)
      for (const vm of vms.list()) {
        if (!['stopped', 'crashed'].includes(vm.state)) await vms.forceStop(vm.id).catch(() => undefined);
      }
      db.close();
      killVmsIn(dataDir);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function bootTiny(
  rig: Rig,
  name: string,
  memoryMiB = 192,
  opts: { hugepages?: boolean } = {},
): Promise<void> {
  await rig.vms.create({ name, image: 'tiny', memoryMiB, ...opts }, 'u1');
  await rig.vms.start(name);
  await rig.vms.waitReady(name, 90_000);
}

/**
 * Makes sure the host has `pages` more 2 MiB huge pages free than now by growing the kernel's pool (needs root, as a
 * person setting up huge-page VMs would); returns a function that gives them back, or undefined if they cannot be
 * reserved.
 */
export function reserveHugePages(pages: number): (() => void) | undefined {
  const path = `${HUGE_PAGE_POOL}/nr_hugepages`;
  const before = Number(readFileSync(path, 'utf8'));
  try {
    writeFileSync(path, String(before + pages));
  } catch {
    return undefined;
  }
  const available = hugePages().available;
  if (available < pages) {
    writeFileSync(path, String(before)); // the kernel found fewer free 2 MiB blocks than asked
    return undefined;
  }
  return () => writeFileSync(path, String(before));
}
