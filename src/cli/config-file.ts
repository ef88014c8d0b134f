/**
 * fcp's and fcpd's configuration files (README "Configuration"): TOML, one key per long option, parsed by
 * smol-toml. The client's file has top-level defaults and `[host."PATTERNS"]` sections; fcpd's is flat. A bad
 * file is one FcpError naming the file, the line and the key (exit 1). Reading the file: config-read.ts.
 */
import { join } from 'node:path';
import { parse, TomlDate, TomlError } from 'smol-toml';
import { FcpError } from '../protocol/errors.js';

/** The type a key's value must have: that of its option. `scalar` for an option declared without a type. */
export type OptionKind = 'number' | 'boolean' | 'string' | 'strings' | 'scalar';

/** What a file may set: the keys it may hold, and the options it may not, each with why. */
export interface ConfigSchema {
  kinds: ReadonlyMap<string, OptionKind>;
  refused: ReadonlyMap<string, string>;
  /**
   * For an option whose type says too little (`connections`: "auto" or 1..64), what it takes, e.g. "auto or
   * an integer from 1 to 64", and whether a value is one of those; a value that is not is refused here, at
   * its line, rather than later under the option's flag name.
   */
  values?: ReadonlyMap<string, ValueRule>;
}

export interface ValueRule {
  /** What the option takes, completing `"KEY" must be ...`. */
  readonly takes: string;
  readonly accepts: (value: unknown) => boolean;
}

/** One key set in a file, and where, for `--print-config`. */
export interface Setting {
  key: string;
  value: unknown;
  file: string;
  line: number;
  /** `host."*.lab"` for a host section; undefined at the top of the file. */
  section: string | undefined;
}

/** `[host."PATTERNS"]`: ssh `Host` patterns matched against the host as typed (config-hosts.ts). */
export interface HostSection {
  patterns: string;
  line: number;
  settings: Setting[];
}

export interface ConfigFile {
  file: string;
  defaults: Setting[];
  /** In file order: the first section that matches and sets a key wins it, as in ssh_config. */
  hosts: HostSection[];
}

/** The client's file: top-level defaults and `[host."PATTERNS"]` sections. */
export function parseClientConfig(
  file: string,
  text: string,
  schema: ConfigSchema,
  home: string,
): ConfigFile {
  const doc = parseToml(file, text);
  const lines = keyLines(text);
  const config: ConfigFile = { file, defaults: [], hosts: [] };
  const reader = { file, lines, schema, home };
  for (const [key, value] of Object.entries(doc)) {
    if (key !== 'host') {
      config.defaults.push(setting(reader, undefined, key, value));
      continue;
    }
    if (!isTable(value))
      throw bad(file, lines.get(sectionKey('', 'host')), 'host must be [host."PATTERNS"] sections');
    for (const [patterns, body] of Object.entries(value)) {
      const section = `host.${JSON.stringify(patterns)}`;
      const line = lines.get(sectionKey(section, '')) ?? 1;
      if (!isTable(body)) throw bad(file, line, `[${section}] must be a section of settings`);
      const settings = Object.entries(body).map(([k, v]) => setting(reader, section, k, v));
      config.hosts.push({ patterns, line, settings });
    }
  }
  // Object key order puts integer-like names ("10") first: file order is line order.
  config.hosts.sort((a, b) => a.line - b.line);
  return config;
}

/** fcpd's file: settings only, no sections. */
export function parseFlatConfig(file: string, text: string, schema: ConfigSchema, home: string): Setting[] {
  const doc = parseToml(file, text);
  const reader = { file, lines: keyLines(text), schema, home };
  return Object.entries(doc).map(([key, value]) => setting(reader, undefined, key, value));
}

