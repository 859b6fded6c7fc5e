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
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { conflict, notFound, OrielError, unprocessable } from '../errors.ts';
import { isOurs, readPidfile } from '../host/process.ts';
import { resolveAccel } from './accel.ts';
import { findBuiltImage } from './images/registry.ts';
import { chooseRam, ramOfQemu, type RamBacking, type RamChoice } from './ram-backing.ts';
import { GuestAgent } from './guest-agent.ts';
import { execByAgent, execByShell, type ExecResult } from './guest-exec.ts';
import { VmHookList, type VmHooks } from './hooks.ts';
import { launchQemu } from './launch.ts';
import type { StartOptions, VmManagerOptions, WithQmpOptions } from './manager-options.ts';
import { vmPaths, type VmPaths } from './paths.ts';
import { parseVmRequest, provisionVm } from './provision.ts';
import { resolveVmSpec } from './media-spec.ts';
import { UploadedImages } from './uploads/store.ts';
import { netdevId, newSpiceEndpoint, qemuArgs } from './qemu-args.ts';
import { peeredNetdevs } from './nic-links.ts';
import { reattachQemu } from './reattach.ts';
import { runStateNow, stateFromEvent } from './run-state.ts';
import { DEFAULT_SERIAL_LOG_MAX_BYTES, SerialLogKeeper, serialLogShows, tail } from './serial-log.ts';
import type { QmpClient } from './qmp/index.ts';
import { recheckSpecPaths } from './resolve-spec.ts';
import { settleQemuExit, type Runtime } from './runtime.ts';
import { prepareOpenclWindow } from './opencl-window.ts';
import { hasDisk, VM_ID_RE, VM_NAME_RE, type VmCreateOptions, type VmSpec, type VmState } from './spec.ts';
import { VmRecords, type VmRecord } from './records.ts';
import { sleep, waitUntil } from './wait.ts';

export type { ExecResult } from './guest-exec.ts';
export type { VmHooks } from './hooks.ts';
export type { StartOptions, VmManagerOptions, WithQmpOptions } from './manager-options.ts';

const FORCE_WAIT_MS = 5_000;
/** How long a SIGKILLed QEMU may take to be reaped before forceStop fails, saying so. */
const KILL_WAIT_MS = 30_000;

/** Debugging where a restore's or a pause's time goes: ORIEL_QEMU_TRACE=PREFIX makes QEMU log its migration trace
 * events (or those ORIEL_QEMU_TRACE_EVENTS lists, comma-separated patterns), with timestamps, to
 * PREFIX.<ms since epoch>. */
function migrationTraceArgs(): string[] {
  const prefix = process.env.ORIEL_QEMU_TRACE;
  if (!prefix) return [];
  const events = process.env.ORIEL_QEMU_TRACE_EVENTS?.split(',')
    ?? ['loadvm_*', 'postcopy_*', 'qemu_loadvm_state_section*', 'migration_*'];
  return ['-msg', 'timestamp=on', '-D', `${prefix}.${Date.now()}`, ...events.flatMap((e) => ['-trace', `enable=${e}`])];
}

export class VmManager extends EventEmitter {
  readonly records: VmRecords;
  /** Images users uploaded (ISOs, disk images). */
  readonly images: UploadedImages;
  private readonly runtimes = new Map<string, Runtime>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly serialLogs: SerialLogKeeper;
  private readonly hooks = new VmHookList();

  constructor(private readonly o: VmManagerOptions) {
    super();
    this.records = new VmRecords(o.db);
    this.images = new UploadedImages(o.db, o.dataDir);
    mkdirSync(`${o.dataDir}/vms`, { recursive: true, mode: 0o700 });
    this.serialLogs = new SerialLogKeeper(o.serialLogMaxBytes ?? DEFAULT_SERIAL_LOG_MAX_BYTES,
      () => [...this.runtimes.keys()].map((id) => vmPaths(o.dataDir, id).serialLog),
      (path, e) => this.log('warn', 'cannot cap the serial log', { path, error: e.message }));
    this.serialLogs.start();
  }

  private log(level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) {
    this.o.log?.(level, msg, extra);
  }

  /** Registers extension points (hooks.ts); call before `init`. */
  use(hooks: VmHooks): void {
    this.hooks.add(hooks);
  }

