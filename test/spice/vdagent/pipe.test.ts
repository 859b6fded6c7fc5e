// The agent pipe and the agent's message layer, driven byte for byte as the server would (the real agent in a guest is
// exercised by test/spice/vdagent/guest.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AgentPipe, CLIENT_TOKEN_WINDOW } from '../../../src/spice/vdagent/pipe.ts';
import {
  AGENT_MAX_CHUNK, AgentCap, AgentMsg, ClipboardType, XferStatus, decodeCaps, encodeCaps, encodeMessage, readHeader,
} from '../../../src/spice/vdagent/protocol.ts';
import { SpiceAgent } from '../../../src/spice/vdagent/agent.ts';
import { MainMsgc } from '../../../src/spice/proto/constants.ts';
import { Reader } from '../../../src/spice/proto/reader.ts';
import { Writer } from '../../../src/spice/proto/writer.ts';
import { decodeUtf8, encodeUtf8 } from '../../../src/spice/proto/utf8.ts';
import { SpiceProtocolError } from '../../../src/spice/proto/errors.ts';

function sink() {
  const chunks: Uint8Array[] = [];
  const tokens: number[] = [];
  return {
    chunks,
    tokens,
    sendData: (c: Uint8Array) => chunks.push(c.slice()),
    sendTokens: (n: number) => tokens.push(n),
  };
}

/** Re-reads the agent messages out of a list of AGENT_DATA bodies. */
function messagesOf(chunks: Uint8Array[]): { type: number; data: Uint8Array }[] {
  const out: { type: number; data: Uint8Array }[] = [];
  const p = new AgentPipe(
    { sendData() {}, sendTokens() {} },
    (m) => out.push(m),
    () => assert.fail('oversized'),
    1 << 30,
  );
  for (const c of chunks) p.receive(c);
  return out;
}

test('outgoing messages are cut into chunks of at most 2048 bytes, one token each, never interleaved', async () => {
  const s = sink();
  const pipe = new AgentPipe(s, () => {}, () => {}, 1 << 20);
  const big = new Uint8Array(10_000).map((_, i) => i & 255);
  const sent = pipe.send(AgentMsg.FILE_XFER_DATA, big, { bulk: true });
  const small = pipe.send(AgentMsg.CLIPBOARD_RELEASE, new Uint8Array([0, 0, 0, 0]));
  assert.equal(s.chunks.length, 0, 'no tokens, nothing sent');
  pipe.setServerTokens(3);
  assert.equal(s.chunks.length, 3);
  // The control message overtook the bulk one that had not started.
  assert.equal(readHeader(s.chunks[0]!).type, AgentMsg.CLIPBOARD_RELEASE);
  pipe.addServerTokens(100);
  await Promise.all([sent, small]);
  assert.ok(s.chunks.every((c) => c.length <= AGENT_MAX_CHUNK));
  const msgs = messagesOf(s.chunks);
  assert.deepEqual(msgs.map((m) => m.type), [AgentMsg.CLIPBOARD_RELEASE, AgentMsg.FILE_XFER_DATA]);
  assert.deepEqual(msgs[1]!.data, big);
  assert.equal(s.chunks.length, 1 + Math.ceil((big.length + 20) / AGENT_MAX_CHUNK));
});

test('a started message finishes before a control message queued later', () => {
  const s = sink();
  const pipe = new AgentPipe(s, () => {}, () => {}, 1 << 20);
  void pipe.send(AgentMsg.FILE_XFER_DATA, new Uint8Array(5000), { bulk: true });
  pipe.setServerTokens(1);
  void pipe.send(AgentMsg.CLIPBOARD_RELEASE, new Uint8Array(4));
  pipe.addServerTokens(10);
  const types = messagesOf(s.chunks).map((m) => m.type);
  assert.deepEqual(types, [AgentMsg.FILE_XFER_DATA, AgentMsg.CLIPBOARD_RELEASE]);
});

