// The "tiny-opencl" guest: the tiny image (busybox initramfs, boots in seconds) plus what a program needs to use
// the host's OpenCL through API remoting (a VM created with `opencl`): glibc, Debian's ICD loader and clinfo, and
// Oriel's guest ICD with oriel-cl-demo, both compiled here with the host's gcc and OpenCL headers from the sources
// in src/remoting/guest (build.sh; the host runs the same Debian release as the guest's libraries).
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { aptCandidates } from './deb.ts';
import { buildTinyImage, tinyRecipeHash, type TinyVariant } from './tiny.ts';
import type { BuildContext, ImageManifest } from './types.ts';

const run = promisify(execFile);
/** The guest side of src/remoting (read as files: the image layer imports nothing of it). */
const GUEST_SRC = fileURLToPath(new URL('../../remoting/guest/', import.meta.url));
const PACKAGES = ['libc6', 'libgcc-s1', 'ocl-icd-libopencl1', 'clinfo'];
const LIBDIR = 'usr/lib/x86_64-linux-gnu';

let variant: TinyVariant | undefined;

function openclVariant(): TinyVariant {
  if (variant) return variant;
  const sources = readdirSync(GUEST_SRC).filter((f) => /\.(c|h|js|sh)$/.test(f)).sort();
  const hash = createHash('sha256');
  for (const f of sources) hash.update(f).update(readFileSync(join(GUEST_SRC, f)));
  variant = {
    name: 'tiny-opencl',
    packages: aptCandidates(PACKAGES).map((r) => ({ name: r.name, version: r.version })),
    recipe: { guest: hash.digest('hex') },
    async make(root, signal) {
      const out = join(root, '..', 'guest-build');
      rmSync(out, { recursive: true, force: true });
      try {
        await run('sh', [join(GUEST_SRC, 'build.sh'), out], { signal, env: { ...process.env, NODE: process.execPath } });
      } catch (e) {
        const x = e as { stderr?: string; message: string };
        throw new Error(`building the guest OpenCL ICD failed (gcc and opencl-c-headers installed? run `
          + `scripts/bootstrap.sh): ${(x.stderr || x.message).trim().split('\n').slice(-8).join('\n')}`);
      }
      mkdirSync(join(root, LIBDIR), { recursive: true });
      mkdirSync(join(root, 'usr/bin'), { recursive: true });
      mkdirSync(join(root, 'etc/OpenCL/vendors'), { recursive: true });
      copyFileSync(join(out, 'liboriel-opencl.so'), join(root, LIBDIR, 'liboriel-opencl.so'));
      copyFileSync(join(out, 'oriel-cl-demo'), join(root, 'usr/bin/oriel-cl-demo'));
      copyFileSync(join(out, 'oriel-cl-bench'), join(root, 'usr/bin/oriel-cl-bench'));
      writeFileSync(join(root, 'etc/OpenCL/vendors/oriel.icd'), `/${LIBDIR}/liboriel-opencl.so\n`);
      rmSync(out, { recursive: true, force: true });
    },
  };
  return variant;
}

export const tinyOpenclRecipeHash = (): string => tinyRecipeHash(openclVariant());

export function buildTinyOpenclImage(ctx: BuildContext): Promise<ImageManifest> {
  try {
    return buildTinyImage(ctx, openclVariant());
  } catch (e) {
    return Promise.reject(e);
  }
}
