// Errors a person can act on. Each carries the HTTP status the API answers with; the CLI prints the message
// and exits non-zero. Anything else that escapes is a bug and is answered 500 without internals.
export class OrielError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
export const badRequest = (m: string) => new OrielError(400, m, 'bad_request');
export const unauthorized = (m = 'sign in first: no valid session cookie or API token') =>
  new OrielError(401, m, 'unauthorized');
export const forbidden = (m: string) => new OrielError(403, m, 'forbidden');
export const notFound = (m: string) => new OrielError(404, m, 'not_found');
export const conflict = (m: string) => new OrielError(409, m, 'conflict');
export const unprocessable = (m: string) => new OrielError(422, m, 'unprocessable');
/** The one answer for every refused host path: it tells nothing of whether the path exists or what it holds. */
export const pathRefused = () => new OrielError(400,
  'this path cannot be used: only an administrator may name a file on the host, a regular file inside a configured '
  + 'image folder (--images-dir), named .qcow2, .raw, .img or .iso', 'path_refused');
export const unavailable = (m: string) => new OrielError(503, m, 'unavailable');
