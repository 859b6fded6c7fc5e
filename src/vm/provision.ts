// A new VM's row, folder and disk overlay: made together, or not at all.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { conflict, OrielError } from '../errors.ts';
import { createBlankDisk, createOverlay, diskInfo } from './disk.ts';
import { OVMF_VARS } from './media-args.ts';
import type { VmManagerOptions } from './manager-options.ts';
import { vmPaths } from './paths.ts';
import { nicsFor, vmRequestSchema, type VmRequest, type VmSpec } from './spec.ts';
import type { VmRecord, VmRecords } from './records.ts';

/** Makes the VM's folder and overlay (if it has a disk, recording its provisioned size), gives it a card with a
 * stable MAC on each network id of `networks` (none: the spec's own cards, as a twin keeps them), asks the quotas
 * (no await between their word and the row's insert), then inserts the row. On failure the folder is removed. */
export async function provisionVm(
  o: VmManagerOptions,
  store: VmRecords,
  req: { name: string; ownerId: string; spec: VmSpec; networks?: string[]; varsFrom?: string },
): Promise<VmRecord> {
  const id = store.newId();
  const p = vmPaths(o.dataDir, id);
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  try {
    const spec = { ...req.spec, ...nicsFor(id, req.networks) };
    if (spec.baseDisk) {
      await createOverlay(o.qemuImgBinary, spec.baseDisk, spec.baseFormat!, p.disk);
      spec.diskBytes = (await diskInfo(o.qemuImgBinary, p.disk, 'qcow2')).virtualSize;
    } else if (spec.blankDisk) {
      await createBlankDisk(o.qemuImgBinary, p.disk, spec.diskBytes!);
    }
    if (spec.firmware === 'uefi') copyFileSync(req.varsFrom ?? OVMF_VARS, p.vars);
    o.admit?.create(req.ownerId, spec);
    return store.insert({ id, name: req.name, ownerId: req.ownerId, spec });
  } catch (e) {
    rmSync(p.dir, { recursive: true, force: true });
    if (e instanceof OrielError) throw e;
    if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE')
      throw conflict(`a VM named '${req.name}' already exists`);
    throw e;
  }
}

/** A create request, checked: a 400 naming each field that is wrong. */
export function parseVmRequest(input: unknown): VmRequest {
  const parsed = vmRequestSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ` : '') + i.message);
  throw new OrielError(400, issues.join('; '), 'bad_request');
}
