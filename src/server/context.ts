// What route handlers share: the services behind the API.
import type { OrielConfig } from '../config.ts';
import type { Db } from '../db/database.ts';
import type { VmManager } from '../vm/manager.ts';
import type { Users } from './auth/users.ts';
import type { Operations } from './operations.ts';
import type { CheckpointService } from '../checkpoint/service.ts';
import type { CheckpointSchedules } from './checkpoint-jobs/schedules.ts';
import type { Quotas } from './quotas/quotas.ts';
import type { Networks } from './networks/networks.ts';
import type { Forwards } from './networks/forwards.ts';

export interface ServerContext {
  config: OrielConfig;
  db: Db;
  vms: VmManager;
  users: Users;
  ops: Operations;
  checkpoints: CheckpointService;
  schedules: CheckpointSchedules;
  quotas: Quotas;
  networks: Networks;
  forwards: Forwards;
}
