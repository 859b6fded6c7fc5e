// A bootable install-media ISO for the media tests, made the way distributions make theirs: the tiny guest's
// kernel (Debian's bzImage, from the .deb the tiny image was built from) and initramfs, ISOLINUX for BIOS
// (El Torito, no emulation) and an EFI system partition image holding a standalone GRUB as \EFI\BOOT\BOOTX64.EFI for
// UEFI, one hybrid image by xorriso. Both boot the same kernel with console=ttyS0, so the guest prints the tiny
// image's ready marker on the serial console. Built once per kernel and initramfs into the temp folder (~3 s).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../../src/config.ts';
import { fetchDeb } from '../../src/vm/images/deb.ts';
import { tinyPackages } from '../../src/vm/images/tiny.ts';
import { ensureTinyImage } from './images.ts';

const VERSION = 1;
const APPEND = 'console=ttyS0 panic=-1 quiet';
/** The file GRUB looks for to find the ISO's own file system (its root is the ESP image at first). */
const TAG = 'oriel-test-iso';

const GRUB_CFG = `set timeout=0
search --no-floppy --set=root --file /${TAG}
linux /vmlinuz ${APPEND}
initrd /initrd.img
boot
`;

const ISOLINUX_CFG = `DEFAULT linux
PROMPT 0
LABEL linux
  KERNEL /vmlinuz
  APPEND initrd=/initrd.img ${APPEND}
`;

const sh = (cmd: string, args: string[], cwd?: string) =>
  execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });

let built: Promise<string> | undefined;

/** The path of the test ISO (made on first use). */
export function ensureTestIso(): Promise<string> {
  built ??= make();
  return built;
}

async function make(): Promise<string> {
  const tiny = await ensureTinyImage();
  const { kernel } = tinyPackages();
  const key = createHash('sha256').update(JSON.stringify([VERSION, tiny.recipe, kernel, GRUB_CFG, ISOLINUX_CFG]))
    .digest('hex').slice(0, 16);
  const out = join(tmpdir(), `oriel-test-${key}.iso`);
  if (existsSync(out)) return out;
  const deb = await fetchDeb(kernel.name, kernel.version, join(defaultConfig().cacheDir, 'debs'));
  const work = mkdtempSync(join(tmpdir(), 'oriel-iso-'));
  try {
    const root = join(work, 'root');
    mkdirSync(join(root, 'isolinux'), { recursive: true });
    // The bzImage alone, out of the package's data tarball.
    sh('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xO --wildcards "./boot/vmlinuz-*" > "$2"', 'sh', deb,
      join(root, 'vmlinuz')]);
    copyFileSync(tiny.initrd!, join(root, 'initrd.img'));
    writeFileSync(join(root, TAG), 'oriel\n');
    // BIOS: ISOLINUX.
    copyFileSync('/usr/lib/ISOLINUX/isolinux.bin', join(root, 'isolinux/isolinux.bin'));
    copyFileSync('/usr/lib/syslinux/modules/bios/ldlinux.c32', join(root, 'isolinux/ldlinux.c32'));
    writeFileSync(join(root, 'isolinux/isolinux.cfg'), ISOLINUX_CFG);
    // UEFI: a FAT image with a standalone GRUB at the removable-media path.
    writeFileSync(join(work, 'grub.cfg'), GRUB_CFG);
    sh('grub-mkstandalone', ['-O', 'x86_64-efi', '-o', join(work, 'BOOTX64.EFI'),
      '--install-modules=linux normal iso9660 search search_fs_file configfile echo test part_msdos part_gpt fat',
      '--modules=linux iso9660 search search_fs_file normal', '--locales=', '--fonts=', '--themes=',
      `boot/grub/grub.cfg=${join(work, 'grub.cfg')}`]);
    const esp = join(root, 'efi.img');
    writeFileSync(esp, Buffer.alloc(0));
    sh('truncate', ['-s', '4M', esp]);
    sh('mformat', ['-i', esp, '-T', '8192', '-h', '2', '-s', '32', '::']);
    sh('mmd', ['-i', esp, '::/EFI', '::/EFI/BOOT']);
    sh('mcopy', ['-i', esp, join(work, 'BOOTX64.EFI'), '::/EFI/BOOT/BOOTX64.EFI']);
    const tmp = `${out}.${process.pid}`;
    sh('xorriso', ['-as', 'mkisofs', '-quiet', '-o', tmp, '-V', 'ORIEL_TEST', '-J', '-R',
      '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat', '-no-emul-boot', '-boot-load-size', '4',
      '-boot-info-table', '-eltorito-alt-boot', '-e', 'efi.img', '-no-emul-boot', root]);
    renameSync(tmp, out);
    return out;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
