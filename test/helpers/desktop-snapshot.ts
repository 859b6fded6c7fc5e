// The booted desktop, saved once and restored by every desktop test: the first desktop VM that boots to its ready
// marker is paused, its state sent through QEMU's migration (the same stream a checkpoint captures) into a file,
// its disk overlay copied beside it; later desktop VMs start QEMU with `-incoming defer` and load that file: a few
// seconds instead of ~50 s of booting under TCG. The guest is as real as after a boot (a real QEMU running the real
// image, resumed where it stood: what a user gets after restoring a checkpoint); the boot itself stays tested by
// test/vm/images/desktop.test.ts, which always boots.
//
// Kept in ~/.cache/oriel/test-desktop/<key>, the key made of the image's recipe, the QEMU binary and QEMU's command
// line (paths, names and ports aside), the newest four: another device model (a new card, SPICE on TCP) makes the
// next VM of that model boot and save its own.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync,
  renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { waitMigration } from '../../src/checkpoint/migration.ts';
import { defaultConfig } from '../../src/config.ts';
import type { ImageManifest } from '../../src/vm/images/types.ts';
import type { VmManager } from '../../src/vm/manager.ts';

interface SavedMeta {
  argv: string[];
  savedAt: string;
  stateBytes: number;
}

const QEMU = '/usr/bin/qemu-system-x86_64';

const ROOT = () => join(defaultConfig().cacheDir, 'test-desktop');
/** Saved states kept (one per QEMU command line in use, e.g. SPICE on a unix socket and on TCP). */
const KEEP = 4;

/** The saved state for this image, this QEMU binary and this command line. */
function snapshotDir(image: ImageManifest, argv: string[]): string {
  const q = statSync(QEMU);
  const key = createHash('sha256').update(`${image.recipe}\n${q.size}\n${q.mtimeMs}\n${argv.join('\n')}`).digest('hex');
  return join(ROOT(), key.slice(0, 24));
}

/** Removes all but the newest KEEP saved states. */
function prune(): void {
  const dirs = readdirSync(ROOT(), { withFileTypes: true }).filter((d) => d.isDirectory() && !d.name.includes('.tmp-'))
    .map((d) => ({ p: join(ROOT(), d.name), t: statSync(join(ROOT(), d.name)).mtimeMs })).sort((a, b) => b.t - a.t);
  for (const d of dirs.slice(KEEP)) rmSync(d.p, { recursive: true, force: true });
}

/** QEMU's command line with the VM's folder, id and name replaced, so two VMs of the same model compare equal. */
function modelArgv(vms: VmManager, name: string): string[] {
  const vm = vms.get(name);
  const dir = vms.paths(vm).dir;
  const pid = Number(readFileSync(vms.paths(vm).pidfile, 'utf8').trim());
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  return argv
    .map((a, i) => (argv[i - 1] === '-name' ? '<name>' : a.split(dir).join('<dir>').split(vm.id).join('<id>')))
    .map((a) => a.replace(/\bport=\d+/, 'port=<port>')) // SPICE on TCP: a free port per boot
    .map((a) => a.replace(/\bprealloc=off\b/, 'prealloc=on')) // huge-page RAM: a restoring QEMU does not preallocate
    .filter((a) => a !== 'defer' && a !== '-incoming');
}

/**
 * Saves the running, ready desktop VM `name` (paused for the copy, then resumed). Failures only cost the next test
 * a boot: they are reported, not thrown.
 */
