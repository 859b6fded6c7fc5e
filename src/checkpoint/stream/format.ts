// Constants of QEMU 7.2's migration stream (migration/savevm.c, migration/ram.c; docs/checkpoint-stream.md §1) and
// the error both the parser and the writer raise. Everything is big-endian; a "counted string" is a u8 length and
// that many bytes.

export const QEVM_MAGIC = 0x5145564d; // "QEVM"
export const QEVM_VERSION = 3;
export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

/** Record types (savevm.c, QEMU_VM_*). */
export const REC = {
  EOF: 0x00,
  SECTION_START: 0x01,
  SECTION_PART: 0x02,
  SECTION_END: 0x03,
  SECTION_FULL: 0x04,
  SUBSECTION: 0x05,
  VMDESCRIPTION: 0x06,
  CONFIGURATION: 0x07,
  COMMAND: 0x08,
  SECTION_FOOTER: 0x7e,
} as const;

export const RECORD_NAMES: Record<number, string> = Object.fromEntries(Object.entries(REC).map(([k, v]) => [v, k]));

/** Flags in the low 12 bits of each `ram` record's be64 (ram.c, RAM_SAVE_FLAG_*). */
export const RAM = {
  FULL: 0x01,
  ZERO: 0x02,
  MEM_SIZE: 0x04,
  PAGE: 0x08,
  EOS: 0x10,
  CONTINUE: 0x20,
  XBZRLE: 0x40,
  HOOK: 0x80,
  COMPRESS_PAGE: 0x100,
  MULTIFD_FLUSH: 0x200,
} as const;

export const RAM_SECTION = 'ram';
/** The only `ram` section version 7.2 writes and reads (ram.c, `register_savevm_live("ram", 0, 4, ...)`). */
export const RAM_VERSION = 4;

/** Configuration subsections 7.2 may send (savevm.c `vmstate_configuration`). */
export const CONFIG_SUBSECTIONS = [
  'configuration/target-page-bits',
  'configuration/capabilities',
  'configuration/uuid',
] as const;

/** Names of the flags set in `flags`, for error messages. */
export function ramFlagNames(flags: number): string {
  const names = Object.entries(RAM).filter(([, v]) => (flags & v) !== 0).map(([k]) => k);
  const unknown = flags & ~Object.values(RAM).reduce((a, b) => a | b, 0);
  if (unknown) names.push(`0x${unknown.toString(16)}`);
  return names.join('|') || '0';
}

/** The stream holds something this code does not understand (or is cut short): where, and what. */
export class StreamError extends Error {
  override name = 'StreamError';
  constructor(
    readonly reason: string,
    /** Byte offset in the stream of the record (or field) at fault. */
    readonly offset: number,
    /** The section being read ("header", "configuration", "ram", a device's idstr, ...). */
    readonly section: string,
  ) {
    super(`migration stream: ${reason} (section '${section}', byte offset ${offset})`);
  }
}