test('incoming messages are reassembled whatever the chunk boundaries; tokens go back to the server', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 3000 }), { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 2048 }), { minLength: 1, maxLength: 50 }),
      (payloads, cuts) => {
        const stream = concat(payloads.map((p, i) => encodeMessage(100 + i, p)));
        const got: Uint8Array[] = [];
        const s = sink();
        const pipe = new AgentPipe(s, (m) => got.push(m.data), () => assert.fail('oversized'), 1 << 20);
        let at = 0;
        let chunks = 0;
        for (let i = 0; at < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          pipe.receive(stream.subarray(at, at + n));
          at += n;
          chunks++;
        }
        assert.equal(got.length, payloads.length);
        got.forEach((g, i) => assert.deepEqual(g, payloads[i]));
        const returned = s.tokens.reduce((a, b) => a + b, 0);
        // Never more than half the window owed to the server.
        assert.ok(chunks - returned < CLIENT_TOKEN_WINDOW / 2 && returned <= chunks);
      },
    ),
  );
});

test('an incoming message over the limit is skipped without being stored, the next one still arrives', () => {
  const got: number[] = [];
  const warned: number[] = [];
  const pipe = new AgentPipe(sink(), (m) => got.push(m.type), (_t, size) => warned.push(size), 1000);
  const stream = concat([encodeMessage(4, new Uint8Array(5000)), encodeMessage(7, new Uint8Array(10))]);
  for (let at = 0; at < stream.length; at += 2048) pipe.receive(stream.subarray(at, at + 2048));
  assert.deepEqual(warned, [5000]);
  assert.deepEqual(got, [7]);
});

test('garbage from the agent is a typed protocol error, never a crash or an allocation by its size', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 2048 }), { maxLength: 8 }), (chunks) => {
      const pipe = new AgentPipe(sink(), () => {}, () => {}, 1 << 16);
      try {
        for (const c of chunks) pipe.receive(c);
      } catch (e) {
        assert.ok(e instanceof SpiceProtocolError, String(e));
      }
    }),
  );
});

test('capabilities round-trip as a bit array', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 90 })), fc.boolean(), (caps, request) => {
      const d = decodeCaps(encodeCaps(caps, request));
      assert.equal(d.request, request);
      assert.deepEqual([...d.caps].sort((a, b) => a - b), [...caps].sort((a, b) => a - b));
    }),
  );
});

/** A scripted server + agent around a SpiceAgent: what the client sends is decoded; the test plays the guest. */
function harness() {
  const out: { type: number; body: Uint8Array }[] = [];
  const agent = new SpiceAgent(
    { send: (type, body) => out.push({ type, body: body.slice() }) },
    { resizeDebounceMs: 10, maxClipboard: 4096 },
  );
  const sentToAgent = () => messagesOf(out.filter((m) => m.type === MainMsgc.AGENT_DATA).map((m) => m.body));
  const fromGuest = (type: number, payload: Uint8Array) => {
    const bytes = encodeMessage(type, payload);
    for (let at = 0; at < bytes.length; at += 2048) agent.data(bytes.subarray(at, at + 2048));
  };
  return { agent, out, sentToAgent, fromGuest };
}

test('agent start: AGENT_START grants the window, capabilities are announced, the guest answer makes it ready', async () => {
  const h = harness();
  h.agent.init(true, 10);
  assert.equal(h.out[0]!.type, MainMsgc.AGENT_START);
  assert.equal(new Reader(h.out[0]!.body).u32(), CLIENT_TOKEN_WINDOW);
  const caps = decodeCaps(h.sentToAgent()[0]!.data);
  assert.ok(caps.request && caps.caps.has(AgentCap.CLIPBOARD_BY_DEMAND) && caps.caps.has(AgentCap.CLIPBOARD_SELECTION));
  const ready = h.agent.whenReady(1000);
  h.fromGuest(
    AgentMsg.ANNOUNCE_CAPABILITIES,
    encodeCaps(
      [AgentCap.CLIPBOARD_BY_DEMAND, AgentCap.CLIPBOARD_SELECTION, AgentCap.MONITORS_CONFIG, AgentCap.MAX_CLIPBOARD],
      false,
    ),
  );
  await ready;
  assert.equal(h.agent.state, 'ready');
  // MAX_CLIPBOARD told to an agent that understands it.
  const max = h.sentToAgent().find((m) => m.type === AgentMsg.MAX_CLIPBOARD);
  assert.equal(new Reader(max!.data).i32(), 4096);
  h.agent.close();
});

