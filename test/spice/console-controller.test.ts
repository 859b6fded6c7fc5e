// The console controller (src/spice/console), the one SPICE client behind both hosts (the browser console and
// `oriel console`), driven over fake wires as a server would, no QEMU: typing pace, characters refused before anything
// is sent, key combos, the switch to client mouse mode, asking the guest for a size (or monitors side by side) once
// per size, and the proxy's link reading done with the core's parsers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputsChannel } from '../../src/spice/channels/inputs.ts';
import { MainChannel } from '../../src/spice/channels/main.ts';
import { ConsoleController, type ConsoleSession } from '../../src/spice/console/controller.ts';
import { TYPE_PAUSE_MS, checkTypeable, parseKeyCombo } from '../../src/spice/console/typing.ts';
import { AgentCap, AgentMsg, encodeCaps, encodeMessage, readHeader } from '../../src/spice/vdagent/protocol.ts';
import { encodeLinkMess } from '../../src/spice/link.ts';
import { ChannelType, MainMsg, MainMsgc, MouseMode } from '../../src/spice/proto/constants.ts';
import { SpiceInputError } from '../../src/spice/proto/errors.ts';
import { Reader } from '../../src/spice/proto/reader.ts';
import { Writer } from '../../src/spice/proto/writer.ts';
import { SessionIdSniffer, parseClientLink } from '../../src/server/console/link-sniff.ts';
import { FakeWire, miniMessage, tick } from './helpers/fake.ts';

const options = { maxMessageSize: 1 << 20, lookup: () => undefined };

/** A session of a main and an inputs channel over fake wires; MAIN INIT with these mouse modes and agent. */
async function fakeSession(init: { supported: number; current: number; agent?: boolean }) {
  const mainWire = new FakeWire();
  const inputsWire = new FakeWire();
  const main = new MainChannel(ChannelType.MAIN, 0, mainWire.transport, mainWire.queue, options, {
    resizeDebounceMs: 0,
  });
  const inputs = new InputsChannel(ChannelType.INPUTS, 0, inputsWire.transport, inputsWire.queue, options);
  void main.run();
  void inputs.run();
  mainWire.push(
    MainMsg.INIT,
    new Writer(32).u32(7).u32(1).u32(init.supported).u32(init.current).u32(init.agent ? 1 : 0).u32(10).u32(0).u32(0)
      .finish(),
  );
  await tick();
  const session: ConsoleSession = {
    main,
    agent: main.agent,
    inputs,
    display: undefined,
    whenChannel: (async (type: number) => {
      if (type === ChannelType.INPUTS) return inputs;
      throw new Error(`no channel ${type} in this fake session`);
    }) as ConsoleSession['whenChannel'],
  };
  return { session, main, inputs, mainWire, inputsWire };
}

/** The main channel's MOUSE_MODE_REQUEST messages, as the modes asked for. */
const modeRequests = (w: FakeWire) =>
  w.messages().filter(([t]) => t === MainMsgc.MOUSE_MODE_REQUEST).map(([, b]) => new Reader(b).u16());

test('typing: US strokes with Shift held, paced per character; the same characters refused everywhere', async () => {
  const { session, inputsWire } = await fakeSession({ supported: MouseMode.SERVER, current: MouseMode.SERVER });
  const c = new ConsoleController(session);
  const t0 = Date.now();
  let strokes = 0;
  assert.equal(await c.typeText('aB!', { onStroke: () => strokes++ }), 3);
  const ms = Date.now() - t0;
  assert.ok(ms >= 2 * TYPE_PAUSE_MS - 5, `paced: ${ms} ms for 3 characters`);
  assert.equal(TYPE_PAUSE_MS, 40);
  assert.equal(strokes, 3);
  assert.equal(c.stats.keys, 3);
  const sent = inputsWire.messages().map(([t, b]) => `${t === 101 ? 'down' : 'up'} ${b[0]!.toString(16)}`);
  assert.deepEqual(sent, [
    'down 1e', 'up 9e', // a
    'down 2a', 'down 30', 'up b0', 'up aa', // Shift+b
    'down 2a', 'down 2', 'up 82', 'up aa', // Shift+1
  ]);

  // A character a US keyboard has no key for: refused whole, before anything is sent (the browser's Type box and
  // `oriel console type` both go through typeText/checkTypeable, so they refuse the same text).
  const before = inputsWire.messages().length;
  await assert.rejects(c.typeText('ok é'), (e: Error) => e instanceof SpiceInputError && /cannot type "é"/.test(e.message));
  assert.throws(() => checkTypeable('ok é'), SpiceInputError);
  assert.equal(checkTypeable('a\r\nb'), 3, 'CR LF is one Enter');
  assert.equal(inputsWire.messages().length, before, 'nothing sent for refused text');

  // Typing stops, saying how far it got, when the channel closes on the way.
  const long = c.typeText('abcdefgh');
  setTimeout(() => session.inputs!.close(), TYPE_PAUSE_MS + 10);
  await assert.rejects(long, /the console closed after \d of 8 characters/);
  c.dispose();
});

