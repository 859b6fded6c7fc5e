// Request targets and Destination headers to paths below the share's root. Percent-decoding happens once, per name:
// a name that decodes to "..", ".", or to something holding "/", "\" or NUL is refused (never reinterpreted), as is
// malformed encoding. Only the path of an absolute URL counts (its host is the guest's 127.0.0.1:9843).
import { decodeUtf8, encodeUtf8 } from '../proto/utf8.ts';
import type { DavPath } from './fs.ts';
import { HttpError } from './http.ts';

export function parseTarget(target: string): DavPath {
  let p = target;
  const abs = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(p);
  if (abs) p = p.slice(abs[0].length) || '/';
  if (!p.startsWith('/')) throw new HttpError(400, 'the request target is not a path');
  p = p.replace(/[?#].*$/s, '');
  const out: string[] = [];
  for (const raw of p.split('/')) {
    if (raw === '') continue;
    const name = decodeName(raw);
    if (name === '.' || name === '..' || /[/\\\0]/.test(name) || name.length > 255)
      throw new HttpError(403, `refused path name '${raw}'`);
    out.push(name);
  }
  return out;
}

function decodeName(raw: string): string {
  if (/%(?![0-9a-fA-F]{2})/.test(raw)) throw new HttpError(400, `malformed percent-encoding in '${raw}'`);
  if (/%00|\0/.test(raw)) throw new HttpError(403, `refused path name '${raw}'`);
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; ) {
    if (raw[i] === '%') {
      bytes.push(parseInt(raw.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      const cp = raw.codePointAt(i)!;
      bytes.push(...encodeUtf8(String.fromCodePoint(cp)));
      i += cp > 0xffff ? 2 : 1;
    }
  }
  const s = decodeUtf8(Uint8Array.from(bytes));
  if (s.includes('\uFFFD')) throw new HttpError(400, `'${raw}' is not UTF-8`);
  return s;
}

/** The href of a path for a multistatus answer (each name percent-encoded; folders end with "/"). */
export function hrefOf(path: DavPath, dir: boolean): string {
  const h = '/' + path.map((n) => encodeName(n)).join('/');
  return dir && path.length ? `${h}/` : h;
}

function encodeName(n: string): string {
  let s = '';
  for (const b of encodeUtf8(n)) {
    const c = String.fromCharCode(b);
    s += /[A-Za-z0-9\-._~!$&'()*+,;=:@]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return s;
}

/** `inner` is `outer` or below it. */
export function isWithin(inner: DavPath, outer: DavPath): boolean {
  return outer.length <= inner.length && outer.every((n, i) => inner[i] === n);
}
