// Networks end to end: the API's rules (ownership, sharing, leases), then three tiny guests: two on one network get
// their fixed DHCP leases and ping each other by name through the switch, a third on another network cannot reach
// them, a guest that changes its MAC is cut off, and a capture of the traffic reads back as pcap; a checkpoint of a
// networked guest restored in place and as a copy beside it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { parsePcap } from '../../src/network/pcap.ts';
import { parseIpv4, IP_PROTO_ICMP } from '../../src/network/frames.ts';
import { ensureTinyImage } from '../helpers/images.ts';
import { addUser, startTestServer, type Client, type TestServer } from '../helpers/server.ts';

describe('networks: the switch between real guests', () => {
  let t: TestServer;
  let alice: Client;
  before(async () => {
    await ensureTinyImage();
    t = await startTestServer();
    alice = await addUser(t, 'alice');
  });
  after(() => t?.destroy());

  const exec = async (vm: string, script: string, timeoutSec = 30) => {
    const r = await t.admin.post(`/api/vms/${vm}/exec`, { argv: ['sh', '-c', script], timeoutSec });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { stdout: string; stderr: string; exitCode: number };
  };

  test('networks belong to their owner; a VM joins only its owner\'s or a shared network', async () => {
    assert.equal((await t.admin.post('/api/networks', { name: 'lab', subnet: '10.77.5.0/24' })).status, 201);
    const other = await t.admin.post('/api/networks', { name: 'other', nat: true });
    assert.equal(other.status, 201);
    assert.match(other.body.subnet, /^10\.\d+\.\d+\.0\/24$/);
    assert.notEqual(other.body.subnet, '10.77.5.0/24');
    assert.equal((await t.admin.post('/api/networks', { name: 'lab' })).status, 409);
    assert.equal((await t.admin.post('/api/networks', { name: 'Bad Name' })).status, 400);
    assert.equal((await t.admin.post('/api/networks', { name: 'x', subnet: '10.1.2.3/24' })).status, 400);
    assert.equal((await alice.post('/api/networks', { name: 'mine', shared: true })).status, 403);
    assert.equal((await alice.get('/api/networks/lab')).status, 404, "someone else's network is not found");
    const denied = await alice.post('/api/vms', { name: 'intruder', image: 'tiny', networks: ['lab'] });
    assert.equal(denied.status, 404);
    assert.equal((await alice.get('/api/vms')).body.length, 0, 'no VM was made');
    assert.equal((await alice.post('/api/vms', { name: 'x1', image: 'tiny', networks: 'lab' })).status, 400);
    assert.equal((await alice.post('/api/networks', { name: 'mine' })).status, 201);
    assert.deepEqual((await alice.get('/api/networks')).body.map((n: { name: string }) => n.name), ['mine']);
    assert.equal((await t.admin.delete('/api/users/alice')).status, 409, 'an account that owns a network stays');
    assert.equal((await alice.delete('/api/networks/mine')).status, 204);
  });

  test('two guests on one network reach each other by name; a guest on another network does not', async () => {
    for (const [name, net] of [['alpha', 'lab'], ['beta', 'lab'], ['gamma', 'other']] as const) {
      const c = await t.admin.post('/api/vms', { name, image: 'tiny', memoryMiB: 128, networks: [net] });
      assert.equal(c.status, 201, JSON.stringify(c.body));
      assert.equal(c.body.networks.length, 1);
      assert.match(c.body.networks[0].mac, /^02:0e(:[0-9a-f]{2}){4}$/);
    }
    const lease = async (vm: string) => (await t.admin.get(`/api/vms/${vm}`)).body.networks[0].ip as string;
    const [a, b, g] = [await lease('alpha'), await lease('beta'), await lease('gamma')];
    assert.match(a, /^10\.77\.5\.\d+$/);
    assert.notEqual(a, b);
    assert.equal((await t.admin.delete('/api/networks/lab')).status, 409, 'a network in use stays');
    for (const vm of ['alpha', 'beta', 'gamma']) assert.equal((await t.admin.post(`/api/vms/${vm}/start`)).status, 200);

    // Each guest printed the lease the API shows (DHCP from the switch).
    for (const [vm, ip] of [['alpha', a], ['beta', b], ['gamma', g]]) {
      const r = await exec(vm!, 'ip -4 -o addr show eth0; cat /etc/resolv.conf');
      assert.match(r.stdout, new RegExp(`inet ${ip!.replace(/\./g, '\\.')}/`), r.stdout);
      assert.match(r.stdout, /search (lab|other)/);
    }
    // A capture for as long as the pings take: read as it comes, then the connection is closed.
    const chunks: Buffer[] = [];
    const ac = new AbortController();
    const res = await fetch(`${t.url}/api/networks/lab/capture?seconds=120`, {
      headers: { authorization: `Bearer ${t.adminToken}` }, signal: ac.signal,
    });
    assert.equal(res.status, 200);
    const reading = (async () => {
      for await (const c of res.body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
    })().catch(() => undefined);
    const ping = await exec('alpha', 'ping -c 3 -W 3 beta');
    assert.equal(ping.exitCode, 0, ping.stdout + ping.stderr);
    assert.match(ping.stdout, new RegExp(b.replace(/\./g, '\\.')));
    const back = await exec('beta', 'ping -c 1 -W 3 alpha.lab');
    assert.equal(back.exitCode, 0, back.stdout + back.stderr);
    await new Promise((r) => setTimeout(r, 300));
    ac.abort();
    await reading;
    const packets = parsePcap(Buffer.concat(chunks));
    assert.ok(packets.length >= 1, 'the capture holds frames');
    assert.ok(packets.some((p) => parseIpv4(p.frame)?.proto === IP_PROTO_ICMP), 'pings in the capture');

    // gamma routes lab's subnet onto its own card: its ARP and pings go out, and the switch keeps them in 'other'.
    const subnet = a.replace(/\.\d+$/, '.0/24');
    const cut = await exec('gamma',
      `ip route add ${subnet} dev eth0; ping -c 2 -W 1 ${a}; echo "ping=$?"; ping -c 1 -W 1 alpha; echo "name=$?"`);
    assert.match(cut.stdout, /ping=1/, `another network does not reach lab: ${cut.stdout}`);
    assert.match(cut.stdout, /0 packets received/);
    assert.match(cut.stdout, /name=[12]/, 'nor knows its names');

    const net = (await t.admin.get('/api/networks/lab')).body;
    const port = net.ports.find((p: { vm: string }) => p.vm === 'alpha');
    assert.ok(port.connected && port.counters.rxFrames > 0 && port.counters.txFrames > 0, JSON.stringify(port));
  });

  test('a TCP transfer between the two arrives whole', async () => {
    // busybox httpd on beta serves a random file; alpha fetches it by name with wget.
    const sent = await exec('beta', 'mkdir -p /tmp/www; head -c 1000000 /dev/urandom >/tmp/www/f; '
      + 'httpd -p 8080 -h /tmp/www; sha256sum /tmp/www/f');
    const want = sent.stdout.split(' ')[0]!;
    assert.match(want, /^[0-9a-f]{64}$/, sent.stdout + sent.stderr);
    const got = await exec('alpha', 'wget -q -O /tmp/got http://beta:8080/f; echo "wget=$?"; sha256sum /tmp/got', 60);
    assert.match(got.stdout, /wget=0/, got.stdout + got.stderr);
    assert.equal(got.stdout.split('\n')[1]!.split(' ')[0], want, 'the bytes alpha received are the bytes beta sent');
  });

  test('a forwarded host port reaches a guest on a --nat network', async () => {
    const free = createServer().listen(0, '127.0.0.1');
    await once(free, 'listening');
    const port = (free.address() as AddressInfo).port;
    free.close();
    await once(free, 'close');
    const made = await exec('gamma', 'mkdir -p /tmp/www; echo "hello from gamma" >/tmp/www/index.html; '
      + 'httpd -p 8080 -h /tmp/www; ip route show default');
    assert.match(made.stdout, /default via \S+/, 'a --nat network gives a default route');
    assert.equal((await alice.post('/api/vms/gamma/forwards', { hostPort: port, guestPort: 8080 })).status, 403);
    const f = await t.admin.post('/api/vms/gamma/forwards', { hostPort: port, guestPort: 8080 });
    assert.equal(f.status, 201, JSON.stringify(f.body));
    assert.equal((await t.admin.post('/api/vms/alpha/forwards', { hostPort: port + 1, guestPort: 1 })).status, 409,
      'alpha has no --nat network');
    let text = '';
    for (let i = 0; i < 20 && !text; i++) {
      text = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text(), () => '');
      if (!text) await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(text, 'hello from gamma\n');
    assert.equal((await t.admin.delete(`/api/vms/gamma/forwards/tcp/${port}`)).status, 204);
  });

  test('a restarted server dials the cards again: the guests keep their link', async () => {
    await t.stop();
    await t.restart();
    const r = await exec('beta', 'ping -c 1 -W 3 alpha');
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
  });

  test('a checkpoint restored in place is reachable again; a copy restored --as gets a MAC of its own', async () => {
    const wait = async (opId: string) => {
      const op = (await t.admin.get(`/api/operations/${opId}/wait?timeoutSec=120`)).body;
      assert.equal(op.status, 'succeeded', JSON.stringify(op));
      return op;
    };
    const ping = async (from: string, to: string) => (await exec(from, `ping -c 1 -W 2 ${to} || ping -c 2 -W 2 ${to}`));
    const card = async (vm: string) => (await t.admin.get(`/api/vms/${vm}`)).body.networks[0] as { mac: string; ip: string };
    const beta = await card('beta');
    const t0 = Date.now();
    const lap = (what: string) => process.stdout.write(`# ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    const take = await t.admin.post('/api/vms/beta/checkpoints', {});
    assert.equal(take.status, 202, JSON.stringify(take.body));
    const cp = (await wait(take.body.id)).result;
    const restored = await wait((await t.admin.post(`/api/vms/beta/checkpoints/${cp.id}/restore`)).body.id);
    // QEMU 7.2 dies on a frame its card sends before it has a peer (VmManager.waitCardsLinked): linked first.
    const timeline = (restored.log as string[]).find((l) => l.includes('restore timeline')) ?? '';
    assert.match(timeline, /cards linked.*migrate-incoming done/, JSON.stringify(restored.log));
    lap('checkpoint taken and restored in place');
    const again = await ping('alpha', 'beta');
    assert.equal(again.exitCode, 0, `beta is reachable after its restore: ${again.stdout}${again.stderr}`);
    lap('beta answers');

    const r = await t.admin.post(`/api/vms/beta/checkpoints/${cp.id}/restore`, { as: 'beta2' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.match((await wait(r.body.id)).result.note, /MACs and addresses of their own/, 'the restore says so');
    lap('restored as beta2');
    const copy = await card('beta2');
    assert.notEqual(copy.mac, beta.mac, 'the copy has a MAC of its own');
    assert.notEqual(copy.ip, beta.ip, 'and a lease of its own');
    // QEMU loads virtio-net's MAC from the stream, and the guest's driver knows only the one it read at boot: the copy
    // still sends as beta. The switch lets none of that through (the copy's port is bound to its own MAC).
    const alpha = await card('alpha'); // by address: a name would wait for DNS answers that cannot come
    const stale = await exec('beta2', `cat /sys/class/net/eth0/address; ping -c 1 -W 1 ${alpha.ip}; echo "ping=$?"`);
    assert.equal(stale.stdout.split('\n')[0], beta.mac, stale.stdout);
    assert.match(stale.stdout, /ping=1/, 'the copy does not reach the network as beta');
    const orig = await ping('alpha', 'beta');
    assert.equal(orig.exitCode, 0, `beta is not disturbed by its copy: ${orig.stdout}`);
    const port = (await t.admin.get('/api/networks/lab')).body.ports.find((p: { vm: string }) => p.vm === 'beta2');
    assert.ok(port.counters.droppedSpoofed > 0, JSON.stringify(port.counters));
    lap('the copy is cut off, beta is not');
    // A reset card (driver unbound and bound again; a reboot does the same) reads the copy's MAC: DHCP gives the
    // copy its own lease, and both are reachable.
    const reset = await exec('beta2', 'd=$(basename "$(readlink /sys/class/net/eth0/device)"); '
      + 'echo "$d" >/sys/bus/virtio/drivers/virtio_net/unbind; echo "$d" >/sys/bus/virtio/drivers/virtio_net/bind; '
      + 'sleep 1; cat /sys/class/net/eth0/address; udhcpc -i eth0 -s /etc/udhcpc.script -n -q -t 5 -T 1 >/dev/null 2>&1; '
      + 'ip -4 -o addr show eth0');
    assert.equal(reset.stdout.split('\n')[0], copy.mac, reset.stdout + reset.stderr);
    assert.match(reset.stdout, new RegExp(`inet ${copy.ip.replace(/\./g, '\\.')}/`), reset.stdout);
    lap('the copy\'s card reset, its own lease taken');
    for (const [from, to] of [['beta2', 'alpha'], ['alpha', 'beta2'], ['alpha', 'beta']]) {
      const p = await ping(from!, to!);
      assert.equal(p.exitCode, 0, `${from} → ${to}: ${p.stdout}${p.stderr}`);
    }
  });

  test('a guest that changes its MAC is cut off (and counted)', async () => {
    const before = (await t.admin.get('/api/networks/lab')).body.ports.find((p: { vm: string }) => p.vm === 'alpha');
    const r = await exec('alpha',
      'ip link set eth0 down; ip link set eth0 address 02:0e:de:ad:be:ef; ip link set eth0 up; ping -c 2 -W 1 beta');
    assert.notEqual(r.exitCode, 0, r.stdout);
    const after = (await t.admin.get('/api/networks/lab')).body.ports.find((p: { vm: string }) => p.vm === 'alpha');
    assert.ok(after.counters.droppedSpoofed > before.counters.droppedSpoofed, JSON.stringify(after.counters));
  });
});
