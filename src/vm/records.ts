// VM rows in SQLite. The row is the truth about a VM; the manager keeps it in step with QEMU.
import { randomBytes } from 'node:crypto';
import type { Db } from '../db/database.ts';
import type { VmSpec, VmState } from './spec.ts';

export interface VmRecord {
  id: string;
  name: string;
  ownerId: string;
  spec: VmSpec;
  state: VmState;
  /** Why the VM is in its state, when that is news: a crash with QEMU's last words, a failed start. */
  stateReason: string | null;
  pid: number | null;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  id: string; name: string; owner_id: string; spec: string; state: string; state_reason: string | null;
  pid: number | null; created_at: string; updated_at: string;
}

const fromRow = (r: Row): VmRecord => ({
  id: r.id, name: r.name, ownerId: r.owner_id, spec: JSON.parse(r.spec) as VmSpec, state: r.state as VmState,
  stateReason: r.state_reason, pid: r.pid, createdAt: r.created_at, updatedAt: r.updated_at,
});

export class VmRecords {
  constructor(private readonly db: Db) {}

  /** Short ids keep socket paths under the 108-byte unix limit. */
  newId(): string {
    return randomBytes(6).toString('hex');
  }

  insert(v: Pick<VmRecord, 'id' | 'name' | 'ownerId' | 'spec'>): VmRecord {
    const now = new Date().toISOString();
    this.db
      .prepare('INSERT INTO vms (id, name, owner_id, spec, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(v.id, v.name, v.ownerId, JSON.stringify(v.spec), 'stopped', now, now);
    return this.get(v.id)!;
  }

  get(id: string): VmRecord | undefined {
    const r = this.db.prepare('SELECT * FROM vms WHERE id = ?').get(id) as Row | undefined;
    return r && fromRow(r);
  }

  byName(name: string): VmRecord | undefined {
    const r = this.db.prepare('SELECT * FROM vms WHERE name = ?').get(name) as Row | undefined;
    return r && fromRow(r);
  }

  list(ownerId?: string): VmRecord[] {
    const rows = ownerId
      ? (this.db.prepare('SELECT * FROM vms WHERE owner_id = ? ORDER BY name').all(ownerId) as Row[])
      : (this.db.prepare('SELECT * FROM vms ORDER BY name').all() as Row[]);
    return rows.map(fromRow);
  }

  setState(id: string, state: VmState, reason: string | null, pid?: number | null): VmRecord {
    const now = new Date().toISOString();
    if (pid === undefined) {
      this.db
        .prepare('UPDATE vms SET state = ?, state_reason = ?, updated_at = ? WHERE id = ?')
        .run(state, reason, now, id);
    } else {
      this.db
        .prepare('UPDATE vms SET state = ?, state_reason = ?, pid = ?, updated_at = ? WHERE id = ?')
        .run(state, reason, pid, now, id);
    }
    return this.get(id)!;
  }

  /** Replaces a (stopped, or changed through QMP) VM's spec. */
  updateSpec(id: string, spec: VmSpec): VmRecord {
    this.db.prepare('UPDATE vms SET spec = ?, updated_at = ? WHERE id = ?')
      .run(JSON.stringify(spec), new Date().toISOString(), id);
    return this.get(id)!;
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM vms WHERE id = ?').run(id);
  }
}