test('key combos: names parsed once for every host, pressed in order and released in reverse', async () => {
  assert.deepEqual(parseKeyCombo('ctrl+alt+del'), ['ControlLeft', 'AltLeft', 'Delete']);
  assert.deepEqual(parseKeyCombo('alt+F2'), ['AltLeft', 'F2']);
  assert.deepEqual(parseKeyCombo('shift+a+5'), ['ShiftLeft', 'KeyA', 'Digit5']);
  assert.throws(() => parseKeyCombo('ctrl+bogus'), (e: Error) => e instanceof SpiceInputError && /unknown key 'bogus'/.test(e.message));
  const { session, inputsWire } = await fakeSession({ supported: MouseMode.SERVER, current: MouseMode.SERVER });
  const c = new ConsoleController(session);
  await c.pressKeys(parseKeyCombo('ctrl+alt+del'));
  assert.deepEqual(
    inputsWire.messages().map(([t, b]) => `${t === 101 ? 'down' : 'up'} ${(b[0]! | (b[1]! << 8)).toString(16)}`),
    ['down 1d', 'down 38', 'down 53e0', 'up d3e0', 'up b8', 'up 9d'],
  );
  assert.equal(c.stats.keys, 3);
});

test('mouse mode: the browser switches to client mode whenever offered; the CLI only when asked', async () => {
  const both = MouseMode.SERVER | MouseMode.CLIENT;
  // preferClientMouse (the browser): asked at once, and again when the server falls back to server mode.
  const a = await fakeSession({ supported: both, current: MouseMode.SERVER });
  const browser = new ConsoleController(a.session, { preferClientMouse: true });
  const seen: string[] = [];
  browser.onMouseMode((m) => seen.push(m));
  assert.deepEqual(modeRequests(a.mainWire), [MouseMode.CLIENT]);
  assert.equal(browser.mouseMode, 'server');
  a.mainWire.push(MainMsg.MOUSE_MODE, new Writer(4).u16(both).u16(MouseMode.CLIENT).finish());
  await tick();
  assert.equal(browser.mouseMode, 'client');
  assert.deepEqual(seen, ['client']);
  a.mainWire.push(MainMsg.MOUSE_MODE, new Writer(4).u16(MouseMode.SERVER).u16(MouseMode.SERVER).finish());
  await tick();
  assert.deepEqual(seen, ['client', 'server']);
  assert.deepEqual(modeRequests(a.mainWire), [MouseMode.CLIENT], 'not asked when not offered');

  // Without it (the CLI): nothing asked until clientMouse(), which resolves once the server switched.
  const b = await fakeSession({ supported: both, current: MouseMode.SERVER });
  const cli = new ConsoleController(b.session);
  assert.deepEqual(modeRequests(b.mainWire), []);
  const switched = cli.clientMouse(1000);
  await tick();
  assert.deepEqual(modeRequests(b.mainWire), [MouseMode.CLIENT]);
  b.mainWire.push(MainMsg.MOUSE_MODE, new Writer(4).u16(both).u16(MouseMode.CLIENT).finish());
  assert.equal(await switched, true);

  // No tablet and no agent: client mode is never offered; false after the wait, nothing asked.
  const c = await fakeSession({ supported: MouseMode.SERVER, current: MouseMode.SERVER });
  const none = new ConsoleController(c.session);
  const t0 = Date.now();
  assert.equal(await none.clientMouse(100), false);
  assert.ok(Date.now() - t0 >= 95);
  assert.deepEqual(modeRequests(c.mainWire), []);
  // Offered later (the agent connected): the wait ends with the offer.
  const late = none.clientMouse(1000);
  c.mainWire.push(MainMsg.MOUSE_MODE, new Writer(4).u16(both).u16(MouseMode.SERVER).finish());
  await tick();
  assert.deepEqual(modeRequests(c.mainWire), [MouseMode.CLIENT]);
  c.mainWire.push(MainMsg.MOUSE_MODE, new Writer(4).u16(both).u16(MouseMode.CLIENT).finish());
  assert.equal(await late, true);
  for (const x of [browser, cli, none]) x.dispose();
});

