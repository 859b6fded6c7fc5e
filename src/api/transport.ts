// How the client sends a request: any fetch-like function. The browser's and Node's fetch fit as they are; the CLI
// passes its own (node:https with a pinned certificate or a private CA). Written against these few structural types
// so this layer needs neither the DOM nor Node types.

export interface HttpRequest {
  method: string;
  headers: Record<string, string>;
  /** JSON text, or the bytes of an upload chunk. */
  body?: string | Uint8Array;
  /** Browsers: send the session cookie (same origin only). */
  credentials?: 'same-origin' | 'include' | 'omit';
}

export interface HttpResponse {
  status: number;
  statusText?: string;
  text(): Promise<string>;
}

/** `fetch`, or anything shaped like it. */
export type Transport = (url: string, init: HttpRequest) => Promise<HttpResponse>;

/** The global fetch (Node 20, browsers), looked up at each call and called on globalThis as browsers require. */
export const globalFetch: Transport = (url, init) =>
  (globalThis as unknown as { fetch: Transport }).fetch(url, init);

/** A refused request: the HTTP status, the server's message and its error code (errorSchema). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
    /** The answer's raw text when it was not JSON. */
    readonly text?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The answer's JSON, or its text when it is not JSON, or undefined when empty. */
export function parseBody(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The ApiError for a refused answer: the server's message when it sent one. */
export function refusal(method: string, path: string, res: HttpResponse, text: string): ApiError {
  const data = parseBody(text);
  const body = data && typeof data === 'object' ? (data as { message?: unknown; error?: unknown }) : {};
  const message = typeof body.message === 'string'
    ? body.message
    : typeof data === 'string' && data
      ? data
      : `${method} ${path}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  return new ApiError(res.status, message, typeof body.error === 'string' ? body.error : undefined,
    typeof data === 'string' ? data : undefined);
}
