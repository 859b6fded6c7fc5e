// Network benchmark between two real guests (the tiny image under QEMU, TCG), in one run, three ways to link their
// virtio-net cards:
//   switch  Oriel's switch (src/network/switch.ts, in this process as in the server): each card `-netdev stream,
//           server=on` on a unix socket the switch dials, every frame checked (MAC, IPv4 source) and forwarded.
//   socket  QEMU's own `-netdev socket` (one QEMU listens on loopback TCP, the other connects): no switch at all.
//   bridge  a Linux bridge with a tap device per card (`-netdev tap`), when the kernel lets us make them (root).
// For each: TCP throughput (busybox wget of a file in the guest's RAM from busybox httpd on the other, timed in the
// guest) and ping round trips. Guests get static addresses (no DHCP: the socket and bridge links have no server).
// Boots guests: run it alone, under the guest lock, e.g.
//   flock /tmp/oriel-guest.lock node --import tsx bench/network-guests.ts [MiB=64]
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../src/config.ts';
import { buildTinyImage } from '../src/vm/images/tiny.ts';
import { GuestShell } from '../src/vm/guest-shell.ts';
import { Switch } from '../src/network/switch.ts';
import { gatewayMac, parseSubnet } from '../src/network/addresses.ts';
import { ipNumber } from '../src/network/frames.ts';

const MIB = Number(process.argv[2] ?? 64);
const config = defaultConfig();
const image = await buildTinyImage({ cacheDir: config.cacheDir });
const dir = mkdtempSync(join(tmpdir(), 'oriel-netbench-'));
const tag = String(process.pid % 10000);
const A = { name: 'a', mac: '02:0e:00:00:be:0a', ip: '10.99.0.10' };
const B = { name: 'b', mac: '02:0e:00:00:be:0b', ip: '10.99.0.11' };

interface Guest { proc: ChildProcess; shell: GuestShell; sh(script: string, timeoutMs?: number): Promise<string> }

