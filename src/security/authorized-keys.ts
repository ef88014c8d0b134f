/**
 * The daemon's authorized_keys: the sshd(8) AUTHORIZED_KEYS FILE FORMAT, and the policy fcp applies to each
 * line's options (spec/SECURITY.md §5.3). Options that restrict what an SSH key may do are honoured or make fcp
 * refuse the key; none can widen what fcp grants.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { isSupportedKeyType, parsePublicKeyBlob, type SshPublicKey } from './ssh-keys.js';

export interface KeyOption {
  /** Lower-cased name. */
  readonly name: string;
  /** The unquoted value of `name="value"`, undefined for a bare flag. */
  readonly value: string | undefined;
}

export interface AuthorizedKey {
  /** 1-based line number, for log messages. */
  readonly line: number;
  readonly options: readonly KeyOption[];
  readonly key: SshPublicKey;
  readonly comment: string;
}

export interface AuthorizedKeys {
  readonly entries: readonly AuthorizedKey[];
  /** One line per entry that was skipped (unsupported type, bad syntax), for the daemon's log. */
  readonly skipped: readonly string[];
}

/** Options that concern ssh features fcp does not offer (ptys, forwarding, ...): accepted and irrelevant. */
const IRRELEVANT_OPTIONS: ReadonlySet<string> = new Set([
  'agent-forwarding',
  'environment',
  'no-agent-forwarding',
  'no-port-forwarding',
  'no-pty',
  'no-user-rc',
  'no-x11-forwarding',
  'permitlisten',
  'permitopen',
  'port-forwarding',
  'pty',
  'restrict',
  'tunnel',
  'user-rc',
  'x11-forwarding',
  'no-touch-required',
  'verify-required',
]);

/** An authorized_keys file is a few KiB; anything near this is not one. */
export const MAX_AUTHORIZED_KEYS_BYTES = 1 << 20;

/** Parses the file's text; bad lines are skipped and reported, never fatal (sshd does the same). */
export function parseAuthorizedKeys(text: string): AuthorizedKeys {
  const entries: AuthorizedKey[] = [];
  const skipped: string[] = [];
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      entries.push(parseLine(line, i + 1));
    } catch (err) {
      skipped.push(`line ${i + 1}: ${(err as Error).message}`);
    }
  }
  return { entries, skipped };
}

function parseLine(line: string, lineNo: number): AuthorizedKey {
  let options: KeyOption[] = [];
  let rest = line;
  const first = /^\S+/.exec(line)![0];
  if (!looksLikeKeyType(first)) {
    const parsed = parseOptions(line);
    options = parsed.options;
    rest = line.slice(parsed.end).trimStart();
  }
  const m = /^(\S+)\s+([A-Za-z0-9+/=]+)(?:\s+(.*))?$/.exec(rest);
  if (m === null) throw new Error('no key type and base64 key');
  const type = m[1]!;
  if (!isSupportedKeyType(type)) throw new Error(`unsupported key type ${type}`);
  const key = parsePublicKeyBlob(Buffer.from(m[2]!, 'base64'));
  if (key.type !== type) throw new Error(`key type ${type} does not match its blob (${key.type})`);
  return { line: lineNo, options, key, comment: m[3] ?? '' };
}

function looksLikeKeyType(word: string): boolean {
  return /^(ssh-|ecdsa-|sk-|rsa-)/.test(word) || isSupportedKeyType(word);
}

/** sshd's option syntax: comma-separated `name` or `name="value"`, `\"` escapes a quote; ends at whitespace. */
function parseOptions(line: string): { options: KeyOption[]; end: number } {
  const options: KeyOption[] = [];
  let i = 0;
  for (;;) {
    const nameMatch = /^[A-Za-z0-9-]+/.exec(line.slice(i));
    if (nameMatch === null) throw new Error('bad option syntax');
    const name = nameMatch[0].toLowerCase();
    i += nameMatch[0].length;
    let value: string | undefined;
    if (line[i] === '=') {
      if (line[i + 1] !== '"') throw new Error(`option ${name}: value must be quoted`);
      i += 2;
      let v = '';
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && line[i + 1] === '"') i++;
        v += line[i];
        i++;
      }
      if (i >= line.length) throw new Error(`option ${name}: missing closing quote`);
      i++;
      value = v;
    }
    options.push({ name, value });
    if (line[i] === ',') {
      i++;
      continue;
    }
    if (i < line.length && !/\s/.test(line[i]!)) throw new Error('bad option syntax');
    return { options, end: i };
  }
}

