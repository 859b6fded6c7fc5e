// Schema history. Append only: each entry upgrades the schema by one version (PRAGMA user_version).
export const migrations: string[] = [
  `
  CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
  );
  CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT
  );
  CREATE TABLE vms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    owner_id TEXT NOT NULL REFERENCES users(id),
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT,
    pid INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE TABLE operations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    vm_id TEXT,
    user_id TEXT,
    status TEXT NOT NULL,
    progress TEXT NOT NULL,
    error TEXT,
    log TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
  );
  CREATE INDEX operations_by_time ON operations(created_at);
  `,
  `
  CREATE TABLE checkpoint_schedules (
    vm_id TEXT PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
    every TEXT NOT NULL,
    rules TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_run_at TEXT,
    last_error TEXT
  );
  `,
  // API tokens expire. Tokens issued before this version get 90 days from the upgrade (the default lifetime).
  `
  ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
  UPDATE api_tokens SET expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+90 days');
  CREATE INDEX api_tokens_by_user ON api_tokens(user_id);
  `,
  `
  -- Per-user quotas (server/quotas): a row overrides the defaults (admins: unlimited; users: the configured
  -- default quota); NULL in a column is unlimited.
  CREATE TABLE user_quotas (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    vms INTEGER,
    memory_mib INTEGER,
    cpus INTEGER,
    disk_bytes INTEGER,
    checkpoint_bytes INTEGER,
    updated_at TEXT NOT NULL
  );
  `,
  `
  -- Virtual networks (server/networks, src/network): owned by a user; an admin may share one with everybody.
  CREATE TABLE networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    subnet TEXT NOT NULL,
    nat INTEGER NOT NULL DEFAULT 0,
    isolated INTEGER NOT NULL DEFAULT 0,
    shared INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
  );
  -- Each VM card's fixed DHCP lease; a network in use cannot be deleted (no cascade from networks).
  CREATE TABLE network_leases (
    vm_id TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    card INTEGER NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks(id),
    mac TEXT NOT NULL,
    ip TEXT NOT NULL,
    PRIMARY KEY (vm_id, card),
    UNIQUE (network_id, ip)
  );
  -- Host ports (on the host's loopback, through a --nat network's passt) that reach a guest's port.
  CREATE TABLE network_forwards (
    vm_id TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    card INTEGER NOT NULL,
    proto TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),
    host_port INTEGER NOT NULL,
    guest_port INTEGER NOT NULL,
    PRIMARY KEY (proto, host_port)
  );
  `,
  `
  -- Images users upload (vm/uploads): ISO install media and disk images, each its owner's alone. The file is
  -- <dataDir>/images/<id>/data; size_bytes (announced at creation) counts against the owner's disk quota.
  CREATE TABLE uploaded_images (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    owner_id TEXT NOT NULL REFERENCES users(id),
    state TEXT NOT NULL CHECK (state IN ('uploading', 'ready')),
    kind TEXT,
    format TEXT,
    size_bytes INTEGER NOT NULL,
    received_bytes INTEGER NOT NULL,
    virtual_size INTEGER,
    created_at TEXT NOT NULL
  );
  CREATE INDEX uploaded_images_by_owner ON uploaded_images(owner_id);
  `,
  `
  -- A schedule may send its checkpoints to an off-host store of its own (an s3:// URL; NULL: the server's).
  ALTER TABLE checkpoint_schedules ADD COLUMN store TEXT;
  `,
];