async function boot(g: typeof A, netdev: string): Promise<Guest> {
  const log = join(dir, `${g.name}.log`);
  const shellSock = join(dir, `${g.name}.shell`);
  rmSync(log, { force: true });
  const proc = spawn(config.qemuBinary, [
    '-machine', 'q35', '-accel', 'tcg,thread=multi', '-cpu', 'max', '-m', '256', '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-vga', 'std',
    '-chardev', `file,id=serial0,path=${log}`, '-serial', 'chardev:serial0',
    '-chardev', `socket,id=shell0,path=${shellSock},server=on,wait=off`, '-serial', 'chardev:shell0',
    '-netdev', netdev, '-device', `virtio-net-pci,netdev=net0,mac=${g.mac},romfile=`,
    '-kernel', image.kernel!, '-initrd', image.initrd!, '-append', image.append!,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const end = Date.now() + 60_000;
  while (!(existsSync(log) && readFileSync(log, 'utf8').includes(image.readyMarker!))) {
    if (proc.exitCode !== null || Date.now() > end) throw new Error(`guest ${g.name} did not boot: ${err}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const shell = new GuestShell(shellSock);
  await shell.connect();
  const sh = async (script: string, timeoutMs = 120_000) => {
    const r = await shell.exec(['sh', '-c', script], { timeoutMs });
    if (r.exitCode !== 0) throw new Error(`${g.name}: '${script}' exited ${r.exitCode}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  // A static address: no DHCP here (udhcpc, started at boot, would flush it).
  await sh(`killall udhcpc 2>/dev/null; ip addr flush dev eth0; ip addr add ${g.ip}/24 dev eth0; ip link set eth0 up`);
  return { proc, shell, sh };
}

async function stop(gs: Guest[]): Promise<void> {
  for (const g of gs) {
    g.shell.close();
    g.proc.kill('SIGKILL');
    if (g.proc.exitCode === null) await new Promise((r) => g.proc.once('exit', r));
  }
}

/** Throughput b→a over TCP and ping a→b, guests already linked. */
async function measure(way: string, a: Guest, b: Guest): Promise<void> {
  await b.sh(`mkdir -p /tmp/www && dd if=/dev/urandom of=/tmp/www/f bs=1M count=${MIB} 2>/dev/null && httpd -p 8080 -h /tmp/www`);
  await a.sh(`for i in $(seq 50); do ping -c 1 -W 1 ${B.ip} >/dev/null && exit 0; done; exit 1`, 120_000);
  // Three transfers, the best kept (the machine is shared); /proc/uptime counts in 10 ms steps.
  const out = await a.sh(`for i in 1 2 3; do t0=$(cut -d' ' -f1 /proc/uptime); wget -q -O /dev/null `
    + `http://${B.ip}:8080/f; t1=$(cut -d' ' -f1 /proc/uptime); echo "$t0 $t1"; done; ping -c 20 -i 0.2 ${B.ip}`, 600_000);
  const s = Math.min(...out.split('\n').slice(0, 3).map((l) => l.split(' ').map(Number)).map(([t0, t1]) => t1! - t0!));
  const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(out)!;
  console.log(`${way.padEnd(7)} ${((MIB * 8 * 2 ** 20) / s / 1e6).toFixed(0).padStart(5)} Mbit/s (${MIB} MiB in `
    + `${s.toFixed(2)} s, best of 3)   ping min/avg/max ${rtt[1]}/${rtt[2]}/${rtt[3]} ms`);
}

async function viaSwitch(): Promise<void> {
  const sw = new Switch();
  sw.setNetwork({ id: 'n', name: 'bench', subnet: parseSubnet('10.99.0.0/24'), gatewayMac: gatewayMac('n'),
    nat: false, isolated: false }, new Map());
  const gs: Guest[] = [];
  try {
    for (const g of [A, B]) {
      const sock = join(dir, `${g.name}.net`);
      const booting = boot(g, `stream,id=net0,server=on,addr.type=unix,addr.path=${sock}`);
      // QEMU listens as it starts; the switch dials again until it can.
      sw.addPort('n', { id: g.name, vmName: g.name, mac: g.mac, ip: ipNumber(g.ip), socketPath: sock });
      gs.push(await booting);
    }
    await measure('switch', gs[0]!, gs[1]!);
  } finally {
    await stop(gs);
    sw.close();
  }
}

async function viaSocket(): Promise<void> {
  const port = 20000 + (process.pid % 20000);
  const gs: Guest[] = [];
  try {
    gs.push(await boot(A, `socket,id=net0,listen=127.0.0.1:${port}`));
    gs.push(await boot(B, `socket,id=net0,connect=127.0.0.1:${port}`));
    await measure('socket', gs[0]!, gs[1]!);
  } finally {
    await stop(gs);
  }
}

async function viaBridge(): Promise<void> {
  const br = `obr${tag}`;
  const taps = [`otap${tag}a`, `otap${tag}b`];
  const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    ip('link', 'add', br, 'type', 'bridge');
  } catch (e) {
    console.log(`bridge  not measured: cannot make a Linux bridge here (${String((e as { stderr?: Buffer }).stderr ?? e).trim()})`);
    return;
  }
  const gs: Guest[] = [];
  try {
    for (const t of taps) {
      ip('tuntap', 'add', 'dev', t, 'mode', 'tap');
      ip('link', 'set', t, 'master', br, 'up');
    }
    ip('link', 'set', br, 'up');
    gs.push(await boot(A, `tap,id=net0,ifname=${taps[0]},script=no,downscript=no`));
    gs.push(await boot(B, `tap,id=net0,ifname=${taps[1]},script=no,downscript=no`));
    await measure('bridge', gs[0]!, gs[1]!);
  } finally {
    await stop(gs);
    for (const t of taps) { try { ip('link', 'del', t); } catch { /* not made */ } }
    ip('link', 'del', br);
  }
}

console.log(`two tiny guests (TCG, 1 vCPU, 256 MiB each) on this ${availableCores()}-core machine; b serves, a fetches`);
try {
  await viaSwitch();
  await viaSocket();
  await viaBridge();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);

function availableCores(): number {
  return readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length;
}
