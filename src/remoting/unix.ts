// The few unix socket calls Node does not offer, through libc (koffi): a socketpair whose ends the server hands to an
// OpenCL helper as plain descriptors, and passing one descriptor across it (SCM_RIGHTS) in one direction only, server
// to helper. The server never receives descriptors: it reads its sockets with read(), which makes the kernel drop
// (and close) any the helper attaches; its end of the descriptor channel is also shut for reading.
import koffi from 'koffi';
import { libc as loadLibc } from './libc.ts';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;
const SHUT_RD = 0;
/** CMSG_SPACE(sizeof(int)) on 64-bit Linux: a 16-byte cmsghdr and the int, padded to 8. */
const CMSG_SPACE_FD = 24;

interface Msg {
  name: null;
  namelen: number;
  iov: { base: Buffer; len: number };
  iovlen: number;
  control: Buffer;
  controllen: number;
  flags: number;
}

interface Libc {
  socketpair: (domain: number, type: number, proto: number, fds: Int32Array) => number;
  sendmsg: (fd: number, msg: Msg, flags: number) => number | bigint;
  recvmsg: (fd: number, msg: Msg, flags: number) => number | bigint;
  shutdown: (fd: number, how: number) => number;
  close: (fd: number) => number;
  dup: (fd: number) => number;
  fcntl: (fd: number, cmd: number, arg: number) => number;
}

let libc: Libc | undefined;
function lib(): Libc {
  if (libc) return libc;
  const l = loadLibc();
  koffi.struct('oriel_iovec', { base: 'void *', len: 'size_t' });
  koffi.struct('oriel_msghdr', {
    name: 'void *', namelen: 'uint32_t', iov: 'oriel_iovec *', iovlen: 'size_t', control: 'void *',
    controllen: 'size_t', flags: 'int',
  });
  libc = {
    socketpair: l.func('int socketpair(int, int, int, _Out_ int32_t *fds)') as unknown as Libc['socketpair'],
    sendmsg: l.func('long sendmsg(int, const oriel_msghdr *, int)') as unknown as Libc['sendmsg'],
    recvmsg: l.func('long recvmsg(int, _Inout_ oriel_msghdr *, int)') as unknown as Libc['recvmsg'],
    shutdown: l.func('int shutdown(int, int)') as unknown as Libc['shutdown'],
    close: l.func('int close(int)') as unknown as Libc['close'],
    dup: l.func('int dup(int)') as unknown as Libc['dup'],
    fcntl: l.func('int fcntl(int, int, int)') as unknown as Libc['fcntl'],
  };
  return libc;
}

const errno = () => koffi.errno();

/** A connected pair of unix stream sockets, close-on-exec (the spawner dups the child's end into its fd table). */
export function socketPair(): [number, number] {
  const fds = new Int32Array(2);
  if (lib().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) !== 0) {
    throw new Error(`socketpair failed (errno ${errno()})`);
  }
  return [fds[0]!, fds[1]!];
}

/** Shuts `fd`'s reading side: the peer's writes then fail (EPIPE) instead of queueing in the kernel. */
export function shutRead(fd: number): void {
  lib().shutdown(fd, SHUT_RD);
}

export function closeFd(fd: number): void {
  lib().close(fd);
}

const F_SETFD = 2;
const FD_CLOEXEC = 1;

export function setCloseOnExec(fd: number): void {
  lib().fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/** dup(2): a copy of `fd` without close-on-exec (the tests use it to stand for a descriptor leaked by the server's own
 * parent). */
export function dupFd(fd: number): number {
  return lib().dup(fd);
}

/** Sends `bytes` (one byte by default) with `fd` attached on unix socket `sock`, without blocking; false when they
 * could not be queued whole (the peer is not reading). */
export function sendFd(sock: number, fd: number, bytes: Buffer = Buffer.from([0x4c])): boolean {
  const control = Buffer.alloc(CMSG_SPACE_FD);
  control.writeBigUInt64LE(20n, 0); // cmsg_len = CMSG_LEN(sizeof(int))
  control.writeInt32LE(SOL_SOCKET, 8);
  control.writeInt32LE(SCM_RIGHTS, 12);
  control.writeInt32LE(fd, 16);
  const msg: Msg = {
    name: null, namelen: 0, iov: { base: bytes, len: bytes.length }, iovlen: 1, control,
    controllen: CMSG_SPACE_FD, flags: 0,
  };
  return Number(lib().sendmsg(sock, msg, MSG_DONTWAIT | MSG_NOSIGNAL)) === bytes.length;
}

/** Receives one byte and the descriptor that came with it (close-on-exec), without blocking; undefined when there is
 * none (nothing waiting, or a byte without one). */
export function recvFd(sock: number): number | undefined {
  const control = Buffer.alloc(CMSG_SPACE_FD);
  const msg: Msg = {
    name: null, namelen: 0, iov: { base: Buffer.alloc(1), len: 1 }, iovlen: 1, control,
    controllen: CMSG_SPACE_FD, flags: 0,
  };
  const n = Number(lib().recvmsg(sock, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (n !== 1 || msg.controllen < 20) return undefined;
  if (control.readInt32LE(8) !== SOL_SOCKET || control.readInt32LE(12) !== SCM_RIGHTS) return undefined;
  return control.readInt32LE(16);
}