test('clipboard by demand: guest grab → request → data, and client grab → guest request → data', async () => {
  const h = harness();
  h.agent.init(true, 100);
  h.fromGuest(
    AgentMsg.ANNOUNCE_CAPABILITIES,
    encodeCaps([AgentCap.CLIPBOARD_BY_DEMAND, AgentCap.CLIPBOARD_SELECTION], false),
  );
  // Guest copies text on PRIMARY (selection 1).
  h.fromGuest(AgentMsg.CLIPBOARD_GRAB, new Writer().u8(1).u8(0).u8(0).u8(0).u32(ClipboardType.UTF8_TEXT).finish());
  const reading = h.agent.clipboard.readText(1, 1000);
  await tick();
  const req = h.sentToAgent().find((m) => m.type === AgentMsg.CLIPBOARD_REQUEST)!;
  assert.deepEqual([...req.data], [1, 0, 0, 0, ClipboardType.UTF8_TEXT, 0, 0, 0]);
  h.fromGuest(
    AgentMsg.CLIPBOARD,
    new Writer().u8(1).u8(0).u8(0).u8(0).u32(ClipboardType.UTF8_TEXT).bytes(encodeUtf8('héllo')).finish(),
  );
  assert.equal(await reading, 'héllo');
  // No image offered: reading one gives undefined without asking.
  assert.equal(await h.agent.clipboard.readPng(1), undefined);

  await h.agent.clipboard.set({ text: 'from client' });
  const grab = h.sentToAgent().find((m) => m.type === AgentMsg.CLIPBOARD_GRAB)!;
  assert.deepEqual([...grab.data], [0, 0, 0, 0, ClipboardType.UTF8_TEXT, 0, 0, 0]);
  h.fromGuest(AgentMsg.CLIPBOARD_REQUEST, new Writer().u8(0).u8(0).u8(0).u8(0).u32(ClipboardType.UTF8_TEXT).finish());
  await tick();
  const data = h.sentToAgent().find((m) => m.type === AgentMsg.CLIPBOARD)!;
  const r = new Reader(data.data);
  r.u32();
  assert.equal(r.u32(), ClipboardType.UTF8_TEXT);
  assert.equal(decodeUtf8(r.rest()), 'from client');
  // A request for a type not offered gets NONE.
  h.fromGuest(AgentMsg.CLIPBOARD_REQUEST, new Writer().u8(0).u8(0).u8(0).u8(0).u32(ClipboardType.PNG).finish());
  await tick();
  const none = h.sentToAgent().filter((m) => m.type === AgentMsg.CLIPBOARD)[1]!;
  assert.equal(new Reader(none.data, 4).u32(), ClipboardType.NONE);
  // Over the limit: a clear error, nothing sent.
  await assert.rejects(h.agent.clipboard.set({ text: 'x'.repeat(5000) }), /exceeds the 4096-byte limit/);
  h.agent.disconnected();
  await assert.rejects(h.agent.clipboard.set({ text: 'x' }), /not connected/);
  h.agent.close();
});

test('a read in progress fails when the guest agent goes away', async () => {
  const h = harness();
  h.agent.init(true, 100);
  h.fromGuest(AgentMsg.ANNOUNCE_CAPABILITIES, encodeCaps([AgentCap.CLIPBOARD_BY_DEMAND], false));
  h.fromGuest(AgentMsg.CLIPBOARD_GRAB, new Writer().u32(ClipboardType.UTF8_TEXT).finish());
  const reading = h.agent.clipboard.readText(0, 5000);
  h.agent.disconnected();
  await assert.rejects(reading, /agent disconnected/);
  h.agent.close();
});

test('monitors config: debounced, width rounded to 8, height first on the wire', async () => {
  const h = harness();
  h.agent.init(true, 100);
  h.fromGuest(AgentMsg.ANNOUNCE_CAPABILITIES, encodeCaps([AgentCap.MONITORS_CONFIG], false));
  h.agent.resize(1000, 700);
  h.agent.resize(1283, 801);
  await new Promise((r) => setTimeout(r, 50));
  const mons = h.sentToAgent().filter((m) => m.type === AgentMsg.MONITORS_CONFIG);
  assert.equal(mons.length, 1);
  const r = new Reader(mons[0]!.data);
  assert.deepEqual([r.u32(), r.u32(), r.u32(), r.u32(), r.u32(), r.i32(), r.i32()], [1, 0, 801, 1280, 32, 0, 0]);
  h.agent.close();
});

