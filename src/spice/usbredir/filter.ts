// usbredir filter rules (usbredirfilter.h): "class,vendor,product,version,allow|…", each field a number (decimal or
// 0x hex) or -1 for any. QEMU's usb-redir `filter` property reaches the host as filter_filter; a device that no rule
// allows is refused (QEMU checks with no default-allow flag: no match = refused).
import { UsbredirProtocolError } from './parser.ts';
import type { DeviceConnect, InterfaceInfo } from './protocol.ts';

export interface FilterRule {
  deviceClass: number;
  vendorId: number;
  productId: number;
  bcdDevice: number;
  allow: boolean;
}

const MAX_RULES = 256;

export function parseFilterRules(text: string): FilterRule[] {
  const clean = text.replace(/\0+$/, '');
  if (clean === '') return [];
  const rules = clean.split('|');
  if (rules.length > MAX_RULES) throw new UsbredirProtocolError(`usbredir filter: ${rules.length} rules (at most ${MAX_RULES})`);
  return rules.map((r) => {
    const f = r.split(',').map((s) => s.trim());
    if (f.length !== 5 || f.some((s) => !/^(-1|0x[0-9a-f]{1,8}|\d{1,10})$/i.test(s))) {
      throw new UsbredirProtocolError(`usbredir filter: malformed rule '${r.slice(0, 80)}'`);
    }
    const [c, v, p, b, a] = f.map((s) => (s === '-1' ? -1 : Number(s)));
    return { deviceClass: c!, vendorId: v!, productId: p!, bcdDevice: b!, allow: a !== 0 };
  });
}

/** Whether the rules let this device through: the first rule matching the device (or one of its interfaces) decides. */
export function filterAllows(
  rules: readonly FilterRule[], dev: DeviceConnect, ifaces: readonly InterfaceInfo[],
): boolean {
  const any = (rule: number, v: number) => rule === -1 || rule === v;
  // A device of class 0 is described by its interfaces: each is checked; class 0xff rules etc. match either.
  const classes = dev.deviceClass === 0 ? ifaces.map((i) => i.class) : [dev.deviceClass];
  for (const r of rules) {
    const ids = any(r.vendorId, dev.vendorId) && any(r.productId, dev.productId) && any(r.bcdDevice, dev.bcdDevice);
    if (!ids) continue;
    if (classes.some((c) => any(r.deviceClass, c)) || (classes.length === 0 && r.deviceClass === -1)) return r.allow;
  }
  return false;
}
