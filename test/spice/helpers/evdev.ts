// Reading a tiny guest's evdev nodes through its command shell: which node is which device, and the
// events a node delivered while the test acted (struct input_event records).
import { setTimeout as sleep } from 'node:timers/promises';
import type { TinyGuest } from './tiny-guest.ts';

export const EV_KEY = 1;
export const EV_REL = 2;
export const EV_ABS = 3;
export const BTN_LEFT = 0x110;

export interface InputEvent { type: number; code: number; value: number }

/** struct input_event on x86-64: timeval (16 B), type u16, code u16, value s32. */
export function parseEvents(b: Buffer): InputEvent[] {
  const out: InputEvent[] = [];
  for (let o = 0; o + 24 <= b.length; o += 24)
    out.push({ type: b.readUInt16LE(o + 16), code: b.readUInt16LE(o + 18), value: b.readInt32LE(o + 20) });
  return out;
}

/** /dev/input/eventN of the device whose name matches. */
export async function eventNode(g: TinyGuest, name: RegExp): Promise<string> {
  const list = await g.run('for e in /sys/class/input/event*; do echo "${e##*/} $(cat $e/device/name)"; done');
  const line = list.split('\n').find((l) => name.test(l));
  if (!line) throw new Error(`no input device matching ${name}: ${list}`);
  return `/dev/input/${line.split(' ')[0]}`;
}

/** Records the evdev `nodes` for `seconds` while `act` runs, then returns the events of each. */
export async function recordEvents(
  g: TinyGuest,
  nodes: string[],
  act: () => void | Promise<void>,
  seconds = 3,
): Promise<InputEvent[][]> {
  await g.run(
    nodes.map((n, i) => `rm -f /tmp/ev${i}; (timeout ${seconds} cat ${n} > /tmp/ev${i}) >/dev/null 2>&1 &`).join('\n'),
  );
  const started = Date.now();
  await sleep(400);
  await act();
  await sleep(Math.max(0, seconds * 1000 + 300 - (Date.now() - started)));
  return Promise.all(nodes.map(async (_, i) => parseEvents(Buffer.from(await g.run(`base64 /tmp/ev${i}`), 'base64'))));
}

/** Waits for a file the guest is expected to write; returns its content. */
export async function waitForFile(g: TinyGuest, path: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await g.shell.execScript(`cat ${path}`);
    if (r.exitCode === 0) return r.stdout;
    if (Date.now() > deadline) throw new Error(`${path} never appeared in the guest`);
    await sleep(200);
  }
}
