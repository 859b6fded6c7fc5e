// USB standard descriptors of the virtual stick (USB 2.0 §9.6): device, configuration (with its interface and
// endpoints), device qualifier, strings (UTF-16LE).
import type { DeviceConnect } from './protocol.ts';

export function deviceDescriptor(d: DeviceConnect): Uint8Array {
  return Uint8Array.from([
    18, 1, 0x00, 0x02, // bcdUSB 2.00 (not 2.01: no BOS descriptor)
    d.deviceClass, d.deviceSubclass, d.deviceProtocol, 64,
    d.vendorId & 0xff, d.vendorId >> 8, d.productId & 0xff, d.productId >> 8, d.bcdDevice & 0xff, d.bcdDevice >> 8,
    1, 2, 3, // iManufacturer, iProduct, iSerialNumber
    1, // one configuration
  ]);
}

/** Configuration 1: one mass-storage interface (SCSI transparent, bulk-only), two bulk endpoints of 512 bytes. */
export function configDescriptor(epIn: number, epOut: number): Uint8Array {
  return Uint8Array.from([
    9, 2, 32, 0, 1, 1, 0, 0x80, 50, // wTotalLength 32, 1 interface, value 1, bus powered, 100 mA
    9, 4, 0, 0, 2, 0x08, 0x06, 0x50, 0, // interface 0, alt 0, 2 endpoints, class 08/06/50
    7, 5, epIn, 0x02, 0x00, 0x02, 0, // bulk IN, 512
    7, 5, epOut, 0x02, 0x00, 0x02, 0, // bulk OUT, 512
  ]);
}

/** What the device would be at full speed (asked of high-speed devices). */
export function qualifierDescriptor(): Uint8Array {
  return Uint8Array.from([10, 6, 0x00, 0x02, 0, 0, 0, 64, 1, 0]);
}

export function stringDescriptor(s: string): Uint8Array {
  const text = s.slice(0, 126);
  const out = new Uint8Array(2 + 2 * text.length);
  out[0] = out.length;
  out[1] = 3;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out[2 + 2 * i] = c & 0xff;
    out[3 + 2 * i] = c >> 8;
  }
  return out;
}
