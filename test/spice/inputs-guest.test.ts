// Input proven inside the tiny guest (PS/2 keyboard on tty1, PS/2 mouse, USB tablet; modules in
// src/vm/images/tiny.ts): typed text runs as a shell command on tty1, Ctrl+Alt+Del reaches init,
// Caps Lock set through KEY_MODIFIERS changes what the guest types and comes back as the guest's LED
// state, relative motion and clicks appear on the PS/2 mouse's evdev node (server mouse mode), absolute
// positions on the tablet's (client mouse mode). evdev records are read back through the command shell.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { openSpiceSession } from '../../src/spice-node/index.ts';
import { nextEvent } from '../../src/spice/emitter.ts';
import {
  ChannelType,
  KeyModifier,
  MouseButton,
  MouseButtonMask,
  MouseMode,
  type InputsChannel,
} from '../../src/spice/index.ts';
import { BTN_LEFT, EV_ABS, EV_KEY, EV_REL, eventNode, recordEvents, waitForFile } from './helpers/evdev.ts';
import { startTinyGuest } from './helpers/tiny-guest.ts';

const typePause = () => sleep(10);

test('inputs in the guest: typing, a combo, lock-key sync, relative and absolute mouse', async (t) => {
  const g = await startTinyGuest({ tcp: true, extraArgs: ['-device', 'qemu-xhci', '-device', 'usb-tablet'] });
  try {
    const session = await openSpiceSession({ host: '127.0.0.1', port: g.q.spicePort });
    const inputs = await session.whenChannel<InputsChannel>(ChannelType.INPUTS);
    await sleep(300);

    await t.test('typed text reaches tty1', async () => {
      await inputs.typeText('echo hello-123 > /tmp/typed\n', typePause);
      assert.equal(await waitForFile(g, '/tmp/typed'), 'hello-123\n');
    });

    await t.test('Ctrl+Alt+Del reaches init', async () => {
      inputs.pressKeys(['ControlLeft', 'AltLeft', 'Delete']);
      await waitForFile(g, '/tmp/ctrl-alt-del');
    });

    await t.test('Caps Lock through KEY_MODIFIERS: the guest types capitals, its LED state comes back', async () => {
      assert.equal(inputs.modifiers & KeyModifier.CAPS_LOCK, 0);
      await inputs.typeText('echo ', typePause);
      const leds = nextEvent(inputs.onModifiers, (m) => (m & KeyModifier.CAPS_LOCK) !== 0);
      inputs.setModifiers(KeyModifier.CAPS_LOCK);
      await leds;
      await inputs.typeText('abc', typePause);
      const off = nextEvent(inputs.onModifiers, (m) => (m & KeyModifier.CAPS_LOCK) === 0);
      inputs.setModifiers(0);
      await off;
      await inputs.typeText(' > /tmp/caps\n', typePause);
      assert.equal(await waitForFile(g, '/tmp/caps'), 'ABC\n');
    });

    await t.test('server mouse mode: relative motion on the PS/2 mouse, a left click', async () => {
      assert.equal(session.main.mouseMode!.current, MouseMode.SERVER);
      // QEMU routes each event type to the most recently activated device that takes it
      // (ui/input.c qemu_input_find_handler): motion to the PS/2 mouse, buttons to the tablet.
      const [ps2, tablet] = await recordEvents(g, [await eventNode(g, /PS\/2/), await eventNode(g, /Tablet/)], () => {
        inputs.mouseMotion(10, -5, 0);
        inputs.mouseMotion(7, 2, 0);
        inputs.mousePress(MouseButton.LEFT, MouseButtonMask.LEFT);
        inputs.mouseRelease(MouseButton.LEFT, 0);
      });
      const sum = (code: number) =>
        ps2!.filter((e) => e.type === EV_REL && e.code === code).reduce((a, e) => a + e.value, 0);
      assert.deepEqual([sum(0), sum(1)], [17, -3], `REL_X, REL_Y: ${JSON.stringify(ps2)}`);
      const clicks = [...ps2!, ...tablet!].filter((e) => e.type === EV_KEY && e.code === BTN_LEFT).map((e) => e.value);
      assert.deepEqual(clicks, [1, 0]);
    });

    await t.test('client mouse mode (USB tablet): absolute positions and a click', async () => {
      for (let i = 0; i < 50 && !(session.main.mouseMode!.supported & MouseMode.CLIENT); i++) await sleep(100);
      assert.ok(
        session.main.mouseMode!.supported & MouseMode.CLIENT,
        'the server offers client mode once the tablet is in use',
      );
      const switched = nextEvent(session.main.onMouseMode, (m) => m.current === MouseMode.CLIENT);
      session.main.requestMouseMode(MouseMode.CLIENT);
      await switched;
      const { width, height } = session.display!.primary!.info;
      const [x, y] = [Math.floor(width * 0.3), Math.floor(height * 0.7)];
      const [ev] = await recordEvents(g, [await eventNode(g, /Tablet/)], () => {
        inputs.mousePosition(10, 10, 0);
        inputs.mousePosition(x, y, 0);
        inputs.mousePress(MouseButton.LEFT, MouseButtonMask.LEFT);
        inputs.mouseRelease(MouseButton.LEFT, 0);
      });
      const last = (code: number) => ev!.filter((e) => e.type === EV_ABS && e.code === code).at(-1)?.value;
      // QEMU scales to 0..0x7fff over the surface size (qemu_input_scale_axis); back to pixels:
      const px = Math.round((last(0)! * width) / 0x7fff);
      const py = Math.round((last(1)! * height) / 0x7fff);
      assert.deepEqual([px, py], [x, y], `ABS events ${JSON.stringify(ev!.filter((e) => e.type === EV_ABS))}`);
      assert.deepEqual(ev!.filter((e) => e.type === EV_KEY && e.code === BTN_LEFT).map((e) => e.value), [1, 0]);
      t.diagnostic(`tablet at (${x}, ${y}) of ${width}×${height} → ABS ${last(0)}, ${last(1)}`);
    });
    session.close();
  } finally {
    await g.stop();
  }
});