test('file transfer: start, wait for the guest, stream paced by tokens, success; guest refusal is a typed error', async () => {
  const h = harness();
  h.agent.init(true, 0);
  h.fromGuest(AgentMsg.ANNOUNCE_CAPABILITIES, encodeCaps([AgentCap.FILE_XFER_DETAILED_ERRORS], false));
  h.agent.tokens(1000);
  const content = new Uint8Array(200_000).map((_, i) => (i * 7) & 255);
  const progress: number[] = [];
  const sending = h.agent.files.send(
    { name: '../evil/name.bin', size: content.length, read: async (o, n) => content.subarray(o, o + n) },
    { onProgress: (p) => progress.push(p.sent) },
  );
  await tick();
  const start = h.sentToAgent().find((m) => m.type === AgentMsg.FILE_XFER_START)!;
  const id = new Reader(start.data).u32();
  // A path never reaches the guest, and the keyfile is a C string.
  assert.equal(decodeUtf8(start.data.subarray(4, -1)), '[vdagent-file-xfer]\nname=name.bin\nsize=200000\n');
  assert.equal(start.data.at(-1), 0);
  h.fromGuest(AgentMsg.FILE_XFER_STATUS, new Writer().u32(id).u32(XferStatus.CAN_SEND_DATA).finish());
  for (let i = 0; i < 20; i++) {
    h.agent.tokens(64);
    await tick();
  }
  const data = h.sentToAgent().filter((m) => m.type === AgentMsg.FILE_XFER_DATA);
  const joined = concat(data.map((m) => {
    const r = new Reader(m.data);
    assert.equal(r.u32(), id);
    const n = Number(r.u64());
    return r.bytesView(n);
  }));
  assert.deepEqual(joined, content);
  h.fromGuest(AgentMsg.FILE_XFER_STATUS, new Writer().u32(id).u32(XferStatus.SUCCESS).finish());
  await sending;
  assert.equal(progress.at(-1), content.length);

  const refused = h.agent.files.send({ name: 'big.iso', size: 10, read: async () => new Uint8Array(10) });
  await tick();
  const id2 = new Reader(h.sentToAgent().filter((m) => m.type === AgentMsg.FILE_XFER_START)[1]!.data).u32();
  h.fromGuest(AgentMsg.FILE_XFER_STATUS, new Writer().u32(id2).u32(XferStatus.NOT_ENOUGH_SPACE).u64(1234).finish());
  await assert.rejects(
    refused,
    (e: Error & { code?: string }) => e.code === 'no-space' && /1234 bytes free/.test(e.message),
  );
  h.agent.close();
});

test('file transfer cancel: queued data dropped, CANCELLED told to the agent', async () => {
  const h = harness();
  h.agent.init(true, 50);
  h.fromGuest(AgentMsg.ANNOUNCE_CAPABILITIES, encodeCaps([], false));
  const ac = new AbortController();
  const sending = h.agent.files.send(
    { name: 'a', size: 1 << 20, read: async (_o, n) => new Uint8Array(n) },
    { signal: ac.signal },
  );
  await tick();
  const id = new Reader(h.sentToAgent().find((m) => m.type === AgentMsg.FILE_XFER_START)!.data).u32();
  h.fromGuest(AgentMsg.FILE_XFER_STATUS, new Writer().u32(id).u32(XferStatus.CAN_SEND_DATA).finish());
  await tick();
  ac.abort();
  await assert.rejects(sending, (e: Error & { code?: string }) => e.code === 'cancelled');
  h.agent.tokens(10_000);
  await tick();
  const msgs = h.sentToAgent();
  const status = msgs.find((m) => m.type === AgentMsg.FILE_XFER_STATUS)!;
  const r = new Reader(status.data);
  assert.deepEqual([r.u32(), r.u32()], [id, XferStatus.CANCELLED]);
  // Far less than the file went out.
  assert.ok(msgs.filter((m) => m.type === AgentMsg.FILE_XFER_DATA).length < 5);
  h.agent.close();
});

const tick = () => new Promise((r) => setImmediate(r));

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
