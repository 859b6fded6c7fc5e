// The desktop guest image (src/vm/images/desktop.ts: Debian, Xorg with the qxl driver, openbox, xterm) under a
// short-lived QEMU of the SPICE tests' own (helpers/qemu.ts): TCP SPICE (so images are compressed as for remote
// clients), -vga qxl, QMP for screendumps, qemu-guest-agent for commands in the X session, and the serial console
// log for the image's ready marker. Started paused, so that a client connected before `cont` sees every drawing
// command the guest's X server sends, not one picture of the finished screen. One such guest at a time: it takes
// most of two cores for about a minute while it boots.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GuestAgent, type GuestExecResult } from '../../../src/vm/guest-agent.ts';
import type { ImageManifest } from '../../../src/vm/images/types.ts';
import { ensureDesktopImage } from '../../helpers/images.ts';
import { startQemu, type QemuInstance } from './qemu.ts';

export interface DesktopGuest {
  q: QemuInstance;
  manifest: ImageManifest;
  agent: GuestAgent;
  /** Lets the paused guest run. */
  start(): Promise<void>;
  /** Resolves when the desktop is usable (the image's ready marker on ttyS0), or rejects after `timeoutMs`. */
  ready(timeoutMs: number): Promise<void>;
  /** A shell script as the desktop user, in the X session (DISPLAY, XAUTHORITY); rejects on a non-zero exit. */
  runAsUser(script: string, timeoutMs?: number): Promise<string>;
  /** A shell script as root. */
  run(script: string, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startDesktopGuest(): Promise<DesktopGuest> {
  const manifest = await ensureDesktopImage();
  const dir = mkdtempSync(join(tmpdir(), 'osd-'));
  const overlay = join(dir, 'disk.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', manifest.disk!, overlay]);
  const serialLog = join(dir, 'serial.log');
  const qga = join(dir, 'qga.sock');
  const q = await startQemu({
    tcp: true,
    vga: 'qxl',
    paused: true,
    cpus: manifest.cpus ?? 2,
    memoryMb: manifest.memoryMiB ?? 1024,
    extraArgs: [
      '-kernel',
      manifest.kernel!,
      '-initrd',
      manifest.initrd!,
      '-append',
      manifest.append!,
      '-blockdev',
      `driver=qcow2,node-name=disk0,file.driver=file,file.filename=${overlay}`,
      '-device',
      'virtio-blk-pci,drive=disk0',
      '-chardev',
      `file,id=s0,path=${serialLog}`,
      '-serial',
      'chardev:s0',
      '-device',
      'virtio-serial-pci',
      '-chardev',
      'spicevmc,id=vdagent,name=vdagent',
      '-device',
      'virtserialport,chardev=vdagent,name=com.redhat.spice.0',
      '-chardev',
      `socket,id=qga0,path=${qga},server=on,wait=off`,
      '-device',
      'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
      '-device',
      'virtio-rng-pci',
    ],
  });
  const agent = new GuestAgent(qga);
  const env = manifest.execEnv ?? {};
  const check = (r: GuestExecResult, script: string): string => {
    if (r.exitCode !== 0) throw new Error(`guest script failed (${r.exitCode}): ${script}\n${r.stderr}`);
    return r.stdout;
  };
  return {
    q,
    manifest,
    agent,
    start: async () => void (await q.qmp.execute('cont')),
    async ready(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (!(existsSync(serialLog) && readFileSync(serialLog, 'utf8').includes(manifest.readyMarker!))) {
        if (Date.now() > deadline) throw new Error(`desktop guest not ready within ${timeoutMs} ms`);
        await sleep(250);
      }
      await agent.waitUntilAnswering(Math.max(1000, deadline - Date.now()));
    },
    run: async (script, timeoutMs = 60_000) =>
      check(await agent.exec(['sh', '-c', script], { env, timeoutMs }), script),
    runAsUser: async (script, timeoutMs = 60_000) =>
      check(await agent.exec(['runuser', '-u', 'user', '--', 'sh', '-c', script], { env, timeoutMs }), script),
    async stop() {
      agent.close();
      await q.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
