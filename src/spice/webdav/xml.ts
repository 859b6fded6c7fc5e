// The XML WebDAV answers (RFC 4918): PROPFIND's multistatus with the live properties clients use (davfs2 asks
// for resourcetype, getcontentlength, getlastmodified, getetag; gvfs and others for displayname, creationdate,
// getcontenttype), and LOCK's lockdiscovery.
import type { DavEntry, DavPath } from './fs.ts';
import { hrefOf } from './paths.ts';

export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function etagOf(e: DavEntry): string {
  return `"${e.size.toString(16)}-${Math.floor(e.mtimeMs).toString(16)}"`;
}

function response(path: DavPath, e: DavEntry): string {
  const dir = e.type === 'dir';
  const t = new Date(e.mtimeMs);
  const props = [
    `<D:resourcetype>${dir ? '<D:collection/>' : ''}</D:resourcetype>`,
    `<D:displayname>${xmlEscape(path.length ? path[path.length - 1]! : '')}</D:displayname>`,
    `<D:getlastmodified>${t.toUTCString()}</D:getlastmodified>`,
    `<D:creationdate>${t.toISOString().replace(/\.\d+Z$/, 'Z')}</D:creationdate>`,
    ...(dir
      ? []
      : [
          `<D:getcontentlength>${e.size}</D:getcontentlength>`,
          '<D:getcontenttype>application/octet-stream</D:getcontenttype>',
          `<D:getetag>${xmlEscape(etagOf(e))}</D:getetag>`,
        ]),
    '<D:supportedlock><D:lockentry><D:lockscope><D:exclusive/></D:lockscope>' +
      '<D:locktype><D:write/></D:locktype></D:lockentry></D:supportedlock>',
  ];
  return (
    `<D:response><D:href>${xmlEscape(hrefOf(path, dir))}</D:href><D:propstat><D:prop>${props.join('')}</D:prop>` +
    '<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>'
  );
}

export function multistatus(items: { path: DavPath; entry: DavEntry }[]): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">' +
    items.map((i) => response(i.path, i.entry)).join('') +
    '</D:multistatus>\n'
  );
}

export function lockDiscovery(token: string, path: DavPath, depth: string, timeoutS: number): string {
  return (
    '<?xml version="1.0" encoding="utf-8"?>\n<D:prop xmlns:D="DAV:"><D:lockdiscovery><D:activelock>' +
    '<D:locktype><D:write/></D:locktype><D:lockscope><D:exclusive/></D:lockscope>' +
    `<D:depth>${depth}</D:depth><D:timeout>Second-${timeoutS}</D:timeout>` +
    `<D:locktoken><D:href>${token}</D:href></D:locktoken>` +
    `<D:lockroot><D:href>${xmlEscape(hrefOf(path, false))}</D:href></D:lockroot>` +
    '</D:activelock></D:lockdiscovery></D:prop>\n'
  );
}