export async function saveDesktop(vms: VmManager, name: string, image: ImageManifest): Promise<void> {
  const argv = modelArgv(vms, name);
  const final = snapshotDir(image, argv);
  const tmp = `${final}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const sock = join(vms.paths(vms.get(name)).dir, 'save.sock');
  try {
    let stateBytes = 0;
    await vms.withQmp(name, async (qmp) => {
      await qmp.execute('stop');
      try {
        rmSync(sock, { force: true });
        const received = await receiveTo(sock, join(tmp, 'state'));
        await qmp.execute('migrate', { uri: `unix:${sock}` });
        const info = await waitMigration(qmp);
        stateBytes = await received.done;
        if (info.status !== 'completed') throw new Error(`migration ${info.status}`);
        copyFileSync(vms.paths(vms.get(name)).disk, join(tmp, 'disk.qcow2'));
      } finally {
        await qmp.execute('cont');
      }
    }, { ownRunState: true, action: 'save the desktop for the next tests' });
    const meta: SavedMeta = { argv, savedAt: new Date().toISOString(), stateBytes };
    writeFileSync(join(tmp, 'meta.json'), JSON.stringify(meta, null, 1));
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
    prune();
  } catch (e) {
    console.error(`# the booted desktop was not saved (the next desktop test boots): ${(e as Error).message}`);
    rmSync(tmp, { recursive: true, force: true });
  } finally {
    rmSync(sock, { force: true });
  }
}

/**
 * Starts the created, stopped desktop VM `name` from the state saved for its command line. Returns false when there
 * is none, or it did not load (then removed): the VM is stopped again, with a fresh disk, and the caller boots it.
 */
export async function restoreDesktop(vms: VmManager, name: string, image: ImageManifest): Promise<boolean> {
  if (!existsSync(ROOT())) return false;
  const paths = vms.paths(vms.get(name));
  await vms.start(name, { incoming: { reason: 'loading the saved desktop' } });
  const dir = snapshotDir(image, modelArgv(vms, name));
  let meta: SavedMeta | undefined;
  try {
    meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as SavedMeta;
  } catch { /* none saved for this command line */ }
  if (!meta) {
    console.error('# no saved desktop for this QEMU command line: booting, then saving it');
    await vms.forceStop(name);
    return false;
  }
  // QEMU opened the disk at start but keeps it inactive until the incoming migration completes, and then reads it
  // afresh (as for a migration over shared storage): the saved disk's contents replace the new overlay's in place.
  copyFileSync(join(dir, 'disk.qcow2'), paths.disk);
  const sock = join(paths.dir, 'load.sock');
  try {
    await vms.withQmp(name, async (qmp) => {
      rmSync(sock, { force: true });
      await qmp.execute('migrate-incoming', { uri: `unix:${sock}` });
      await sendFrom(sock, join(dir, 'state'));
      const info = await waitMigration(qmp);
      if (info.status !== 'completed') throw new Error(`QEMU did not load the saved desktop: migration ${info.status}`);
      vms.markReady(name);
      await qmp.execute('cont');
    }, { ownRunState: true, action: 'load the saved desktop' });
  } catch (e) {
    console.error(`# the saved desktop did not load (${(e as Error).message}): booting, then saving again`);
    await vms.forceStop(name).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    // A fresh overlay on the image, for the boot that follows.
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image.disk!, paths.disk]);
    return false;
  } finally {
    rmSync(sock, { force: true });
  }
  // The guest's clock stood still while it was saved: set it to now (as a resumed laptop's NTP would).
  await vms.guestAgent(name).exec(['date', '-u', '-s', `@${Math.floor(Date.now() / 1000)}`], { timeoutMs: 30_000 });
  return true;
}

/** Listens on `path` for one connection (QEMU's outgoing migration); `done` resolves when what it sent is in `file`. */
async function receiveTo(path: string, file: string): Promise<{ done: Promise<number> }> {
  let srv!: ReturnType<typeof createServer>;
  const done = new Promise<number>((resolve, reject) => {
    srv = createServer((s: Socket) => {
      srv.close();
      pipeline(s, createWriteStream(file)).then(() => resolve(statSync(file).size), reject);
    });
    srv.on('error', reject);
  });
  done.catch(() => undefined);
  await new Promise<void>((resolve) => srv.listen(path, resolve));
  return { done };
}

async function sendFrom(path: string, file: string): Promise<void> {
  const s = await new Promise<Socket>((resolve, reject) => {
    const c = createConnection(path, () => resolve(c));
    c.once('error', reject);
  });
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), s);
}
