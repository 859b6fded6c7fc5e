// Boots the desktop guest through a real Oriel server (test/helpers/server.ts) and waits until its desktop is usable
// (the image's ready marker: an xterm window is viewable), then hands tests the VM's guest agent client. For tests of
// the SPICE display, agent, clipboard and file transfer against a real X desktop.
//
//   const t = await startTestServer();
//   const vm = await startDesktopVm(t);            // builds the image on first use (minutes), boots (~1 min under TCG)
//   await vm.execAsUser(['xrandr']);               // in the X session, as the desktop user
//   ... t.destroy() ends the VM.
//
// Boot to ready takes 40-55 s on an idle 2-core machine under TCG; run one desktop guest at a time. So the first
// VM that boots is saved once ready, and later ones start from that saved state in a few seconds
// (desktop-snapshot.ts); `boot: true` always boots (the boot tests).
import type { GuestAgent, GuestExecOptions, GuestExecResult } from '../../src/vm/guest-agent.ts';
import { restoreDesktop, saveDesktop } from './desktop-snapshot.ts';
import { ensureDesktopImage } from './images.ts';
import type { TestServer } from './server.ts';

export interface DesktopVm {
  name: string;
  /** Milliseconds from the start request to the ready marker (or to the saved desktop running again). */
  bootMs: number;
  /** Whether it started from the saved desktop rather than booting. */
  restored: boolean;
  /** The server's guest agent client for this VM (shared with `oriel vm exec`; requests queue). */
  agent: GuestAgent;
  /** Runs a command as root, with the image's environment (DISPLAY=:0 and XAUTHORITY of the session included). */
  exec(argv: string[], opts?: GuestExecOptions): Promise<GuestExecResult>;
  /** Runs a command as the desktop user (`user`) in the X session. */
  execAsUser(argv: string[], opts?: GuestExecOptions): Promise<GuestExecResult>;
}

export interface DesktopVmOptions {
  /** Default: the image's (1024 MiB). */
  memoryMiB?: number;
  /** Default 300 s: generous, for a machine busy with other work. */
  readyTimeoutMs?: number;
  /** Boot even when a saved desktop exists (and save it again). */
  boot?: boolean;
  /** Networks (names) to give the VM a card on (such a VM always boots, and is not saved). */
  networks?: string[];
}

/** The desktop user's X session, for commands run through the guest agent. */
export const DESKTOP_X_ENV = { DISPLAY: ':0', XAUTHORITY: '/home/user/.Xauthority' };

export async function startDesktopVm(t: TestServer, name = 'desktop', o: DesktopVmOptions = {}): Promise<DesktopVm> {
  const image = await ensureDesktopImage();
  const c = await t.admin.post('/api/vms', {
    name,
    image: 'desktop',
    ...(o.memoryMiB ? { memoryMiB: o.memoryMiB } : {}),
    ...(o.networks ? { networks: o.networks } : {}),
  });
  if (c.status !== 201) throw new Error(`create desktop VM '${name}': HTTP ${c.status} ${JSON.stringify(c.body)}`);
  const started = Date.now();
  const vms = () => t.server.ctx.vms;
  // Only the plain model is saved: the one most tests use.
  const plain = !o.memoryMiB && !o.networks?.length;
  const restored = !o.boot && plain && await restoreDesktop(vms(), name, image);
  if (!restored) {
    const s = await t.admin.post(`/api/vms/${name}/start`);
    if (s.status !== 200) throw new Error(`start desktop VM '${name}': HTTP ${s.status} ${JSON.stringify(s.body)}`);
    await vms().waitReady(name, o.readyTimeoutMs ?? 300_000);
  }
  const bootMs = Date.now() - started;
  const env = () => vms().get(name).spec.execEnv ?? DESKTOP_X_ENV;
  const exec = (argv: string[], opts: GuestExecOptions = {}) =>
    vms()
      .guestAgent(name)
      .exec(argv, { ...opts, env: { ...env(), ...opts.env } });
  if (!restored && plain) {
    // Saved only once the SPICE agent runs too, so that every later test finds it there.
    await until(async () => (await exec(['pgrep', '-x', 'spice-vdagent'])).exitCode === 0, 60_000);
    await saveDesktop(vms(), name, image);
  }
  return {
    name,
    bootMs,
    restored,
    get agent() { return vms().guestAgent(name); },
    exec,
    execAsUser: (argv, opts) => exec(['runuser', '-u', 'user', '--', ...argv], opts),
  };
}

async function until(ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok().catch(() => false))) {
    if (Date.now() > end) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}
