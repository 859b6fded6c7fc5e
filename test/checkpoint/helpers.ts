// A VmManager on a scratch data directory (no HTTP server), for checkpoint tests and benchmarks that drive one
// tiny guest directly.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig, scratchRoot } from '../../src/config.ts';
import { openDatabase, type Db } from '../../src/db/database.ts';
import { VmManager } from '../../src/vm/manager.ts';
import { ensureTinyImage } from '../helpers/images.ts';
import { killVmsAtExit, killVmsIn } from '../helpers/server.ts';
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
  killVmsAtExit(dataDir);
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