  paths(vm: VmRecord): VmPaths {
    return vmPaths(this.o.dataDir, vm.id);
  }

  /** The VM `ref` names: an id (12 hex digits, a shape no name may have) or a name, never one taken for the other. */
  get(ref: string): VmRecord {
    const vm = VM_ID_RE.test(ref) ? this.records.get(ref) : this.records.byName(ref);
    if (!vm) throw notFound(`no VM named '${ref}'`);
    return vm;
  }

  list(ownerId?: string): VmRecord[] {
    return this.records.list(ownerId);
  }

  /** Serialises lifecycle actions on one VM, so two requests never race on the same QEMU. */
  private withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    this.locks.set(id, next.catch(() => undefined));
    return next;
  }

  private setState(id: string, state: VmState, reason: string | null, pid?: number | null): VmRecord {
    const vm = this.records.setState(id, state, reason, pid);
    this.emit('changed', vm);
    return vm;
  }

  private requireState(vm: VmRecord, allowed: VmState[], action: string): void {
    if (!allowed.includes(vm.state)) {
      throw conflict(`cannot ${action} VM '${vm.name}': it is ${vm.state} (${action} needs ${allowed.join(' or ')})`);
    }
  }

  // ---- create / delete ----

  /** Validates a request, resolves its image and creates the VM's folder and disk overlay (and a card on each of
   * `opts.networks`). */
  async create(input: unknown, ownerId: string, opts: VmCreateOptions = {}): Promise<VmRecord> {
    const req = parseVmRequest(input);
    if (this.records.byName(req.name)) throw conflict(`a VM named '${req.name}' already exists`);
    const caller = { id: ownerId, admin: opts.hostPaths ?? false };
    const { spec, varsFrom } = await resolveVmSpec(req, this.o, this.images, this.records, caller);
    const vm = await provisionVm(this.o, this.records,
      { name: req.name, ownerId, spec, networks: opts.networks, varsFrom });
    this.emit('changed', vm);
    this.log('info', 'vm created', { vm: vm.name, id: vm.id });
    return vm;
  }

  /** A new, stopped VM with the same spec (device model, image, memory) as `ref`, its overlay on the same base: a
   * twin that can take `ref`'s saved state (its disk replaced, its RAM from an incoming migration). Its cards are on
   * the same networks with MACs of its own: a restored guest keeps using the MAC in its saved state (the switch lets
   * none of its frames through: that MAC is the original's) until it resets the card, which then has the copy's. */
  async createLike(ref: string, name: string, ownerId: string): Promise<VmRecord> {
    const src = this.get(ref);
    if (!VM_NAME_RE.test(name) || VM_ID_RE.test(name)) throw new OrielError(400, `invalid VM name '${name}'`, 'bad_request');
    if (this.records.byName(name)) throw conflict(`a VM named '${name}' already exists`);
    await recheckSpecPaths(src.name, src.spec, this.o);
    const networks = src.spec.nics?.map((n) => n.network);
    const vm = await provisionVm(this.o, this.records, { name, ownerId, spec: src.spec, networks });
    this.emit('changed', vm);
    return vm;
  }

  /** A new VM from a spec recorded elsewhere (a checkpoint restored from object storage), checked as createLike's
   * (host files in the allowed folders). Network cards are this server's to give: none here. */
  async createFromSpec(name: string, ownerId: string, spec: VmSpec): Promise<VmRecord> {
    if (!VM_NAME_RE.test(name) || VM_ID_RE.test(name)) throw new OrielError(400, `invalid VM name '${name}'`, 'bad_request');
    if (this.records.byName(name)) throw conflict(`a VM named '${name}' already exists`);
    await recheckSpecPaths(name, spec, this.o);
    const vm = await provisionVm(this.o, this.records, { name, ownerId, spec });
    this.emit('changed', vm);
    return vm;
  }

  async delete(ref: string): Promise<void> {
    const vm = this.get(ref);
    await this.withLock(vm.id, async () => {
      const cur = this.records.get(vm.id)!;
      this.requireState(cur, ['stopped', 'crashed'], 'delete');
      const clones = this.records.list().filter((v) => v.spec.fromTemplate?.id === cur.id).map((v) => `'${v.name}'`);
      if (clones.length) throw conflict(`cannot delete template '${cur.name}': linked clones use it (${clones.join(', ')})`);
      rmSync(this.paths(cur).dir, { recursive: true, force: true });
      rmSync(this.paths(cur).openclWindow, { force: true });
      this.records.delete(cur.id);
      this.emit('deleted', cur);
      this.log('info', 'vm deleted', { vm: cur.name, id: cur.id });
    });
  }

  /** Runs `fn` on a stopped (or crashed) VM under its lifecycle lock: no start runs meanwhile. */
  withStopped<T>(ref: string, action: string, fn: (vm: VmRecord) => Promise<T>): Promise<T> {
    const vm = this.get(ref);
    return this.withLock(vm.id, async () => {
      const cur = this.records.get(vm.id)!;
      this.requireState(cur, ['stopped', 'crashed'], action);
      return fn(cur);
    });
  }

  /** Replaces a VM's spec (media changes, templates, resizes: vm-changes.ts) and tells the observers. */
  setSpec(id: string, spec: VmRecord['spec']): VmRecord {
    const vm = this.records.updateSpec(id, spec);
    this.emit('changed', vm);
    return vm;
  }

  // ---- lifecycle ----

  start(ref: string, opts: StartOptions = {}): Promise<VmRecord> {
    const vm = this.get(ref);
    return this.withLock(vm.id, () => this.doStart(this.records.get(vm.id)!, opts));
  }

  private async doStart(vm: VmRecord, opts: StartOptions = {}): Promise<VmRecord> {
    this.requireState(vm, ['stopped', 'crashed'], 'start');
    if (vm.spec.template) throw conflict(`VM '${vm.name}' is a template: make a linked clone of it to run (vm create --from)`);
    const p = this.paths(vm);
    const spec = vm.spec;
    for (const f of [spec.kernel, spec.initrd, hasDisk(spec) ? p.disk : undefined, spec.cdrom?.file,
      spec.firmware === 'uefi' ? p.vars : undefined]) {
      if (f && !existsSync(f))
        throw unprocessable(`cannot start VM '${vm.name}': ${f} is missing (was the image cache cleared?)`);
    }
    await recheckSpecPaths(vm.name, spec, this.o);
    // A pidfile left by a QEMU that died with the machine, or whose pid now belongs to another process.
    const stalePid = readPidfile(p.pidfile);
    if (stalePid !== undefined) {
      if (isOurs(stalePid, p.qmp))
        throw conflict(`QEMU for VM '${vm.name}' is still running as pid ${stalePid}; force-stop it first`);
      this.log('warn', 'removing stale pidfile', { vm: vm.name, pid: stalePid });
    }
    const stale = [p.pidfile, p.qmp, p.spice, p.serial, p.shell, p.guestAgent, p.opencl, p.serialLog, p.serialLogPrev];
    for (const f of stale) rmSync(f, { force: true });
    prepareOpenclWindow(spec, p);

    this.o.admit?.start(this.records.get(vm.id)!); // no await from here to the state write (quotas)
    this.setState(vm.id, 'starting', null, null);
    let ram: RamChoice | undefined;
    try {
      const tiny = spec.accel === 'auto' ? findBuiltImage(this.o.cacheDir, 'tiny') : undefined;
      const accel = await resolveAccel(
        spec.accel,
        this.o.qemuBinary,
        tiny?.kernel && tiny.initrd ? { kernel: tiny.kernel, initrd: tiny.initrd } : undefined,
        join(this.o.cacheDir, 'accel-verdict.json'),
      );
      // The pool's lease (huge-pool.ts) last, right before QEMU: other VMs' starts wait for it.
      ram = await chooseRam(vm.name, spec, opts.ramId);
      const launch = async (r: RamChoice) => {
        const spice = await newSpiceEndpoint(p);
        const args = qemuArgs(vm.name, spec, p, accel, spice, { incoming: !!opts.incoming, ram: r });
        // QEMU waits for `migrate-incoming` instead of booting.
        if (opts.incoming) args.push('-incoming', 'defer');
        args.push(...migrationTraceArgs());
        // QEMU preallocates huge-page RAM before it greets on QMP: a second per GiB on top.
        const handshakeMs = 10_000 + (r.huge ? spec.memoryMiB : 0);
        return launchQemu(this.o.qemuBinary, args, p, `starting QEMU (accel ${accel})`, opts.onStage, handshakeMs);
      };
      const first = ram;
      const { child, qmp, status } = await launch(first).catch((e: Error) => {
        // The kernel could not find whole 2 MiB pages for the surplus (fragmented memory): an auto VM starts on
        // ordinary memory instead (ram-backing.ts). Told by this launch's own lines of QEMU's log.
        const log = readFileSync(p.qemuLog, 'utf8');
        const mine = log.slice(log.lastIndexOf('\n--- ') + 1);
        if (!first.huge || spec.hugepages !== undefined || !/Cannot allocate memory|Insufficient free host memory/
          .test(mine)) throw e;
        first.lease?.settle();
        for (const f of stale) rmSync(f, { force: true });
        ram = { huge: false, id: first.id, why: 'the kernel could not find enough free 2 MiB pages' };
        return launch(ram);
      });
      const backing = { huge: ram.huge, id: ram.id, ...(ram.why ? { why: ram.why } : {}) };
      const rt = this.attach(vm, qmp, child.pid!, backing, child);
      // QEMU has its huge pages now, or has reserved them (an incoming migration: no prealloc); a restore that
      // discards them first (postcopy) keeps the pool's lease until it has filled them again (settleRam).
      if (opts.settleRamLater) rt.hugeLease = ram.lease;
      else ram.lease?.settle();
      this.log('info', 'vm started', {
        vm: vm.name, pid: child.pid, accel, incoming: !!opts.incoming,
        ram: ram.huge ? 'huge pages' : 'ordinary', ...(ram.why ? { ramWhy: ram.detail ?? ram.why } : {}),
      });
      // An incoming VM (status `inmigrate`) runs no guest code yet: paused until the stream is loaded and the guest
      // continues (its RESUME event then flips it to running).
      if (opts.incoming || status === 'inmigrate') {
        const reason = opts.incoming?.reason ?? 'waiting for an incoming migration';
        return this.setState(vm.id, 'paused', reason, child.pid!);
      }
      return this.setState(vm.id, status === 'paused' ? 'paused' : 'running', null, child.pid!);
    } catch (e) {
      ram?.lease?.settle();
      const err = e instanceof OrielError ? e : unprocessable(`QEMU did not come up: ${(e as Error).message}`);
      this.setState(vm.id, 'stopped', err.message, null);
      throw err;
    }
  }

  /** Wires a live QEMU to its VM: events keep the state in step, the socket closing means QEMU is gone. */
  private attach(vm: VmRecord, qmp: QmpClient, pid: number, ram: RamBacking, child?: ChildProcess): Runtime {
    let markGone!: () => void;
    const rt: Runtime = {
      qmp,
      pid,
      ram,
      child,
      expectExit: false,
      runStateOwners: 0,
      gone: new Promise<void>((r) => (markGone = r)),
    };
    this.runtimes.set(vm.id, rt);
    child?.once('exit', (code, signal) => (rt.childExit = { code, signal }));
    qmp.onEvent((ev) => {
      if (ev.event === 'SHUTDOWN')
        rt.shutdownReason = String((ev.data as { reason?: string } | undefined)?.reason ?? 'shutdown');
      const cur = this.records.get(vm.id);
      if (!cur) return;
      if (rt.runStateOwners > 0) return; // a withQmp session owns it; the state is set when the session ends
      const next = stateFromEvent(ev, cur.state);
      if (next) this.setState(vm.id, next.state, next.reason);
    });
    void qmp.closed.then(async () => {
      if (rt.detached) return;
      // Never an unhandled rejection: a QEMU that ends while its owner shuts down (database closed) is only logged.
      await this.onQemuGone(vm.id, rt).catch((e: Error) => this.log('warn', 'vm exit not recorded', { err: e.message }));
      markGone();
    });
    return rt;
  }

  private async onQemuGone(id: string, rt: Runtime): Promise<void> {
    const vm = this.records.get(id);
    // The runtime stays registered until QEMU's end is recorded: a force-stop meanwhile waits for that (rt.gone)
    // instead of finding no QEMU and returning with the VM still in its old state.
    const forget = () => { if (this.runtimes.get(id) === rt) this.runtimes.delete(id); };
    rt.hugeLease?.settle();
    const end = await settleQemuExit(rt, vm && this.paths(vm), (...a) => this.log(...a)).catch((e: Error) => {
      forget();
      throw e;
    });
    forget();
    // The OpenCL window is RAM (tmpfs): it goes with its QEMU, unless a new one already runs.
    if (vm && !this.runtimes.has(id)) rmSync(this.paths(vm).openclWindow, { force: true });
    if (!vm || !end) return;
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
      const cur = this.records.get(vm.id)!;
      this.requireState(cur, ['running'], 'pause');
      await this.runtime(cur).qmp.execute('stop');
      return this.setState(cur.id, 'paused', null);
    });
  }

  resume(ref: string): Promise<VmRecord> {
    const vm = this.get(ref);
    return this.withLock(vm.id, async () => {
      const cur = this.records.get(vm.id)!;
      this.requireState(cur, ['paused'], 'resume');
      await this.runtime(cur).qmp.execute('cont');
      return this.setState(cur.id, 'running', null);
    });
  }

  reset(ref: string): Promise<VmRecord> {
    const vm = this.get(ref);
    return this.withLock(vm.id, async () => {
      const cur = this.records.get(vm.id)!;
      this.requireState(cur, ['running', 'paused'], 'reset');
      await this.runtime(cur).qmp.execute('system_reset');
      return this.records.get(cur.id)!;
    });
  }

  /** ACPI shutdown; if the guest has not powered off after `timeoutSec`, QEMU is stopped by force. */
  stop(ref: string, timeoutSec = this.o.stopTimeoutSec): Promise<VmRecord> {
    const vm = this.get(ref);
    return this.withLock(vm.id, async () => {
      const cur = this.records.get(vm.id)!;
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
      return this.records.get(cur.id)!;
    });
  }

  forceStop(ref: string): Promise<VmRecord> {
    const vm = this.get(ref);
    return this.withLock(vm.id, async () => {
      const cur = this.records.get(vm.id)!;
      this.requireState(cur, ['starting', 'running', 'paused', 'stopping'], 'force-stop');
      await this.kill(this.runtime(cur));
      return this.records.get(cur.id)!;
    });
  }

  /** Ends QEMU: `quit` over QMP (lets QEMU flush its disks), then SIGKILL if it lingers. */
  private async kill(rt: Runtime): Promise<void> {
    rt.expectExit = true;
    await rt.qmp.execute('quit', undefined, { timeoutMs: 2000 }).catch(() => undefined);
    if (await Promise.race([rt.gone.then(() => true), sleep(FORCE_WAIT_MS).then(() => false)])) return;
    try { process.kill(rt.pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
    // Bounded even so: a process the kernel keeps (stuck in an uninterruptible wait) must not hold the VM's lock, and
    // every later action on the VM, for ever. The stop fails then, saying so; the VM's state is left as it is (its
    // exit still ends the runtime whenever it comes).
    if (!(await Promise.race([rt.gone.then(() => true), sleep(KILL_WAIT_MS).then(() => false)]))) {
      throw new Error(`QEMU (pid ${rt.pid}) has not ended ${KILL_WAIT_MS / 1000} s after SIGKILL`);
    }
  }

  // ---- guest access ----

  /**
   * Waits until every network card of the VM's new QEMU has its peer (the server's switch dials each card's socket),
   * at most `timeoutMs`; says whether they all have. Before that QEMU must not send a frame: QEMU 7.2's stream netdev
   * (net/stream.c) says its link is down only once its listener is set up, which it does from an idle callback of
   * its main loop (after a listen in a thread); a frame sent earlier (the announcement after an incoming migration,
   * a restored guest's own) is written to a channel that does not exist yet, and QEMU dies (a NULL read in
   * object_get_class). Once a card has had its peer, QEMU drops its frames while it has none.
   */
  async waitCardsLinked(ref: string, timeoutMs: number): Promise<boolean> {
    const vm = this.get(ref);
    const cards = (vm.spec.nics ?? []).map((_, i) => netdevId(i));
    const rt = this.runtime(vm);
    const end = Date.now() + timeoutMs;
    for (;;) {
      const peered = await peeredNetdevs(rt.qmp);
      if (cards.every((c) => peered.has(c))) return true;
      if (Date.now() > end) return false;
      await sleep(2);
    }
  }

  /** Waits for the image's ready marker on the guest console (this boot's serial.log). */
  async waitReady(ref: string, timeoutMs: number): Promise<void> {
    const vm = this.get(ref);
    const marker = vm.spec.readyMarker;
    if (!marker) return;
    if (this.runtimes.get(vm.id)?.readyKnown) return;
    const p = this.paths(vm);
    const ok = await waitUntil(() => {
      const cur = this.records.get(vm.id);
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

  /** QMP of a running VM, for the console proxy and screendumps. */
  qmp(ref: string): QmpClient {
    const vm = this.get(ref);
    return this.runtime(vm).qmp;
  }

  /** Whether the guest has shown its ready marker (this boot), or is known ready (`markReady`), without waiting. */
  isReady(ref: string): boolean {
    const vm = this.get(ref);
    if (!vm.spec.readyMarker || this.runtimes.get(vm.id)?.readyKnown) return true;
    const p = this.paths(vm);
    return serialLogShows(p.serialLog, vm.spec.readyMarker);
  }

  /** What the running QEMU's guest RAM is backed by (ram-backing.ts); undefined when no QEMU runs. */
  ramOf(id: string): RamBacking | undefined {
    return this.runtimes.get(id)?.ram;
  }

  /** A restoring QEMU has all its guest RAM now (checkpoint/restore.ts): the huge-page pool may change again. */
  settleRam(id: string): void {
    this.runtimes.get(id)?.hugeLease?.settle();
  }

  /** The guest is known ready although this QEMU's serial.log will not show the marker (it runs from saved state
   * taken after the marker appeared), so `exec` need not wait for it. Until QEMU ends. */
  markReady(ref: string): void {
    this.runtime(this.get(ref)).readyKnown = true;
  }

  /**
   * Runs `fn` with the VM's QMP client under the VM's lifecycle lock (no start, stop or pause runs meanwhile), for
   * work on a running or paused VM that other parts do through QMP. With `ownRunState`, see WithQmpOptions.
   */
  withQmp<T>(ref: string, fn: (qmp: QmpClient, vm: VmRecord) => Promise<T>, opts: WithQmpOptions = {}): Promise<T> {
    const vm = this.get(ref);
    return this.withLock(vm.id, async () => {
      const cur = this.records.get(vm.id)!;
      this.requireState(cur, ['running', 'paused'], opts.action ?? 'control');
      const rt = this.runtime(cur);
      if (!opts.ownRunState) return fn(rt.qmp, cur);
      rt.runStateOwners++;
      try {
        return await fn(rt.qmp, cur);
      } finally {
        rt.runStateOwners--;
        const want = rt.runStateOwners === 0 ? await runStateNow(rt.qmp) : undefined;
        const now = this.records.get(vm.id);
        if (want && now && (now.state === 'running' || now.state === 'paused')) {
          if (want !== now.state || now.stateReason) this.setState(vm.id, want, null);
        }
      }
    });
  }

  // ---- server start / stop ----

  /** Re-attaches VMs whose QEMU survived a server restart (the hooks' `beforeReattach`, then `recoverAtBoot`, run
   * for each); marks the others stopped or crashed. */
  async init(): Promise<void> {
    for (const vm of this.records.list()) {
      if (vm.state === 'stopped' || vm.state === 'crashed') continue;
      await this.hooks.beforeReattach(vm);
      const p = this.paths(vm);
      const found = await reattachQemu(vm, p, this.hooks, (...a) => this.log(...a));
      if ('qmp' in found) {
        this.attach(vm, found.qmp, found.pid, await ramOfQemu(found.qmp));
        const paused = found.status === 'paused' || found.status === 'prelaunch';
        this.setState(vm.id, paused ? 'paused' : 'running', null, found.pid);
        this.log('info', 're-attached running vm', { vm: vm.name, pid: found.pid });
        continue;
      }
      rmSync(p.pidfile, { force: true });
      if (vm.state === 'stopping') this.setState(vm.id, 'stopped', null, null);
      else this.setState(vm.id, 'crashed', `${found.why}\n${tail(p.qemuLog, 10)}`, null);
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
