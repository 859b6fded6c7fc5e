// Which peers may speak for the client through X-Forwarded-For/-Host/-Proto (--trust-proxy, ORIEL_TRUST_PROXY):
// reverse proxies at the listed addresses or CIDRs, nobody else. With none listed the headers are ignored, so a
// client cannot pose as another address (the login throttle counts per address) or another host (origin checks).
import { BlockList, isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

export type ProxyTrust = (address: string | undefined) => boolean;

/** IPv4 clients of a dual-stack socket show as ::ffff:a.b.c.d: judged as the IPv4 address they are. */
function plain(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}

/** A predicate for the list (validated by configProblems); undefined when the list is empty. */
export function proxyTrust(list: string[]): ProxyTrust | undefined {
  if (!list.length) return undefined;
  const block = new BlockList();
  for (const entry of list) {
    const [addr, bits] = entry.split('/') as [string, string | undefined];
    const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) block.addAddress(plain(addr), type);
    else block.addSubnet(addr, Number(bits), type);
  }
  return (address) => {
    if (!address) return false;
    const a = plain(address);
    return block.check(a, isIP(a) === 6 ? 'ipv6' : 'ipv4');
  };
}

function lastEntry(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[v.length - 1] : v;
  return s?.split(',').pop()?.trim() || undefined;
}

/** The host a raw request (a WebSocket upgrade) was addressed to: X-Forwarded-Host only from a trusted proxy. */
export function requestHost(req: IncomingMessage, trust: ProxyTrust | undefined): string | undefined {
  const forwarded = lastEntry(req.headers['x-forwarded-host']);
  if (forwarded && trust?.(req.socket.remoteAddress)) return forwarded;
  return req.headers.host;
}
