// oriel network create|list|show|delete|capture
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { Network } from '../../api/networks.ts';
import { type Api, CliError } from '../api.ts';
import { printJson, table } from '../output.ts';

const flags = (n: Network) => [n.nat && 'nat', n.isolated && 'isolated', n.shared && 'shared'].filter(Boolean).join(',');
const posInt = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new CliError(`${name} must be a positive whole number, not '${v}'`);
  return Number(v);
};

export function networkCommands(program: Command, api: () => Api): void {
  const net = program.command('network').alias('net').description('virtual networks: Oriel\'s switch, DHCP and DNS');

  net.command('create <name>')
    .description('create a network (VMs join it with `vm create --network NAME`)')
    .option('--subnet <cidr>', 'IPv4 subnet, /16 to /29 (default: a free 10.x.y.0/24)')
    .option('--nat', 'a way out through the host')
    .option('--isolated', 'the VMs reach the gateway only, not each other')
    .option('--shared', 'admins: everybody may attach VMs to it')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const n = await api().networks.create({
        name, ...(o.subnet ? { subnet: o.subnet } : {}), ...(o.nat ? { nat: true } : {}),
        ...(o.isolated ? { isolated: true } : {}), ...(o.shared ? { shared: true } : {}),
      });
      if (o.json) printJson(n);
      else console.log(`created network '${n.name}' (${n.subnet}, gateway ${n.gateway}${flags(n) ? `, ${flags(n)}` : ''})`);
    });

  net.command('list').alias('ls').description('list networks').option('--json', 'print JSON').action(async (o) => {
    const nets = await api().networks.list();
    if (o.json) return printJson(nets);
    if (nets.length === 0) return console.log('no networks yet: create one with `oriel network create NAME`');
    console.log(table(nets.map((n) => ({ ...n, options: flags(n) || '-', vms: n.ports.length })),
      ['name', 'subnet', 'gateway', 'options', 'vms', 'owner']));
  });

  net.command('show <name>').description('one network: its VMs, leases and per-port counters')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const n = await api().networks.get(name);
      if (o.json) return printJson(n);
      console.log(`${n.name}: ${n.subnet}, gateway ${n.gateway}${flags(n) ? `, ${flags(n)}` : ''}, owner ${n.owner}`);
      if (n.ports.length === 0) return console.log('no VMs on it');
      console.log(table(n.ports.map((p) => ({
        ...p, link: p.connected ? 'up' : 'down', rx: p.counters ? `${p.counters.rxFrames}` : '-',
        tx: p.counters ? `${p.counters.txFrames}` : '-',
        dropped: p.counters
          ? `${p.counters.droppedSpoofed + p.counters.droppedMalformed + p.counters.droppedUnsupported}` : '-',
      })), ['vm', 'ip', 'mac', 'link', 'rx', 'tx', 'dropped']));
    });

  net.command('delete <name>').alias('rm').description('delete a network no VM uses').action(async (name: string) => {
    await api().networks.delete(name);
    console.log(`deleted network '${name}'`);
  });

  net.command('capture <name> <file>')
    .description('write the network\'s frames to a pcap file (Wireshark, tcpdump) until Ctrl+C, --seconds or --count')
    .option('--seconds <n>', 'stop after this long (default 60, at most 3600)', posInt('--seconds'), 60)
    .option('--count <n>', 'stop after this many frames', posInt('--count'))
    .action(async (name: string, file: string, o) => {
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      try {
        const a = api();
        const res = await a.download(a.networks.captureUrl(name, { seconds: o.seconds, frames: o.count }), ac.signal);
        await pipeline(res, createWriteStream(file, { mode: 0o600 }), { signal: ac.signal }).catch((e) => {
          if ((e as Error).name !== 'AbortError') throw e;
        });
      } finally {
        process.off('SIGINT', stop);
      }
      console.log(`capture of '${name}' written to ${file}`);
    });

  const vm = program.commands.find((c) => c.name() === 'vm');
  vm?.command('forward <vm> [mapping]')
    .description('reach a guest port from the host: HOSTPORT:GUESTPORT on 127.0.0.1 (the VM needs a --nat network); '
      + 'without a mapping, list them')
    .option('--udp', 'a UDP port (default TCP)')
    .option('--remove', 'stop forwarding HOSTPORT')
    .option('--json', 'print JSON')
    .action(async (name: string, mapping: string | undefined, o) => {
      const proto = o.udp ? 'udp' : 'tcp';
      if (!mapping) {
        const list = await api().vms.forwards(name);
        if (o.json) return printJson(list);
        if (list.length === 0) return console.log(`no forwards to '${name}'`);
        return console.log(table(list, ['proto', 'host', 'guestPort']));
      }
      const m = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(mapping);
      if (!m) throw new CliError(`the mapping is HOSTPORT:GUESTPORT (or HOSTPORT with --remove), not '${mapping}'`);
      if (o.remove) {
        await api().vms.removeForward(name, proto, Number(m[1]));
        return console.log(`no longer forwarding ${proto} port ${m[1]}`);
      }
      if (!m[2]) throw new CliError('give HOSTPORT:GUESTPORT');
      const f = await api().vms.addForward(name, { hostPort: Number(m[1]), guestPort: Number(m[2]), proto });
      if (o.json) printJson(f);
      else console.log(`${f.proto} ${f.host} -> ${name}:${f.guestPort}`);
    });
}
