// passt (Debian package `passt`) as the uplink of a --nat network: it speaks QEMU's stream framing and carries the
// guest side's TCP, UDP and ping over the host's own sockets. passt gets one end of a socket pair as its fd 3
// (--fd): no socket file exists that anybody else could open. It runs while the server does (one-off: it ends when
// the pair closes) and is started again if it dies.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { ipText } from './frames.ts';
import type { Forward } from './nat.ts';

/** passt's own MAC on the uplink (-M). */
export const PASST_MAC = '02:0f:70:61:73:74';
const RESTART_MS = 2000;

export interface PasstOptions {
  binary?: string;
  /** The address the network's flows leave from (the gateway's); passt takes it for its guest's (-a). */
  natIp: number;
  /** Host ports to carry in at start (setForwards changes them). */
  forwards?: Forward[];
  onLink(sock: Socket): void;
  log(msg: string, extra: Record<string, unknown>): void;
}

export class PasstUplink {
  private child?: ChildProcess;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private forwards: Forward[] = [];

  constructor(private readonly o: PasstOptions) {
    this.forwards = o.forwards ?? [];
    this.start();
  }

  private start(): void {
    if (this.stopped) return;
    // Forwards listen on the host's loopback only; passt connects to the NAT address at the same port, which the
    // switch carries to the guest's port (nat.ts).
    const ports = (proto: 'tcp' | 'udp') => {
      const list = this.forwards.filter((f) => f.proto === proto).map((f) => `127.0.0.1/${f.port}`);
      return list.length ? list.flatMap((p) => [proto === 'tcp' ? '-t' : '-u', p]) : [proto === 'tcp' ? '-t' : '-u', 'none'];
    };
    const args = ['-f', '-q', '-4', '--fd', '3', '-a', ipText(this.o.natIp), '-M', PASST_MAC, ...ports('tcp'),
      ...ports('udp')];
    const child = spawn(this.o.binary ?? 'passt', args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    this.child = child;
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.once('error', (e) => this.o.log('cannot run passt for a --nat network', { error: e.message }));
    child.once('exit', (code, signal) => {
      if (this.stopped) return;
      this.o.log('passt ended; starting it again', { code, signal, stderr: err.trim() });
      this.timer = setTimeout(() => this.start(), RESTART_MS);
    });
    this.o.onLink(child.stdio[3] as Socket);
  }

  /** Starts passt again with these forwards if they changed (open flows through the uplink end). */
  setForwards(list: Forward[]): void {
    const key = (l: Forward[]) => l.map((f) => `${f.proto}/${f.port}`).sort().join(',');
    if (key(list) === key(this.forwards)) return;
    this.forwards = list;
    if (this.stopped) return;
    const old = this.child;
    this.child = undefined;
    if (old && old.exitCode === null) {
      old.removeAllListeners('exit');
      old.once('exit', () => this.start());
      old.kill('SIGTERM');
    } else this.start();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.child && this.child.exitCode === null) this.child.kill('SIGTERM');
  }
}
