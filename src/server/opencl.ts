// OpenCL remoting (src/remoting) follows the VMs: a VM created with `opencl` gets its helper process when its QEMU
// runs (the helper connects to the port's socket QEMU serves) and loses it when the VM stops, crashes or goes.
// holdRamWriters is the hook the checkpoint service calls around a capture (app.ts wires it).
import { conflict } from '../errors.ts';
import { RemotingHelpers, type HelpersOptions } from '../remoting/index.ts';
import { followVms } from '../vm/follow.ts';
import type { VmManager } from '../vm/manager.ts';
import { vmPaths } from '../vm/paths.ts';
import type { VmRecord } from '../vm/records.ts';

export class OpenClRemoting {
  readonly helpers: RemotingHelpers;

  private readonly onVm = (vm: VmRecord) => {
    if (!vm.spec.opencl) return;
    if (vm.state === 'running' || vm.state === 'paused') {
      const p = vmPaths(this.dataDir, vm.id);
      this.helpers.start(vm.id, { socket: p.opencl, dir: p.dir, window: p.openclWindow });
    } else if (vm.state !== 'starting') {
      this.helpers.stop(vm.id);
    }
  };

  private readonly onVmDeleted = (vm: VmRecord) => this.helpers.stop(vm.id);
  private unfollow: (() => void) | undefined;

  private readonly log: (msg: string) => void;

  constructor(private readonly vms: VmManager, private readonly dataDir: string, opts: HelpersOptions = {}) {
    this.helpers = new RemotingHelpers(opts);
    this.log = opts.log ?? (() => undefined);
  }

  /** Before a VM starts: one with OpenCL is refused when its helper would be (root without bubblewrap). */
  admitStart(vm: VmRecord): void {
    const refused = vm.spec.opencl ? this.helpers.refusal() : undefined;
    if (refused) throw conflict(`VM ${vm.name}: ${refused}`);
  }

  /** Stops the VM's helper from writing the VM's RAM (its window) until the returned release: its commands wait. The
   * release returns why the window's bytes may be inexact (a kernel that ran on), if they may. */
  async holdRamWriters(vmId: string, progress?: (msg: string) => void): Promise<() => string | undefined> {
    const release = await this.helpers.hold(vmId, { progress });
    return () => {
      const note = release();
      if (note) this.log(`checkpoint of VM ${vmId}: ${note}`);
      return note;
    };
  }

  start(): void {
    const refused = this.helpers.refusal();
    if (refused) this.log(refused);
    this.unfollow = followVms(this.vms, { changed: this.onVm, deleted: this.onVmDeleted });
  }

  close(): void {
    this.unfollow?.();
    this.helpers.stopAll();
  }
}
