// Real QEMU processes for the QMP client tests, and a fake QMP server for the few conditions QEMU cannot produce
// (a command never answered, a malformed line).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const QEMU = 'qemu-system-x86_64';

/** The version `qemu-system-x86_64 --version` reports, to compare with the greeting's. */
export function qemuVersion(): { major: number; minor: number; micro: number } {
  const out = spawnSync(QEMU, ['--version'], { encoding: 'utf8' }).stdout;
  const m = /version (\d+)\.(\d+)\.(\d+)/.exec(out);
  if (!m) throw new Error(`cannot read the QEMU version from: ${out}`);
  return { major: Number(m[1]), minor: Number(m[2]), micro: Number(m[3]) };
}

export interface Qemu {
  pid: number;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything QEMU wrote to stderr so far (for assertion messages). */
  stderr(): string;
}

/** Test fixtures that clean up after themselves: a short temp dir (unix socket paths must stay under 108 bytes)
 * and every QEMU started through `qemu()`, killed by pid in `cleanup()`. */
export class Fixtures {
  readonly dir = mkdtempSync(join(tmpdir(), 'qmp-'));
  private readonly started: Qemu[] = [];
  private servers: Server[] = [];
  private n = 0;

  /** A fresh socket path in the temp dir. */
  socketPath(): string {
    return join(this.dir, `q${this.n++}.sock`);
  }

  /** Starts QEMU with its QMP server on `sock` (`-machine none` unless `machine` says otherwise). */
  qemu(sock: string, machine: string[] = ['-machine', 'none']): Qemu {
    const child = spawn(
      QEMU,
      [
        ...machine,
        '-nodefaults',
        '-no-user-config',
        '-display',
        'none',
        '-accel',
        'tcg',
        '-qmp',
        `unix:${sock},server=on,wait=off`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    const q: Qemu = { pid: child.pid!, exited, stderr: () => err };
    this.started.push(q);
    return q;
  }

  /** A unix server on a fresh path that runs `onClient` for each connection. */
  async fakeServer(onClient: (socket: Socket) => void): Promise<string> {
    const path = this.socketPath();
    const server = createServer(onClient);
    this.servers.push(server);
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return path;
  }

  async cleanup(): Promise<void> {
    for (const q of this.started) {
      try {
        process.kill(q.pid, 'SIGKILL');
      } catch {
        // already exited
      }
    }
    await Promise.all(this.started.map((q) => q.exited.catch(() => undefined)));
    for (const s of this.servers) s.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Plays the QMP handshake of a fake server, then hands each later command to `onCommand`. */
export function fakeQmp(
  socket: Socket,
  onCommand: (cmd: { execute: string; id?: unknown }, socket: Socket) => void,
): void {
  socket.on('error', () => undefined);
  socket.write(
    '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "fake"}, "capabilities": []}}\r\n',
  );
  let buf = '';
  socket.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
      const cmd = JSON.parse(buf.slice(0, nl)) as { execute: string; id?: unknown };
      buf = buf.slice(nl + 1);
      if (cmd.execute === 'qmp_capabilities') socket.write(`${JSON.stringify({ return: {}, id: cmd.id })}\r\n`);
      else onCommand(cmd, socket);
    }
  });
}
