// Who may use a VM (its API, its console, its picture, its events): its owner, and admins.
import type { User } from '../../api/index.ts';
import type { VmRecord } from '../../vm/records.ts';

export const mayUseVm = (user: Pick<User, 'id' | 'role'>, vm: Pick<VmRecord, 'ownerId'>): boolean =>
  user.role === 'admin' || vm.ownerId === user.id;