function parseToml(file: string, text: string): Record<string, unknown> {
  try {
    return parse(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    // smol-toml's message is "Invalid TOML document: WHAT" and then a code block: keep WHAT.
    const what = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    throw bad(file, err.line, `${what} (column ${err.column})`);
  }
}

interface Reader {
  file: string;
  lines: ReadonlyMap<string, number>;
  schema: ConfigSchema;
  home: string;
}

function setting(r: Reader, section: string | undefined, key: string, value: unknown): Setting {
  const line = r.lines.get(sectionKey(section ?? '', key)) ?? r.lines.get(sectionKey(section ?? '', '')) ?? 1;
  const where = section === undefined ? '' : ` in [${section}]`;
  if (isTable(value)) throw bad(r.file, line, `unknown section [${key}]${where}`);
  const refusal = r.schema.refused.get(key);
  if (refusal !== undefined) throw bad(r.file, line, `"${key}" cannot be set in a config file: ${refusal}`);
  const kind = r.schema.kinds.get(key);
  if (kind === undefined) throw bad(r.file, line, `unknown key "${key}"${where}`);
  const rule = r.schema.values?.get(key);
  if (!fits(kind, value) || rule?.accepts(value) === false) {
    const takes = rule?.takes ?? KIND_NAMES[kind];
    throw bad(r.file, line, `"${key}"${where} must be ${takes}, not ${describe(value)}`);
  }
  return { key, value: expandHome(value, r.home), file: r.file, line, section };
}

const KIND_NAMES: Record<OptionKind, string> = {
  number: 'a number',
  boolean: 'true or false',
  string: 'a "string"',
  strings: 'a list of "strings"',
  scalar: 'a number, true/false or a "string"',
};

function fits(kind: OptionKind, value: unknown): boolean {
  switch (kind) {
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
    case 'strings':
      return Array.isArray(value) && value.every((v) => typeof v === 'string');
    case 'scalar':
      return ['number', 'boolean', 'string'].includes(typeof value);
  }
}

function describe(value: unknown): string {
  if (value instanceof TomlDate) return `a date (${value.toISOString()})`;
  if (Array.isArray(value)) return `a list (${JSON.stringify(value)})`;
  return `${typeof value === 'number' ? 'a number' : `a ${typeof value}`} (${JSON.stringify(value)})`;
}

/** `~/x` as the shell would have expanded it on the command line. */
function expandHome(value: unknown, home: string): unknown {
  if (typeof value === 'string' && (value === '~' || value.startsWith('~/')))
    return join(home, value.slice(1));
  return value;
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof TomlDate);
}

function bad(file: string, line: number | undefined, what: string): FcpError {
  return new FcpError('FCP_ERR_USAGE', `${file}:${line ?? 1}: ${what}`, { path: file });
}

function sectionKey(section: string, key: string): string {
  return `${section}\0${key}`;
}

const HEADER = /^\s*\[([^[\]]*(?:"[^"]*"[^[\]]*)*)\]\s*(?:#.*)?$/;
const KEY = /^\s*([A-Za-z0-9_-]+|"[^"\\]*")\s*=/;

/**
 * The line of each `[section]` header and each `key =` under it. smol-toml gives values, not positions; the
 * headers themselves are read by smol-toml too (each alone), so quoting follows TOML. A key on a line this scan
 * does not recognise (a dotted key, say) is reported at its section's line.
 */
function keyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  let section = '';
  text.split('\n').forEach((line, i) => {
    const header = HEADER.exec(line);
    if (header !== null) {
      section = headerName(header[1] ?? '');
      if (!lines.has(sectionKey(section, ''))) lines.set(sectionKey(section, ''), i + 1);
      const top = section.split('.')[0] ?? '';
      if (!lines.has(sectionKey('', top))) lines.set(sectionKey('', top), i + 1);
      return;
    }
    const key = KEY.exec(line)?.[1];
    if (key === undefined) return;
    const name = key.startsWith('"') ? key.slice(1, -1) : key;
    if (!lines.has(sectionKey(section, name))) lines.set(sectionKey(section, name), i + 1);
  });
  return lines;
}

/** `host."*.lab"` for the header `[ host . '*.lab' ]`: the names smol-toml reads, the inner ones quoted. */
function headerName(header: string): string {
  let path: string[] = [];
  try {
    let table: unknown = parse(`[${header}]`);
    while (isTable(table)) {
      const [name, inner] = Object.entries(table)[0] ?? [];
      if (name === undefined) break;
      path.push(name);
      table = inner;
    }
  } catch {
    // Not a header after all (a line inside a multi-line string); parseToml judges the document itself.
    path = [header];
  }
  const [top, ...rest] = path;
  return [top ?? '', ...rest.map((p) => JSON.stringify(p))].join('.');
}
