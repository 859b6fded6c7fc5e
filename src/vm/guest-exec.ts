// Running a command in a guest, through the channel its image provides: the command shell on the second serial port
// (guest-shell.ts) or qemu-guest-agent's guest-exec (guest-agent.ts). Failures are told as the API tells them: a
// command that runs too long is a 504, a channel that cannot be reached a 503.
import { OrielError, unavailable, unprocessable } from '../errors.ts';
import { GuestAgentError, type GuestAgent } from './guest-agent.ts';
import { GuestShell, OutputTooLargeError } from './guest-shell.ts';
import type { VmRecord } from './records.ts';

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Where a running VM keeps its shell connection (the manager's runtime of the VM). */
export interface ShellHolder {
  shell?: GuestShell;
}

/**
 * Runs `argv` through the guest's command shell at `socketPath`, connecting once per VM run. `live` is the running
 * VM's holder (it throws when the VM no longer runs), `current` the holder if any; `left` the milliseconds left.
 */
export async function execByShell(
  vm: VmRecord,
  socketPath: string,
  live: () => ShellHolder,
  current: () => ShellHolder | undefined,
  argv: string[],
  left: () => number,
): Promise<ExecResult> {
  const run = async (connectMs: number) => {
    const rt = live();
    if (!rt.shell) {
      const shell = new GuestShell(socketPath);
      await shell.connect(connectMs);
      rt.shell = shell;
    }
    return rt.shell.exec(argv, { timeoutMs: left() });
  };
  try {
    return await run(5000);
  } catch (e) {
    if (e instanceof OrielError) throw e;
    const msg = (e as Error).message;
    if (/did not finish within/.test(msg)) throw new OrielError(504, msg, 'timeout');
    if (e instanceof OutputTooLargeError) throw new OrielError(502, msg, 'output_too_large'); // the guest's answer
    // The connection to the guest's shell broke or never answered (a busy guest after a restart, QEMU reopening
    // its chardev after the previous server left): start over once with a fresh connection and more patience.
    const rt = current();
    rt?.shell?.close();
    if (rt) rt.shell = undefined;
    try {
      return await run(Math.min(30_000, left()));
    } catch (e2) {
      if (e2 instanceof OrielError) throw e2;
      throw unavailable(`cannot run the command in VM '${vm.name}': ${(e2 as Error).message}`);
    }
  }
}

/** Runs `argv` through qemu-guest-agent (guest-exec) with the image's environment; `left`: milliseconds left. */
export async function execByAgent(
  vm: VmRecord,
  agent: () => GuestAgent,
  argv: string[],
  left: () => number,
): Promise<ExecResult> {
  try {
    const r = await agent().exec(argv, { env: vm.spec.execEnv, timeoutMs: left() });
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
  } catch (e) {
    if (!(e instanceof GuestAgentError)) throw e;
    // As a shell would say it (and as images with a command shell do): a program that cannot be run is status 127.
    if (e.code === 'agent-error' && /Failed to execute child process/.test(e.message)) {
      return {
        stdout: '',
        stderr: `${argv[0]}: ${e.message.replace(/^.*?refused 'guest-exec': /, '')}\n`,
        exitCode: 127,
      };
    }
    if (e.code === 'agent-error') throw unprocessable(`cannot run the command in VM '${vm.name}': ${e.message}`);
    if (e.code === 'timeout' || e.code === 'exec-timeout') throw new OrielError(504, e.message, 'timeout');
    throw unavailable(`cannot run the command in VM '${vm.name}': ${e.message}`);
  }
}
