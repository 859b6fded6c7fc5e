// Boots the desktop guest through a real Oriel server (test/helpers/server.ts) and waits until its desktop is usable
// (the image's ready marker: an xterm window is viewable), then hands tests the VM's guest agent client. For tests of
// the SPICE display, agent, clipboard and file transfer against a real X desktop.
//
//   const t = await startTestServer();
//   const vm = await startDesktopVm(t);            // builds the image on first use (minutes), boots (~1 min under TCG)
//   await vm.execAsUser(['xrandr']);               // in the X session, as the desktop user
//   ... t.destroy() ends the VM.
//
// Boot to ready takes 40-55 s on an idle 2-core machine under TCG; run one desktop guest at a time.
import type { GuestAgent, GuestExecOptions, GuestExecResult } from '../../src/vm/guest-agent.ts';
import { ensureDesktopImage } from './images.ts';
import type { TestServer } from './server.ts';

export interface DesktopVm {
  name: string;
  /** Milliseconds from the start request to the ready marker. */
  bootMs: number;
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
  /** Networks (names) to give the VM a card on. */
  networks?: string[];
}

/** The desktop user's X session, for commands run through the guest agent. */
export const DESKTOP_X_ENV = { DISPLAY: ':0', XAUTHORITY: '/home/user/.Xauthority' };

export async function startDesktopVm(t: TestServer, name = 'desktop', o: DesktopVmOptions = {}): Promise<DesktopVm> {
  await ensureDesktopImage();
  const c = await t.admin.post('/api/vms', {
    name,
    image: 'desktop',
    ...(o.memoryMiB ? { memoryMiB: o.memoryMiB } : {}),
    ...(o.networks ? { networks: o.networks } : {}),
  });
  if (c.status !== 201) throw new Error(`create desktop VM '${name}': HTTP ${c.status} ${JSON.stringify(c.body)}`);
  const started = Date.now();
  const s = await t.admin.post(`/api/vms/${name}/start`);
  if (s.status !== 200) throw new Error(`start desktop VM '${name}': HTTP ${s.status} ${JSON.stringify(s.body)}`);
  const vms = () => t.server.ctx.vms;
  await vms().waitReady(name, o.readyTimeoutMs ?? 300_000);
  const bootMs = Date.now() - started;
  const env = () => vms().get(name).spec.execEnv ?? DESKTOP_X_ENV;
  const exec = (argv: string[], opts: GuestExecOptions = {}) =>
    vms()
      .guestAgent(name)
      .exec(argv, { ...opts, env: { ...env(), ...opts.env } });
  return {
    name,
    bootMs,
    get agent() { return vms().guestAgent(name); },
    exec,
    execAsUser: (argv, opts) => exec(['runuser', '-u', 'user', '--', ...argv], opts),
  };
}
