// The OpenCL helper's seccomp filter: a classic BPF program (struct sock_filter[]) that bubblewrap installs with
// `--seccomp FD` just before it runs the helper (sandbox.ts). It denies, with EPERM, system calls a compute helper
// never needs and a hostile kernel (native code in the helper, under PoCL) would want: tracing and reading other
// processes, namespaces, mounts, BPF, keyrings, modules, kexec, perf events, userfaultfd, personality, reboot, swap,
// clocks, host names, I/O ports and io_uring. clone() with a namespace flag is denied as unshare() is; clone3() gets
// ENOSYS (its flags are in memory the filter cannot read; libc then falls back to clone()), as does any call numbered
// above the last this table knows. socket() is limited to the unix, IP and netlink families; modify_ldt is denied.
// A call made under another architecture than the helper's (i386 on x86_64, and the x32 numbers) is denied whole.
/** struct sock_filter: u16 code, u8 jt, u8 jf, u32 k. */
const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_JGE_K = 0x35;
const BPF_JSET_K = 0x45;
const BPF_RET_K = 0x06;

export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const EPERM = 1;
export const ENOSYS = 38;
/** Offsets in struct seccomp_data: nr (int), arch (u32), instruction pointer (u64), args (u64[6]). */
const NR = 0;
const ARCH = 4;
const ARG0_LOW = 16;

/** CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (CLONE_NEWTIME only exists for clone3/unshare). */
export const CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

interface ArchTable {
  /** AUDIT_ARCH_* of the helper's own system calls. */
  audit: number;
  /** Numbers at or above this are another ABI sharing the arch value (x32 on x86_64). */
  nrLimit?: number;
  clone: number;
  clone3: number;
  socket: number;
  socketpair: number;
  denied: Record<string, number>;
}

/** The highest system call number this table knows (open_tree_attr, Linux 6.15; new calls share numbers across
 * architectures): any above gets ENOSYS, so a call added to a later kernel is not let through unexamined. */
export const LAST_KNOWN_NR = 466;
/** socket() and socketpair() families let through: AF_UNIX, AF_INET, AF_INET6, AF_NETLINK; others (AF_VSOCK, AF_ALG,
 * AF_PACKET, ...) get EAFNOSUPPORT. */
export const SOCKET_FAMILIES = [1, 2, 10, 16];
export const EAFNOSUPPORT = 97;

const GENERIC = {
  open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, mount_setattr: 442,
  quotactl_fd: 443, pidfd_getfd: 438, io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427,
};

/** System call numbers from the kernel's uapi headers (asm/unistd_64.h, asm-generic/unistd.h). */
const ARCHES: Record<string, ArchTable> = {
  x64: {
    audit: 0xc000003e, // AUDIT_ARCH_X86_64
    nrLimit: 0x40000000, // __X32_SYSCALL_BIT
    clone: 56,
    clone3: 435,
    socket: 41,
    socketpair: 53,
    denied: {
      ...GENERIC, modify_ldt: 154, ptrace: 101, process_vm_readv: 310, process_vm_writev: 311, mount: 165, umount2: 166,
      pivot_root: 155, chroot: 161, bpf: 321, keyctl: 250, add_key: 248, request_key: 249, kexec_load: 246,
      kexec_file_load: 320, init_module: 175, finit_module: 313, delete_module: 176, perf_event_open: 298,
      userfaultfd: 323, unshare: 272, setns: 308, personality: 135, reboot: 169, swapon: 167, swapoff: 168, acct: 163,
      quotactl: 179, syslog: 103, settimeofday: 164, clock_settime: 227, clock_adjtime: 305, adjtimex: 159,
      sethostname: 170, setdomainname: 171, iopl: 172, ioperm: 173, lookup_dcookie: 212, vhangup: 153,
      name_to_handle_at: 303, open_by_handle_at: 304, kcmp: 312, fanotify_init: 300, uselib: 134, _sysctl: 156,
      nfsservctl: 180,
    },
  },
  arm64: {
    audit: 0xc00000b7, // AUDIT_ARCH_AARCH64
    clone: 220,
    clone3: 435,
    socket: 198,
    socketpair: 199,
    denied: {
      ...GENERIC, ptrace: 117, process_vm_readv: 270, process_vm_writev: 271, mount: 40, umount2: 39, pivot_root: 41,
      chroot: 51, bpf: 280, keyctl: 219, add_key: 217, request_key: 218, kexec_load: 104, kexec_file_load: 294,
      init_module: 105, finit_module: 273, delete_module: 106, perf_event_open: 241, userfaultfd: 282, unshare: 97,
      setns: 268, personality: 92, reboot: 142, swapon: 224, swapoff: 225, acct: 89, quotactl: 60, syslog: 116,
      settimeofday: 170, clock_settime: 112, clock_adjtime: 266, adjtimex: 171, sethostname: 161, setdomainname: 162,
      lookup_dcookie: 18, vhangup: 58, name_to_handle_at: 264, open_by_handle_at: 265, kcmp: 272, fanotify_init: 262,
      nfsservctl: 42,
    },
  },
};

