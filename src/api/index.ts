// The API contract: the zod schemas of every resource (one file each), their inferred types, and the typed client.
// The server's routes validate and document (OpenAPI) with the schemas; the web UI and the CLI use the client and
// the types. Importing this index loads zod: the web UI and the CLI import client.ts and `import type` the rest.
// A new resource: a file of its schemas here, a line below, its methods in client.ts.
export * from './auth.ts';
export * from './checkpoints.ts';
export * from './client.ts';
export * from './console.ts';
export * from './errors.ts';
export * from './events.ts';
export * from './images.ts';
export * from './operations.ts';
export * from './quotas.ts';
export * from './states.ts';
export * from './tokens.ts';
export * from './transport.ts';
export * from './users.ts';
export * from './vms.ts';
