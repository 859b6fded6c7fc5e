// A create request's parts beyond the built images (resolve-spec.ts): an uploaded disk image as the base, an uploaded
// ISO in a CD-ROM drive, an empty disk of a given size, UEFI firmware, or a linked clone of a template.
import { isAbsolute } from 'node:path';
import { conflict, forbidden, notFound, OrielError } from '../errors.ts';
import { imageBuilder } from './images/registry.ts';
import { checkUefi } from './media-args.ts';
import { vmPaths } from './paths.ts';
import { resolveSpec, type SpecDefaults } from './resolve-spec.ts';
import type { VmRequest, VmSpec } from './spec.ts';
import type { VmRecords } from './records.ts';
import type { Caller, UploadedImages } from './uploads/store.ts';

export interface ResolvedSpec {
  spec: VmSpec;
  /** The UEFI variable store to copy into the new VM (a template's), else OVMF's blank one. */
  varsFrom?: string;
}

export async function resolveVmSpec(
  req: VmRequest, o: SpecDefaults & { dataDir: string }, images: UploadedImages, store: VmRecords, caller: Caller,
): Promise<ResolvedSpec> {
  if (req.from) return cloneSpec(req, o.dataDir, store, caller);
  const uploaded = req.image && !isAbsolute(req.image) && !imageBuilder(req.image) && images.byName(req.image)
    ? images.usable(req.image, caller, 'disk') : undefined;
  const spec = await resolveSpec({ ...req, ...(uploaded ? { image: undefined } : {}) }, o, caller.admin);
  if (uploaded) {
    Object.assign(spec, { image: uploaded.name, baseDisk: images.file(uploaded), baseFormat: uploaded.format });
  }
  if (req.cdrom) {
    const iso = images.usable(req.cdrom, caller, 'iso');
    spec.cdrom = { image: iso.name, file: images.file(iso) };
  }
  if (req.diskBytes !== undefined) Object.assign(spec, { blankDisk: true, diskBytes: req.diskBytes });
  if (req.firmware === 'uefi') {
    if (spec.kernel) throw new OrielError(400, 'firmware uefi boots from a disk or a CD-ROM: not with a kernel', 'bad_request');
    checkUefi();
    spec.firmware = 'uefi';
  }
  return { spec };
}

/** A linked clone: the template's device model, its disk as the base of the clone's overlay, its UEFI store copied;
 * the CD-ROM drive stays, empty (the template's medium may be another user's). */
function cloneSpec(req: VmRequest, dataDir: string, store: VmRecords, caller: Caller): ResolvedSpec {
  const t = store.byName(req.from!);
  if (!t) throw notFound(`no VM named '${req.from}'`);
  if (!caller.admin && t.ownerId !== caller.id) throw forbidden(`VM '${t.name}' belongs to another user`);
  if (!t.spec.template)
    throw conflict(`VM '${t.name}' is not a template: make it one with \`oriel vm template ${t.name}\` (it must be stopped)`);
  const p = vmPaths(dataDir, t.id);
  const spec: VmSpec = {
    ...t.spec,
    ...(req.memoryMiB !== undefined ? { memoryMiB: req.memoryMiB } : {}),
    ...(req.cpus !== undefined ? { cpus: req.cpus } : {}),
    ...(req.display ? { display: req.display } : {}),
    ...(req.accel ? { accel: req.accel } : {}),
    baseDisk: p.disk,
    baseFormat: 'qcow2',
    fromTemplate: { id: t.id, name: t.name },
    ...(t.spec.cdrom !== undefined ? { cdrom: null } : {}),
  };
  delete spec.template;
  delete spec.blankDisk;
  return { spec, ...(t.spec.firmware === 'uefi' ? { varsFrom: p.vars } : {}) };
}