/** The denied calls' names and numbers on `arch` (Node's process.arch), or undefined where there is no filter. */
export const deniedSyscalls = (arch: string = process.arch): Record<string, number> | undefined => ARCHES[arch]?.denied;

/** A tiny assembler: instructions with symbolic jump targets, resolved to the u8 forward offsets BPF takes. */
class Program {
  private readonly ins: { code: number; k: number; jt?: string; jf?: string }[] = [];
  private readonly labels = new Map<string, number>();

  load(offset: number): this {
    this.ins.push({ code: BPF_LD_W_ABS, k: offset });
    return this;
  }
  /** if (A <op> k) goto jt else goto jf; a missing target is the next instruction. */
  jump(code: number, k: number, jt?: string, jf?: string): this {
    this.ins.push({ code, k, jt, jf });
    return this;
  }
  ret(k: number): this {
    this.ins.push({ code: BPF_RET_K, k });
    return this;
  }
  label(name: string): this {
    this.labels.set(name, this.ins.length);
    return this;
  }

  bytes(): Buffer {
    const out = Buffer.alloc(this.ins.length * 8);
    this.ins.forEach((x, i) => {
      const to = (l?: string) => {
        if (l === undefined) return 0;
        const at = this.labels.get(l);
        if (at === undefined || at <= i || at - i - 1 > 255) throw new Error(`seccomp: bad jump to ${l}`);
        return at - i - 1;
      };
      out.writeUInt16LE(x.code, i * 8);
      out.writeUInt8(to(x.jt), i * 8 + 2);
      out.writeUInt8(to(x.jf), i * 8 + 3);
      out.writeUInt32LE(x.k >>> 0, i * 8 + 4);
    });
    return out;
  }
}

/** The filter for `arch` (Node's process.arch) as bytes for `bwrap --seccomp`, or undefined for an architecture
 * without a table (the helper then runs without one, and its log says so). */
export function seccompFilter(arch: string = process.arch): Buffer | undefined {
  const t = ARCHES[arch];
  if (!t) return undefined;
  const p = new Program().load(ARCH).jump(BPF_JEQ_K, t.audit, undefined, 'deny').load(NR);
  if (t.nrLimit !== undefined) p.jump(BPF_JGE_K, t.nrLimit, 'deny');
  p.jump(BPF_JGE_K, LAST_KNOWN_NR + 1, 'enosys');
  for (const nr of Object.values(t.denied)) p.jump(BPF_JEQ_K, nr, 'deny');
  p.jump(BPF_JEQ_K, t.clone3, 'enosys').jump(BPF_JEQ_K, t.clone, 'clone');
  p.jump(BPF_JEQ_K, t.socket, 'socket').jump(BPF_JEQ_K, t.socketpair, 'socket').ret(SECCOMP_RET_ALLOW);
  // clone(flags, ...): the low 32 bits of its first argument (little-endian) hold the flags.
  p.label('clone').load(ARG0_LOW).jump(BPF_JSET_K, CLONE_NS_FLAGS, 'deny').ret(SECCOMP_RET_ALLOW);
  // socket(family, ...), socketpair(family, ...): an int; only the families the helper needs.
  p.label('socket').load(ARG0_LOW);
  for (const f of SOCKET_FAMILIES) p.jump(BPF_JEQ_K, f, 'allow');
  p.ret(SECCOMP_RET_ERRNO | EAFNOSUPPORT);
  p.label('allow').ret(SECCOMP_RET_ALLOW);
  p.label('enosys').ret(SECCOMP_RET_ERRNO | ENOSYS);
  p.label('deny').ret(SECCOMP_RET_ERRNO | EPERM);
  return p.bytes();
}
