// oriel image upload|uploads|delete: images users bring (ISOs, disk images), sent in resumable chunks.
import { basename } from 'node:path';
import type { Command } from 'commander';
import { Api, CliError } from '../api.ts';
import { formatBytes, printJson, ProgressBar, table } from '../output.ts';

/** `file` as an UploadSource: read a chunk at a time, never whole. */
async function fileSource(file: string) {
  const { open } = await import('node:fs/promises');
  const fh = await open(file, 'r').catch((e: Error) => { throw new CliError(`cannot read ${file}: ${e.message}`); });
  const st = await fh.stat();
  if (!st.isFile()) throw new CliError(`${file} is not a regular file`);
  if (st.size === 0) throw new CliError(`${file} is empty`);
  return {
    fh,
    src: {
      size: st.size,
      async read(start: number, end: number) {
        const buf = Buffer.alloc(end - start);
        const { bytesRead } = await fh.read(buf, 0, buf.length, start);
        return buf.subarray(0, bytesRead);
      },
    },
  };
}

export function uploadCommands(image: Command, api: () => Api): void {
  image.command('upload <name> <file>')
    .description('upload an ISO (install media: vm create --cdrom) or a qcow2/raw disk image (vm create --image); '
      + 'an interrupted upload resumes when run again')
    .option('--json', 'print the image as JSON')
    .action(async (name: string, file: string, o) => {
      const { fh, src } = await fileSource(file);
      const bar = new ProgressBar();
      try {
        // One stage line off a terminal; the bar shows the bytes on one.
        const img = await api().uploads.send(name, src, (done, total) =>
          bar.update(done, total, `uploading ${basename(file)} (${formatBytes(total)})`));
        bar.end();
        if (o.json) printJson(img);
        else console.log(`image '${img.name}' is ready: ${img.kind === 'iso' ? 'ISO' : `${img.format} disk`}, ${formatBytes(img.sizeBytes)}`);
      } finally {
        await fh.close();
      }
    });

  image.command('uploads')
    .description('uploaded images (yours; all for admins)')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const list = await api().uploads.list();
      if (o.json) return printJson(list);
      if (list.length === 0) return console.log('no uploaded images: upload one with `oriel image upload NAME FILE`');
      console.log(table(list.map((i) => ({
        ...i, size: formatBytes(i.sizeBytes),
        state: i.state === 'ready' ? 'ready' : `uploading ${Math.floor((i.receivedBytes / i.sizeBytes) * 100)}%`,
      })), ['name', 'kind', 'format', 'size', 'state', 'owner']));
    });

  image.command('delete <name>').alias('rm')
    .description('delete an uploaded image no VM uses')
    .action(async (name: string) => {
      await api().uploads.delete(name);
      console.log(`deleted image '${name}'`);
    });
}
