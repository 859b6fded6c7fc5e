// The little of s3rver (a local S3 server, devDependency) the tests use; it ships no types.
declare module 's3rver' {
  export default class S3rver {
    constructor(opts: { port?: number; address?: string; directory: string; silent?: boolean });
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }
}