export interface KeyCheckContext {
  /** The client's address as the socket reports it (an IPv4-mapped IPv6 address is read as IPv4). */
  readonly remoteAddress: string;
  readonly nowMs: number;
}

export type KeyDecision = { ok: true; entry: AuthorizedKey } | { ok: false; reason: string };

/**
 * Finds `blob` among the entries and applies the line's options. The first line holding the key decides,
 * as in sshd. Returns why the key is refused, for the daemon's log (never for the client).
 */
export function checkAuthorizedKey(
  keys: AuthorizedKeys,
  blob: Uint8Array,
  ctx: KeyCheckContext,
): KeyDecision {
  const entry = keys.entries.find((e) => e.key.blob.equals(blob));
  if (entry === undefined) return { ok: false, reason: 'key not in authorized_keys' };
  for (const opt of entry.options) {
    const why = optionRefuses(opt, ctx);
    if (why !== undefined) return { ok: false, reason: `authorized_keys line ${entry.line}: ${why}` };
  }
  return { ok: true, entry };
}

function optionRefuses(opt: KeyOption, ctx: KeyCheckContext): string | undefined {
  if (IRRELEVANT_OPTIONS.has(opt.name)) return undefined;
  switch (opt.name) {
    case 'from':
      return opt.value !== undefined && matchFrom(opt.value, ctx.remoteAddress)
        ? undefined
        : `from="${opt.value ?? ''}" does not admit ${ctx.remoteAddress}`;
    case 'expiry-time': {
      const expiry = parseExpiry(opt.value ?? '');
      if (expiry === undefined) return `unreadable expiry-time="${opt.value ?? ''}"`;
      return ctx.nowMs < expiry ? undefined : 'key expired (expiry-time)';
    }
    case 'command':
      // The key is confined to one forced command; granting it file access would break that confinement.
      return 'key is restricted to a forced command';
    case 'cert-authority':
    case 'principals':
      return 'certificate authorities are not supported';
    default:
      // sshd refuses a line with an option it does not know; so does fcp.
      return `unknown option ${opt.name}`;
  }
}

/**
 * sshd's `from="pattern-list"` with UseDNS no (its default): patterns and CIDR blocks are matched against the
 * address only; a host name pattern never matches. A negated match refuses; otherwise one positive match admits.
 */
export function matchFrom(patternList: string, remoteAddress: string): boolean {
  const addr = normalizeAddress(remoteAddress);
  let admitted = false;
  for (const rawPattern of patternList.split(',')) {
    const negated = rawPattern.startsWith('!');
    const pattern = (negated ? rawPattern.slice(1) : rawPattern).trim();
    if (pattern === '') continue;
    const hit = pattern.includes('/') ? matchCidr(pattern, addr) : wildcardMatch(pattern.toLowerCase(), addr);
    if (hit === undefined) return false; // A malformed CIDR refuses the key, as sshd does.
    if (hit && negated) return false;
    if (hit) admitted = true;
  }
  return admitted;
}

function normalizeAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return (mapped ? mapped[1]! : address).toLowerCase();
}

function matchCidr(pattern: string, addr: string): boolean | undefined {
  const [net, bitsText] = pattern.split('/');
  const bits = Number(bitsText);
  const family = isIPv4(net ?? '') ? 'ipv4' : isIPv6(net ?? '') ? 'ipv6' : undefined;
  if (family === undefined || !Number.isInteger(bits) || bits < 0 || bits > (family === 'ipv4' ? 32 : 128)) {
    return undefined;
  }
  const addrFamily = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : undefined;
  if (addrFamily !== family) return false;
  const list = new BlockList();
  list.addSubnet(net!, bits, family);
  return list.check(addr, family);
}

/** sshd's match_pattern: `*` any run, `?` one character, the whole string. */
function wildcardMatch(pattern: string, text: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(text);
}

/** `YYYYMMDD[HHMM[SS]]`, local time unless it ends in Z (sshd(8) expiry-time). */
function parseExpiry(spec: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z?)$/.exec(spec);
  if (m === null) return undefined;
  const parts = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0));
  const [y, mo, d, h, mi, s] = parts as [number, number, number, number, number, number];
  return m[7] === 'Z' ? Date.UTC(y, mo - 1, d, h, mi, s) : new Date(y, mo - 1, d, h, mi, s).getTime();
}
