// The VM manager: runs QEMU for each VM and keeps the VM's row in SQLite in step with what QEMU does.
//
// States and the transitions the API allows (anything else is a 409 that says why):
//   stopped|crashed --start--> starting --(QMP up)--> running
//   running --pause--> paused --resume--> running;  running|paused --reset--> (same)
//   running|paused --stop--> stopping --(guest powers off, or forced after the timeout)--> stopped
//   starting|running|paused|stopping --force-stop--> stopped
//   any live state --(QEMU exits without being asked)--> crashed (with the tail of QEMU's log)
//
// QEMU runs detached from the server (its own session, its pid in a pidfile, QMP on a unix socket), so a server
// restart re-attaches running VMs instead of losing them. QMP's socket closing is how a death is noticed, whether
// Oriel started that QEMU or re-attached it.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { conflict, notFound, OrielError, unprocessable, unavailable } from '../errors.ts';
import type { Accel } from '../config.ts';
import type { Db } from '../store/database.ts';
import { resolveAccel } from './accel.ts';
import { createOverlay, diskInfo } from './disk.ts';
import { findBuiltImage } from './images/registry.ts';
import { checkHugePages } from './hugepages.ts';
import { GuestAgent } from './guest-agent.ts';
import { execByAgent, execByShell, type ExecResult } from './guest-exec.ts';
import { vmPaths, type VmPaths } from './paths.ts';
import { isAlive, isOurQemu, readPidfile, sleep, tail, waitUntil } from './process.ts';
import { newSpiceEndpoint, qemuArgs } from './qemu-args.ts';
import { DEFAULT_SERIAL_LOG_MAX_BYTES, SerialLogKeeper, serialLogShows } from './serial-log.ts';
import { QmpClient } from './qmp/index.ts';
import { recheckSpecPaths, resolveSpec } from './resolve-spec.ts';
import { howItEnded, type Runtime } from './runtime.ts';
import { VM_ID_RE, VM_NAME_RE, vmRequestSchema, type VmSpec, type VmState } from './spec.ts';
import { VmStore, type VmRecord } from './store.ts';
// A timer that keeps the process alive: at server start nothing else may (the HTTP server is not listening yet).
import { setTimeout as delay } from 'node:timers/promises';

export interface VmManagerOptions {
  db: Db;
  dataDir: string;
  cacheDir: string;
  qemuBinary: string;
  qemuImgBinary: string;
  accel: Accel;
  stopTimeoutSec: number;
  /** Folders admins may name disk images, kernels and initrds in (host-paths.ts). */
  imagesDirs?: string[];
  /** The cap on each running VM's serial.log (serial-log.ts); DEFAULT_SERIAL_LOG_MAX_BYTES when unset. */
  serialLogMaxBytes?: number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => void;
  /** Quotas: each throws to refuse; called right before a VM's row is inserted and before a start marks it
   * `starting`, with no await between check and write, so parallel requests cannot both pass a check one fits. */
  admit?: { create(ownerId: string, spec: VmSpec): void; start(vm: VmRecord): void };
}

export type { ExecResult } from './guest-exec.ts';

/** Options of `start`. */
export interface StartOptions {
  /** Restore: start QEMU with `-incoming defer` (checkpoints then send `migrate-incoming` through `withQmp`). The
   * VM shows as paused until the incoming stream has been loaded and the guest continues. */
  incoming?: boolean;
}

const QMP_START_TIMEOUT_MS = 20_000;
const FORCE_WAIT_MS = 5_000;
/** How long a restarted server keeps trying to reach a live QEMU's QMP before it ends that QEMU. */
const REATTACH_TIMEOUT_MS = 20_000;

export class VmManager extends EventEmitter {
  readonly store: VmStore;
  private readonly runtimes = new Map<string, Runtime>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly serialLogs: SerialLogKeeper;

  constructor(private readonly o: VmManagerOptions) {
    super();
    this.store = new VmStore(o.db);
    mkdirSync(`${o.dataDir}/vms`, { recursive: true, mode: 0o700 });
    this.serialLogs = new SerialLogKeeper(o.serialLogMaxBytes ?? DEFAULT_SERIAL_LOG_MAX_BYTES,
      () => [...this.runtimes.keys()].map((id) => vmPaths(o.dataDir, id).serialLog),
      (path, e) => this.log('warn', 'cannot cap the serial log', { path, error: e.message }));
    this.serialLogs.start();
  }

