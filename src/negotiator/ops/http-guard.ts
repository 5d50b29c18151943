/**
 * What a request to the metrics address may be, decided before anything is served (pure): its
 * request-target parsed without trusting it (origin-form or an http absolute-form; anything else
 * is a 400, never an exception), and, on a loopback listener, its Host a loopback name or address
 * (a browser led to the port by DNS rebinding sends the attacker's name).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { isLoopback } from '../daemon-config';

/** A request-target's path and query, once accepted. */
export interface RequestTarget {
  pathname: string;
  searchParams: URLSearchParams;
  /** The host of an absolute-form target (lowercase, IPv6 in brackets); undefined for origin-form. */
  host?: string;
}

// RFC 3986 path characters (pchar and "/"); the query may hold any visible ASCII but "#".
const ORIGIN_FORM = /^\/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*(?:\?[\x21-\x22\x24-\x7e]*)?$/;
const ABSOLUTE_FORM = /^http:\/\/[\x21-\x22\x24-\x7e]+$/i;

/** The path and query of a request-target; undefined when it is not an origin-form or http absolute-form target of sound syntax. */
export function parseRequestTarget(target: string): RequestTarget | undefined {
  if (ORIGIN_FORM.test(target)) {
    // The fixed authority keeps a target starting with "//" a path.
    const u = URL.parse(`http://localhost${target}`);
    return u ? { pathname: u.pathname, searchParams: u.searchParams } : undefined;
  }
  if (!ABSOLUTE_FORM.test(target)) return undefined;
  const u = URL.parse(target);
  if (u?.protocol !== 'http:' || u.username || u.password || !u.hostname || !ORIGIN_FORM.test(u.pathname + u.search)) return undefined;
  return { pathname: u.pathname, searchParams: u.searchParams, host: u.host };
}

/** True when a Host header (name or address, optional port) names this machine's loopback: localhost, *.localhost, 127/8, ::1. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  let name: string;
  let port: string;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return false;
    name = h.slice(1, end);
    port = h.slice(end + 1);
    if (!isIPv6(name) || !isLoopback(name)) return false;
  } else {
    const colon = h.indexOf(':');
    name = colon < 0 ? h : h.slice(0, colon);
    port = colon < 0 ? '' : h.slice(colon);
    const isName = name === 'localhost' || (/^[a-z0-9-]+(\.[a-z0-9-]+)*\.localhost$/.test(name) && name.length <= 253);
    if (!isName && !(isIPv4(name) && isLoopback(name))) return false;
  }
  return port === '' || /^:\d{1,5}$/.test(port);
}
