// Kernel modules for an initramfs: which .ko files a set of modules needs (their `depends=` closure, read from
// each module's ELF .modinfo section, because Debian's kernel package ships no modules.dep: its postinst runs
// depmod), and the modules.dep text busybox modprobe reads.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The key=value strings of an ELF64 little-endian module's .modinfo section. */
export function readModinfo(elf: Buffer): Map<string, string[]> {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1)
    throw new Error('not an ELF64 little-endian file');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  const section = (i: number) => {
    const h = shoff + i * shentsize;
    return {
      name: elf.readUInt32LE(h),
      offset: Number(elf.readBigUInt64LE(h + 0x18)),
      size: Number(elf.readBigUInt64LE(h + 0x20)),
    };
  };
  const names = section(shstrndx);
  const out = new Map<string, string[]>();
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const end = elf.indexOf(0, names.offset + s.name);
    if (elf.toString('latin1', names.offset + s.name, end) !== '.modinfo') continue;
    for (const kv of elf.toString('latin1', s.offset, s.offset + s.size).split('\0')) {
      const eq = kv.indexOf('=');
      if (eq <= 0) continue;
      const k = kv.slice(0, eq);
      out.set(k, [...(out.get(k) ?? []), kv.slice(eq + 1)]);
    }
  }
  return out;
}

/** The kernel treats '-' and '_' in module names alike. */
const canon = (name: string) => name.replace(/-/g, '_');

function indexModules(dir: string, found = new Map<string, string>()): Map<string, string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) indexModules(p, found);
    // Bookworm's kernel is built with CONFIG_MODULE_COMPRESS_NONE: plain .ko files. A compressed module
    // (.ko.xz, as in later Debian kernels) is not indexed, and asking for it fails below by name.
    else if (e.name.endsWith('.ko')) found.set(canon(e.name.slice(0, -3)), p);
  }
  return found;
}

export interface ModuleSet {
  /** Paths relative to the modules folder (lib/modules/<release>), dependencies before the modules using them. */
  files: string[];
  /** modules.dep for these files, in depmod's convention: a module's full dependency list, nearest first. */
  modulesDep: string;
}

/** The modules named, with everything they depend on, from a kernel's lib/modules/<release> folder. */
export function moduleClosure(modulesDir: string, wanted: string[]): ModuleSet {
  const index = indexModules(modulesDir);
  const deps = new Map<string, string[]>();
  const order: string[] = []; // post-order: a module comes after all its dependencies
  const visit = (name: string, chain: string[]) => {
    const n = canon(name);
    if (deps.has(n)) return;
    if (chain.includes(n)) throw new Error(`module dependency cycle: ${[...chain, n].join(' -> ')}`);
    const file = index.get(n);
    if (!file)
      throw new Error(
        `kernel module '${name}' not found under ${modulesDir}${chain.length ? ` (needed by ${chain.at(-1)})` : ''}`,
      );
    const direct = (readModinfo(readFileSync(file)).get('depends')?.[0] ?? '').split(',').filter(Boolean).map(canon);
    for (const d of direct) visit(d, [...chain, n]);
    deps.set(n, direct);
    order.push(n);
  };
  for (const w of wanted) visit(w, []);
  const rel = (n: string) => relative(modulesDir, index.get(n)!);
  const allDeps = (n: string): Set<string> => new Set(deps.get(n)!.flatMap((d) => [d, ...allDeps(d)]));
  const lines = order.map((n) => {
    const mine = allDeps(n);
    // Nearest first: modprobe loads the list from its end, so the most basic modules must come last.
    const list = order.filter((m) => mine.has(m)).reverse();
    return `${rel(n)}:${list.map((m) => ' ' + rel(m)).join('')}`;
  });
  return { files: order.map(rel), modulesDep: lines.join('\n') + '\n' };
}