  private log(level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) {
    this.o.log?.(level, msg, extra);
  }

  paths(vm: VmRecord): VmPaths {
    return vmPaths(this.o.dataDir, vm.id);
  }

  /** The VM `ref` names: an id (12 hex digits, a shape no name may have) or a name, never one taken for the other. */
  get(ref: string): VmRecord {
    const vm = VM_ID_RE.test(ref) ? this.store.get(ref) : this.store.byName(ref);
    if (!vm) throw notFound(`no VM named '${ref}'`);
    return vm;
  }

  list(ownerId?: string): VmRecord[] {
    return this.store.list(ownerId);
  }

  /** Serialises lifecycle actions on one VM, so two requests never race on the same QEMU. */
  private withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    this.locks.set(id, next.catch(() => undefined));
    return next;
  }

  private setState(id: string, state: VmState, reason: string | null, pid?: number | null): VmRecord {
    const vm = this.store.setState(id, state, reason, pid);
    this.emit('changed', vm);
    return vm;
  }

  private requireState(vm: VmRecord, allowed: VmState[], action: string): void {
    if (!allowed.includes(vm.state)) {
      throw conflict(`cannot ${action} VM '${vm.name}': it is ${vm.state} (${action} needs ${allowed.join(' or ')})`);
    }
  }

  // ---- create / delete ----

  /** Validates a request, resolves its image and creates the VM's folder and disk overlay. */
  async create(input: unknown, ownerId: string, opts: { hostPaths?: boolean } = {}): Promise<VmRecord> {
    const parsed = vmRequestSchema.safeParse(input);
    if (!parsed.success) {
      throw new OrielError(
        400,
        parsed.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ` : '') + i.message).join('; '),
        'bad_request',
      );
    }
    const req = parsed.data;
    if (this.store.byName(req.name)) throw conflict(`a VM named '${req.name}' already exists`);
    const spec = await resolveSpec(req, this.o, opts.hostPaths ?? false);
    const id = this.store.newId();
    const p = vmPaths(this.o.dataDir, id);
    mkdirSync(p.dir, { recursive: true, mode: 0o700 });
    try {
      await this.newDisk(ownerId, spec, p.disk);
      const vm = this.store.insert({ id, name: req.name, ownerId, spec });
      this.emit('changed', vm);
      this.log('info', 'vm created', { vm: vm.name, id });
      return vm;
    } catch (e) {
      rmSync(p.dir, { recursive: true, force: true });
      if (e instanceof OrielError) throw e;
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE')
        throw conflict(`a VM named '${req.name}' already exists`);
      throw e;
    }
  }

  /** A new, stopped VM with the same spec (device model, image, memory) as `ref`: the target of a restore as a new
   * VM. Its overlay sits on the same base; the restore then replaces it with the checkpoint's disk. */
  async createLike(ref: string, name: string, ownerId: string): Promise<VmRecord> {
    const src = this.get(ref);
    if (!VM_NAME_RE.test(name) || VM_ID_RE.test(name)) throw new OrielError(400, `invalid VM name '${name}'`, 'bad_request');
    if (this.store.byName(name)) throw conflict(`a VM named '${name}' already exists`);
    await recheckSpecPaths(src.name, src.spec, this.o);
    const id = this.store.newId();
    const p = vmPaths(this.o.dataDir, id);
    mkdirSync(p.dir, { recursive: true, mode: 0o700 });
    try {
      const spec = { ...src.spec };
      await this.newDisk(ownerId, spec, p.disk);
      const vm = this.store.insert({ id, name, ownerId, spec });
      this.emit('changed', vm);
      return vm;
    } catch (e) {
      rmSync(p.dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** The overlay of a new VM (if it has a disk) and its provisioned size, then the quotas' word (no await after). */
  private async newDisk(ownerId: string, spec: VmSpec, disk: string): Promise<void> {
    if (spec.baseDisk) {
      await createOverlay(this.o.qemuImgBinary, spec.baseDisk, spec.baseFormat!, disk);
      spec.diskBytes = (await diskInfo(this.o.qemuImgBinary, disk, 'qcow2')).virtualSize;
    }
    this.o.admit?.create(ownerId, spec);
  }

  async delete(ref: string): Promise<void> {
    const vm = this.get(ref);
    await this.withLock(vm.id, async () => {
      const cur = this.store.get(vm.id)!;
      this.requireState(cur, ['stopped', 'crashed'], 'delete');
      rmSync(this.paths(cur).dir, { recursive: true, force: true });
      this.store.delete(cur.id);
      this.emit('deleted', cur);
      this.log('info', 'vm deleted', { vm: cur.name, id: cur.id });
    });
  }

  // ---- lifecycle ----

  start(ref: string, opts: StartOptions = {}): Promise<VmRecord> {
    const vm = this.get(ref);
    return this.withLock(vm.id, () => this.doStart(this.store.get(vm.id)!, opts));
  }

  private async doStart(vm: VmRecord, opts: StartOptions = {}): Promise<VmRecord> {
    this.requireState(vm, ['stopped', 'crashed'], 'start');
    const p = this.paths(vm);
    const spec = vm.spec;
    for (const f of [spec.kernel, spec.initrd, spec.baseDisk ? p.disk : undefined]) {
      if (f && !existsSync(f))
        throw unprocessable(`cannot start VM '${vm.name}': ${f} is missing (was the image cache cleared?)`);
    }
    await recheckSpecPaths(vm.name, spec, this.o);
    // A pidfile left by a QEMU that died with the machine, or whose pid now belongs to another process.
    const stalePid = readPidfile(p.pidfile);
    if (stalePid !== undefined) {
      if (isAlive(stalePid) && isOurQemu(stalePid, p.qmp)) {
        throw conflict(`QEMU for VM '${vm.name}' is still running as pid ${stalePid}; force-stop it first`);
      }
      this.log('warn', 'removing stale pidfile', { vm: vm.name, pid: stalePid });
    }
    const stale = [p.pidfile, p.qmp, p.spice, p.serial, p.shell, p.guestAgent, p.serialLog, p.serialLogPrev];
    for (const f of stale) rmSync(f, { force: true });

    if (spec.hugepages) checkHugePages(vm.name, spec.memoryMiB);
    this.o.admit?.start(this.store.get(vm.id)!); // no await from here to the state write (quotas)
    this.setState(vm.id, 'starting', null, null);
    const tiny = spec.accel === 'auto' ? findBuiltImage(this.o.cacheDir, 'tiny') : undefined;
    const accel = await resolveAccel(
      spec.accel,
      this.o.qemuBinary,
      tiny?.kernel && tiny.initrd ? { kernel: tiny.kernel, initrd: tiny.initrd } : undefined,
    );
    const args = qemuArgs(vm.name, spec, p, accel, await newSpiceEndpoint(p));
    // Restore (checkpoints): QEMU waits for `migrate-incoming` instead of booting.
    if (opts.incoming) args.push('-incoming', 'defer');
    const logFd = openSync(p.qemuLog, 'a', 0o600);
    writeSync(logFd, `--- ${new Date().toISOString()} starting QEMU (accel ${accel})\n`);
    let child: ChildProcess;
    try {
      // setsid (detached) so the VM survives the server: a restarted server re-attaches it.
      child = spawn(this.o.qemuBinary, args, { detached: true, stdio: ['ignore', logFd, logFd], cwd: p.dir });
    } finally {
      closeSync(logFd);
    }
    child.unref();
    const early = new Promise<never>((_, reject) => {
      child.once('error', (e) =>
        reject(
          unavailable(
            `cannot run ${this.o.qemuBinary}: ${e.message} (is qemu-system-x86 installed? run scripts/bootstrap.sh)`,
          ),
        ),
      );
      child.once('exit', (code, signal) =>
        reject(
          unprocessable(
            `QEMU exited at once (${signal ?? `code ${code}`}): ${tail(p.qemuLog, 5)
              .split('\n')
              .filter((l) => !l.startsWith('---'))
              .join(' | ')}`,
          ),
        ),
      );
    });
    early.catch(() => undefined);
    try {
      const qmp = await Promise.race([QmpClient.connect(p.qmp, { retryUntilMs: QMP_START_TIMEOUT_MS }), early]);
      const status = await qmp.queryStatus();
      this.attach(vm, qmp, child.pid!, child);
      this.log('info', 'vm started', { vm: vm.name, pid: child.pid, accel, incoming: opts.incoming ?? false });
      // An incoming VM (status `inmigrate`) runs no guest code yet: paused until the restore lets it continue (its
      // RESUME event then flips it to running).
      if (opts.incoming || status.status === 'inmigrate')
        return this.setState(vm.id, 'paused', 'waiting for a checkpoint to be restored', child.pid!);
      return this.setState(vm.id, status.status === 'paused' ? 'paused' : 'running', null, child.pid!);
    } catch (e) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const err =
        e instanceof OrielError
          ? e
          : unprocessable(`QEMU did not come up: ${(e as Error).message}. ${tail(p.qemuLog, 5)}`);
      this.setState(vm.id, 'stopped', err.message, null);
      throw err;
    }
  }

  /** Wires a live QEMU to its VM: events keep the state in step, the socket closing means QEMU is gone. */
  private attach(vm: VmRecord, qmp: QmpClient, pid: number, child?: ChildProcess): Runtime {
    let markGone!: () => void;
    const rt: Runtime = {
      qmp,
      pid,
      child,
      expectExit: false,
      quietRunState: 0,
      gone: new Promise<void>((r) => (markGone = r)),
    };
    this.runtimes.set(vm.id, rt);
    child?.once('exit', (code, signal) => (rt.childExit = { code, signal }));
    qmp.onEvent((ev) => {
      if (ev.event === 'SHUTDOWN')
        rt.shutdownReason = String((ev.data as { reason?: string } | undefined)?.reason ?? 'shutdown');
      const cur = this.store.get(vm.id);
      if (!cur) return;
      if (rt.quietRunState > 0) return; // a checkpoint's own pause (withQmp); the state is reconciled after it
      // Pauses and resumes done from outside Oriel (a QEMU monitor, a guest panic) still show in the state.
      if (ev.event === 'STOP' && cur.state === 'running') this.setState(vm.id, 'paused', 'paused by QEMU');
      if (ev.event === 'RESUME' && cur.state === 'paused') this.setState(vm.id, 'running', null);
    });
    void qmp.closed.then(async () => {
      if (rt.detached) return;
      await this.onQemuGone(vm.id, rt);
      markGone();
    });
    return rt;
  }

  private async onQemuGone(id: string, rt: Runtime): Promise<void> {
    if (this.runtimes.get(id) === rt) this.runtimes.delete(id);
    rt.shell?.close();
    rt.agent?.close();
    // QMP closes a moment before the process is reaped; wait so the pid is really free.
    // Our own child: its exit event says how it ended (signal or code); a re-attached QEMU is watched by pid.
    const ended = () => (rt.child ? rt.childExit !== undefined : !isAlive(rt.pid));
    if (!(await waitUntil(ended, FORCE_WAIT_MS))) {
      this.log('warn', 'QMP closed but QEMU still runs; killing it', { id, pid: rt.pid });
      try { process.kill(rt.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    const vm = this.store.get(id);
    if (!vm) return;
    const p = this.paths(vm);
    for (const f of [p.pidfile, p.qmp, p.spice, p.serial, p.shell, p.guestAgent]) rmSync(f, { force: true });
    const end = howItEnded(rt, p.qemuLog);
    this.setState(id, end.state, end.reason, null);
    if (end.state === 'stopped') this.log('info', 'vm stopped', { vm: vm.name });
    else this.log('warn', 'vm crashed', { vm: vm.name, pid: rt.pid, how: end.how });
  }

  private runtime(vm: VmRecord): Runtime {
    const rt = this.runtimes.get(vm.id);
    if (!rt) throw conflict(`VM '${vm.name}' is ${vm.state}: QEMU is not running`);
    return rt;
  }

  pause(ref: string): Promise<VmRecord> {
    const vm = this.get(ref);
    return this.withLock(vm.id, async () => {
      const cur = this.store.get(vm.id)!;
      this.requireState(cur, ['running'], 'pause');
      await this.runtime(cur).qmp.execute('stop');
      return this.setState(cur.id, 'paused', null);
    });
  }

  resume(ref: string): Promise<VmRecord> {
    const vm = this.get(ref);
    return this.withLock(vm.id, async () => {
      const cur = this.store.get(vm.id)!;
      this.requireState(cur, ['paused'], 'resume');
      await this.runtime(cur).qmp.execute('cont');
      return this.setState(cur.id, 'running', null);
    });
  }

  reset(ref: string): Promise<VmRecord> {
    const vm = this.get(ref);
    return this.withLock(vm.id, async () => {
      const cur = this.store.get(vm.id)!;
      this.requireState(cur, ['running', 'paused'], 'reset');
      await this.runtime(cur).qmp.execute('system_reset');
      return this.store.get(cur.id)!;
    });
  }

  /** ACPI shutdown; if the guest has not powered off after `timeoutSec`, QEMU is stopped by force. */
  stop(ref: string, timeoutSec = this.o.stopTimeoutSec): Promise<VmRecord> {
    const vm = this.get(ref);
    return this.withLock(vm.id, async () => {
      const cur = this.store.get(vm.id)!;
      this.requireState(cur, ['running', 'paused'], 'stop');
      const rt = this.runtime(cur);
      this.setState(cur.id, 'stopping', null);
      try {
        // A paused guest cannot see the power button.
        if (cur.state === 'paused') await rt.qmp.execute('cont');
        await rt.qmp.execute('system_powerdown');
      } catch (e) {
        this.log('warn', 'ACPI shutdown request failed', { vm: cur.name, error: (e as Error).message });
      }
      const done = await Promise.race([rt.gone.then(() => true), sleep(timeoutSec * 1000).then(() => false)]);
      if (!done) {
        this.log('warn', 'guest ignored ACPI shutdown; forcing', { vm: cur.name, timeoutSec });
        await this.kill(rt);
        return this.setState(
          cur.id,
          'stopped',
          `the guest did not power off within ${timeoutSec} s; it was stopped by force`,
          null,
        );
      }
      return this.store.get(cur.id)!;
    });
  }

  forceStop(ref: string): Promise<VmRecord> {
    const vm = this.get(ref);
    return this.withLock(vm.id, async () => {
      const cur = this.store.get(vm.id)!;
      this.requireState(cur, ['starting', 'running', 'paused', 'stopping'], 'force-stop');
      await this.kill(this.runtime(cur));
      return this.store.get(cur.id)!;
    });
  }

  /** Ends QEMU: `quit` over QMP (lets QEMU flush its disks), then SIGKILL if it lingers. */
  private async kill(rt: Runtime): Promise<void> {
    rt.expectExit = true;
    await rt.qmp.execute('quit', undefined, { timeoutMs: 2000 }).catch(() => undefined);
    if (await Promise.race([rt.gone.then(() => true), sleep(FORCE_WAIT_MS).then(() => false)])) return;
    try { process.kill(rt.pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
    await rt.gone;
  }

  // ---- guest access ----

  /** Waits for the image's ready marker on the guest console (this boot's serial.log). */
  async waitReady(ref: string, timeoutMs: number): Promise<void> {
    const vm = this.get(ref);
    const marker = vm.spec.readyMarker;
    if (!marker) return;
    if (this.runtimes.get(vm.id)?.readyFromCheckpoint) return;
    const p = this.paths(vm);
    const ok = await waitUntil(() => {
      const cur = this.store.get(vm.id);
      if (!cur || !['running', 'starting'].includes(cur.state)) return true;
      return serialLogShows(p.serialLog, marker);
    }, timeoutMs, 100);
    const cur = this.get(ref);
    if (cur.state !== 'running') throw conflict(`VM '${vm.name}' is ${cur.state}`);
    const secs = Math.round(timeoutMs / 1000);
    if (!ok) throw new OrielError(504, `VM '${vm.name}' did not become ready within ${secs} s (no '${marker}' on its console)`, 'timeout');
  }

  /** Runs a command in the guest through the image's command channel (guest-exec.ts), once the guest is ready. */
  async exec(ref: string, argv: string[], timeoutMs = 60_000): Promise<ExecResult> {
    const vm = this.get(ref);
    const byAgent = vm.spec.exec === 'guest-agent';
    if (!byAgent && vm.spec.exec !== 'serial-shell')
      throw unprocessable(`VM '${vm.name}' has no command channel: its image does not provide one`);
    this.requireState(vm, ['running'], 'run a command in');
    const started = Date.now();
    await this.waitReady(ref, timeoutMs);
    const left = () => Math.max(1000, timeoutMs - (Date.now() - started));
    if (byAgent) return execByAgent(vm, () => this.guestAgent(ref), argv, left);
    const live = () => this.runtime(this.get(ref));
    return execByShell(vm, this.paths(vm).shell, live, () => this.runtimes.get(vm.id), argv, left);
  }

  /** The guest agent client of a running VM whose image has one (one connection, shared by all callers). */
  guestAgent(ref: string): GuestAgent {
    const vm = this.get(ref);
    if (!vm.spec.devices?.includes('guest-agent'))
      throw unprocessable(`VM '${vm.name}' has no guest agent: its image does not provide one`);
    const rt = this.runtime(vm);
    rt.agent ??= new GuestAgent(this.paths(vm).guestAgent);
    return rt.agent;
  }

  /** QMP of a running VM, for the console proxy, screendumps and checkpoints. */
  qmp(ref: string): QmpClient {
    const vm = this.get(ref);
    return this.runtime(vm).qmp;
  }

  /** Whether the guest has shown its ready marker (this boot), without waiting. Checkpoints record it. */
  isReady(ref: string): boolean {
    const vm = this.get(ref);
    if (!vm.spec.readyMarker || this.runtimes.get(vm.id)?.readyFromCheckpoint) return true;
    const p = this.paths(vm);
    return serialLogShows(p.serialLog, vm.spec.readyMarker);
  }

  /** Restore: the guest now runs from a checkpoint taken after its ready marker (serial.log of this QEMU will not
   * show it again), so `exec` need not wait for it. */
  markReadyFromCheckpoint(ref: string): void {
    this.runtime(this.get(ref)).readyFromCheckpoint = true;
  }

  /**
   * For checkpoints and restores: runs `fn` with the VM's QMP client under the VM's lifecycle lock (no start, stop or
   * pause runs meanwhile). With `quietRunState`, STOP/RESUME events raised meanwhile (a checkpoint's pause of a few
   * ms, QEMU resuming after a background snapshot or an incoming migration) do not change the VM's state; when
   * `fn` ends the state is set from QEMU's `query-status` once (running, or paused for any stopped run state).
   */
  withQmp<T>(
    ref: string,
    fn: (qmp: QmpClient, vm: VmRecord) => Promise<T>,
    opts: { quietRunState?: boolean } = {},
  ): Promise<T> {
    const vm = this.get(ref);
    return this.withLock(vm.id, async () => {
      const cur = this.store.get(vm.id)!;
      this.requireState(cur, ['running', 'paused'], 'checkpoint or restore');
      const rt = this.runtime(cur);
      if (!opts.quietRunState) return fn(rt.qmp, cur);
      rt.quietRunState++;
      try {
        return await fn(rt.qmp, cur);
      } finally {
        rt.quietRunState--;
        if (rt.quietRunState === 0 && !rt.qmp.isClosed) {
          const st = await rt.qmp.queryStatus().catch(() => undefined);
          const now = this.store.get(vm.id);
          if (st && now && (now.state === 'running' || now.state === 'paused')) {
            const want = st.running ? 'running' : 'paused';
            if (want !== now.state || now.stateReason) this.setState(vm.id, want, null);
          }
        }
      }
    });
  }

  // ---- server start / stop ----

  /** Re-attaches VMs whose QEMU survived a server restart; marks the others. `beforeReattach` runs first for each
   * (checkpoints: a capture worker left by the previous server may hold QMP while it ends its checkpoint). */
  async init(opts: { beforeReattach?: (vm: VmRecord) => Promise<void> } = {}): Promise<void> {
    for (const vm of this.store.list()) {
      if (vm.state === 'stopped' || vm.state === 'crashed') continue;
      await opts.beforeReattach?.(vm);
      const p = this.paths(vm);
      const pid = readPidfile(p.pidfile) ?? vm.pid ?? undefined;
      let why = `QEMU was no longer running when Oriel started (last known pid ${pid ?? 'unknown'}).`;
      if (pid !== undefined && isAlive(pid) && isOurQemu(pid, p.qmp)) {
        // QEMU may take a moment to notice that the previous server's QMP connection is gone (it serves one client
        // at a time), or be busy failing a migration whose receiver died: retry before giving up on it.
        const deadline = Date.now() + REATTACH_TIMEOUT_MS;
        let lastError = '';
        while (Date.now() < deadline && isAlive(pid)) {
          try {
            const qmp = await QmpClient.connect(p.qmp, { timeoutMs: 5000 });
            await this.recoverInterrupted(vm, qmp);
            const status = await qmp.queryStatus();
            this.attach(vm, qmp, pid);
            this.setState(
              vm.id,
              status.status === 'paused' || status.status === 'prelaunch' ? 'paused' : 'running',
              null,
              pid,
            );
            this.log('info', 're-attached running vm', { vm: vm.name, pid });
            lastError = '';
            break;
          } catch (e) {
            lastError = (e as Error).message;
            await delay(500);
          }
        }
        if (this.runtimes.has(vm.id)) continue;
        // A QEMU Oriel cannot control would hold the VM's disk lock forever: end it, and say so.
        if (isAlive(pid)) {
          this.log('warn', 'QEMU does not answer on QMP; killing it', { vm: vm.name, pid, error: lastError });
          try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
          await waitUntil(() => !isAlive(pid), FORCE_WAIT_MS);
          why = `QEMU (pid ${pid}) did not answer on QMP when Oriel started (${lastError}); it was stopped by force.`;
        }
      }
      rmSync(p.pidfile, { force: true });
      if (vm.state === 'stopping') this.setState(vm.id, 'stopped', null, null);
      else this.setState(vm.id, 'crashed', `${why}\n${tail(p.qemuLog, 10)}`, null);
    }
  }

  /**
   * A server that died during a checkpoint can leave its QEMU mid-way: stopped for the checkpoint's pause (the `stop`
   * arrived, the migration that resumes the guest did not), or migrating to a socket nobody reads any more. The
   * database still says what the user wanted (running or paused), so: cancel such a migration, and resume a guest
   * the user did not pause. Block jobs (a disk backup) finish or fail on their own; the next checkpoint starts a
   * full disk backup when it cannot trust the last one.
   */
  private async recoverInterrupted(vm: VmRecord, qmp: QmpClient): Promise<void> {
    const mig = await qmp.execute<{ status?: string }>('query-migrate').catch(() => ({ status: undefined }));
    if (mig.status && ['setup', 'active', 'pre-switchover', 'device'].includes(mig.status)) {
      this.log('warn', 'cancelling a migration left by a previous server', { vm: vm.name, status: mig.status });
      await qmp.execute('migrate_cancel').catch(() => undefined);
      await delay(200); // let QEMU finish the cancel before its run state is read
    }
    const st = await qmp.queryStatus();
    if (vm.state === 'running' && !st.running && ['paused', 'postmigrate', 'finish-migrate'].includes(st.status)) {
      this.log('warn', 'resuming a guest left stopped by an interrupted checkpoint', {
        vm: vm.name,
        status: st.status,
      });
      await qmp.execute('cont');
    }
  }

  /** Lets go of QEMU processes without stopping them (server shutdown): they keep running and are re-attached. */
  detachAll(): void {
    this.serialLogs.stop();
    for (const rt of this.runtimes.values()) {
      rt.detached = true;
      rt.shell?.close();
      rt.agent?.close();
      rt.qmp.close();
    }
    this.runtimes.clear();
  }
}

/** For races against a QEMU event: must not keep a server that is stopping alive. */
