// WebUSB in the web console, in Chromium against the desktop guest (called from agent.test.ts). This machine has no
// USB hardware, and headless Chromium's WebUSB chooser is never answered (requestDevice stays pending), so the
// "USB device…" button is only checked to be there. The redirect is driven with a WebUSB-shaped USBDevice made in
// the page whose calls go, through a playwright binding, to the virtual stick here (test/spice/helpers/
// webusb-stick.ts), standing in for the device a person would choose: the console's ConsoleUsb links the VM's
// usbredir ports, opens and claims the device through the core's WebUsbDevice and plugs it in; the guest sees a USB
// disk whose first MiB has the image's sha256; Unplug removes it.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { Page } from 'playwright-core';
import { MassStorageDevice } from '../../src/spice/usbredir/mass-storage.ts';
import { MemoryDisk } from '../../src/spice/usbredir/memory-disk.ts';
import { webUsbStick } from '../spice/helpers/webusb-stick.ts';
import { until } from './helpers.ts';

declare const window: any;
declare const atob: any;
declare const btoa: any;

/** Runs a shell command in the guest as root. */
type Gx = (script: string, timeoutSec?: number) => Promise<{ stdout: string; stderr: string; exitCode: number }>;

const MiB = 1024 * 1024;
/** The guest's USB disks (lsblk TRAN usb), by name and size in bytes. */
const usbDisks = async (gx: Gx) => (await gx('lsblk -dnb -o NAME,TRAN,SIZE | awk \'$2 == "usb" {print $1, $3}\''))
  .stdout.trim();

export async function webUsbChecks(page: Page, gx: Gx): Promise<void> {
  // Shown where the browser has WebUSB (the insecure page of the clipboard test has none: hidden there).
  assert.equal(await page.evaluate(() => !!window.navigator.usb), true, 'Chromium has WebUSB here (localhost)');
  assert.equal(await page.isVisible('#console-usb'), true);
  assert.equal(await usbDisks(gx), '', 'no USB disk in the guest yet');

  const image = randomBytes(8 * MiB);
  const stick = webUsbStick(new MassStorageDevice(new MemoryDisk(image)));
  const b64 = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');
  await page.exposeFunction('orielTestUsb', async (method: string, args: unknown[]) => {
    const a = args.map((x) => (x && typeof x === 'object' && 'b64' in x ? new Uint8Array(Buffer.from(x.b64 as string,
      'base64')) : x));
    const r = await (stick as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[method]!(...a);
    const d = (r as { data?: DataView } | undefined)?.data;
    return {
      result: d ? { ...(r as object), data: b64(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)) } : r,
      state: { opened: stick.opened, configuration: stick.configuration },
    };
  });
  // The page's USBDevice: its properties mirror the stick's; its methods are the stick's, bytes as base64. (No named
  // function in page code: tsx's keepNames would wrap it in a __name() the page lacks.)
  const name = await page.evaluate(async () => {
    const ids = { usbVersionMajor: 2, deviceClass: 0, deviceSubclass: 0, deviceProtocol: 0, vendorId: 0x0781,
      productId: 0x5567, deviceVersionMajor: 1, deviceVersionMinor: 2, deviceVersionSubminor: 6 };
    const dev: any = { ...ids, productName: 'Oriel test stick', opened: false, configuration: null };
    for (const m of ['open', 'close', 'selectConfiguration', 'claimInterface', 'releaseInterface',
      'selectAlternateInterface', 'controlTransferIn', 'controlTransferOut', 'transferIn', 'transferOut', 'reset']) {
      dev[m] = async (...args: any[]) => {
        const wire = args.map((x) => (x instanceof Uint8Array ? { b64: btoa(String.fromCharCode(...x)) } : x));
        const { result, state } = await window.orielTestUsb(m, wire);
        Object.assign(dev, state);
        if (result?.data !== undefined) {
          const u = Uint8Array.from(atob(result.data), (c: string) => c.charCodeAt(0));
          return { ...result, data: new DataView(u.buffer) };
        }
        return result;
      };
    }
    const r = await window.orielConsole.usb.redirect(dev);
    return r?.name ?? window.orielConsole.usb.message;
  });
  assert.equal(name, 'Oriel test stick');
  await page.waitForSelector('.console-usb-device:has-text("Oriel test stick")');
  const disk = await until('a USB disk in the guest', async () => usbDisks(gx).then((s) => s || undefined), 60_000, 500);
  const [dev, size] = disk.split(' ');
  assert.equal(Number(size), image.length);
  const sum = await gx(`dd if=/dev/${dev} bs=1M count=1 2>/dev/null | sha256sum`);
  assert.equal(sum.stdout.split(' ')[0], createHash('sha256').update(image.subarray(0, MiB)).digest('hex'));
  assert.ok(stick.calls.includes('claim 0'), `the page claimed the device (${stick.calls.join(', ')})`);

  await page.click('.console-usb-device');
  await until('the USB disk gone from the guest', async () => (await usbDisks(gx)) === '' || undefined, 30_000, 500);
  assert.equal(stick.calls.at(-1), 'close', 'unplugging gives the device back (released and closed)');
}