test('resize: the guest is asked through its agent, rounded as the agent sends it, once per size', async () => {
  const { session, mainWire } = await fakeSession({
    supported: MouseMode.SERVER, current: MouseMode.SERVER, agent: true,
  });
  const c = new ConsoleController(session);
  assert.equal(c.requestSize(1024, 768), false, 'no ready agent yet: nothing asked');
  // The agent announces its capabilities: ready.
  const caps = encodeCaps([AgentCap.MONITORS_CONFIG, AgentCap.CLIPBOARD_BY_DEMAND], false);
  mainWire.push(MainMsg.AGENT_DATA, encodeMessage(AgentMsg.ANNOUNCE_CAPABILITIES, caps));
  await tick();
  assert.equal(session.agent.state, 'ready');
  assert.equal(c.requestSize(1023, 700), true);
  assert.deepEqual(c.requestedSize, { width: 1016, height: 700 });
  assert.equal(c.requestSize(1020, 700), false, 'the same size once rounded: not asked again');
  assert.equal(c.requestSize(1100, 700), true);
  assert.equal(c.stats.resizeRequests, 2);
  c.forgetRequestedSize();
  assert.equal(c.requestSize(1100, 700), true, 'asked again once forgotten (the host chose the mode anew)');
  await new Promise((r) => setTimeout(r, 20));
  const monitors = mainWire.messages()
    .filter(([t, b]) => t === MainMsgc.AGENT_DATA && readHeader(b).type === AgentMsg.MONITORS_CONFIG)
    .map(([, b]) => {
      const r = new Reader(b, 20);
      r.u32(); // count
      r.u32(); // flags
      const height = r.u32();
      return [r.u32(), height];
    });
  assert.ok(monitors.length >= 1);
  assert.deepEqual(monitors.at(-1), [1096, 700]);
  c.dispose();
});

test('monitors: two side by side in one config with USE_POS, asked once per layout', async () => {
  const { session, mainWire } = await fakeSession({
    supported: MouseMode.SERVER, current: MouseMode.SERVER, agent: true,
  });
  const c = new ConsoleController(session);
  mainWire.push(MainMsg.AGENT_DATA, encodeMessage(AgentMsg.ANNOUNCE_CAPABILITIES,
    encodeCaps([AgentCap.MONITORS_CONFIG], false)));
  await tick();
  const two = [{ width: 1023, height: 700 }, { width: 800, height: 600 }];
  assert.equal(c.requestMonitors(two), true);
  assert.equal(c.requestMonitors(two), false, 'the same layout: not asked again');
  assert.deepEqual(c.requestedSize, { width: 1016, height: 700 });
  await new Promise((r) => setTimeout(r, 20));
  const sent = mainWire.messages()
    .filter(([t, b]) => t === MainMsgc.AGENT_DATA && readHeader(b).type === AgentMsg.MONITORS_CONFIG)
    .map(([, b]) => {
      const r = new Reader(b, 20);
      const n = r.u32();
      const flags = r.u32();
      return { flags, heads: Array.from({ length: n }, () => [r.u32(), r.u32(), r.u32(), r.i32(), r.i32()]) };
    });
  // {height, width, depth, x, y} per monitor; flags 1 = USE_POS.
  assert.deepEqual(sent.at(-1), { flags: 1, heads: [[700, 1016, 32, 0, 0], [600, 800, 32, 1016, 0]] });
  assert.equal(c.requestSize(1016, 700), true, 'one monitor again is another layout');
  c.dispose();
});

test("the proxy reads the link with the core's parsers (server/console/link-sniff.ts)", () => {
  const mess = encodeLinkMess({ connectionId: 0, channelType: ChannelType.MAIN, channelId: 0, channelCaps: [] });
  const buf = Buffer.from(mess);
  assert.equal(parseClientLink(buf.subarray(0, 10)), undefined, 'incomplete');
  assert.deepEqual(parseClientLink(buf), {
    connectionId: 0, channelType: ChannelType.MAIN, channelId: 0, miniHeader: true, length: mess.length,
  });
  assert.throws(() => parseClientLink(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), /bad magic/);
  // The server's side: reply (error OK, key, caps with MINI_HEADER), link result, then MAIN INIT with the session id.
  const reply = new Writer(16 + 178 + 4).u32(0x51444552).u32(2).u32(2).u32(178 + 4)
    .u32(0).bytes(new Uint8Array(162)).u32(1).u32(0).u32(178).u32(1 << 3).finish();
  const sniffer = new SessionIdSniffer(true);
  let told: number | undefined;
  sniffer.onSession = (id) => (told = id);
  const rest = Buffer.concat([
    Buffer.from(new Writer(4).u32(0).finish()),
    Buffer.from(miniMessage(MainMsg.MULTI_MEDIA_TIME, new Writer(4).u32(1).finish())),
    Buffer.from(miniMessage(MainMsg.INIT, new Writer(32).u32(0xabcdef).finish())),
  ]);
  assert.equal(sniffer.feed(Buffer.from(reply)), undefined);
  assert.equal(sniffer.feed(rest.subarray(0, 7)), undefined);
  assert.equal(sniffer.feed(rest.subarray(7)), 0xabcdef);
  assert.equal(told, 0xabcdef);
  assert.ok(sniffer.finished);
});
