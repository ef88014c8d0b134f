/**
 * Merges a config file into parsed arguments, generically over the options yargs was given: a key in the
 * file is a long option's name, typed as that option. Precedence: a flag on the command line, then the file
 * (for fcp, a matching host section before the top-level defaults), then the option's built-in default.
 * `--print-config` shows the result and where each value came from.
 */
import type { Argv } from 'yargs';
import { Parser } from 'yargs/helpers';
import type { ConfigSchema, OptionKind, Setting, ValueRule } from './config-file.js';

/** The part of yargs' `getOptions()` read here (yargs 17 has it at run time but not in its typings). */
export interface OptionTable {
  boolean: string[];
  number: string[];
  string: string[];
  array: string[];
  alias: Record<string, string[]>;
  key: Record<string, unknown>;
  default: Record<string, unknown>;
}

export function optionTable<T>(y: Argv<T>): OptionTable {
  return (y as Argv<T> & { getOptions(): OptionTable }).getOptions();
}

/** The options' long names: no one-letter aliases, no help or version. */
export function longOptions(table: OptionTable): string[] {
  const aliases = new Set(Object.values(table.alias).flat());
  return Object.keys(table.key).filter(
    (k) => k.length > 1 && !aliases.has(k) && k !== 'help' && k !== 'version',
  );
}

/**
 * What a file may set: every long option but the `refused` ones (each with the reason shown to the user)
 * and the `no-X` spellings of a boolean X, which a file writes `X = false`. `values` narrows what some keys
 * take beyond their type.
 */
export function configSchema(
  table: OptionTable,
  refused: ReadonlyMap<string, string>,
  values?: ReadonlyMap<string, ValueRule>,
): ConfigSchema {
  const kinds = new Map<string, OptionKind>();
  const refusedAll = new Map(refused);
  const names = longOptions(table);
  for (const name of names) {
    const positive = name.startsWith('no-') ? name.slice(3) : undefined;
    if (positive !== undefined && names.includes(positive)) {
      refusedAll.set(name, `write ${positive} = false`);
    } else if (!refused.has(name)) kinds.set(name, kindOf(table, name));
  }
  return { kinds, refused: refusedAll, values };
}

function kindOf(table: OptionTable, name: string): OptionKind {
  if (table.array.includes(name)) return 'strings';
  if (table.boolean.includes(name)) return 'boolean';
  if (table.number.includes(name)) return 'number';
  if (table.string.includes(name)) return 'string';
  return 'scalar';
}

/**
 * The long options given on the command line: what yargs' own parser finds in `tokens` when it knows the
 * options' types and aliases but none of their defaults.
 */
export function explicitOptions(tokens: readonly string[], table: OptionTable): Set<string> {
  const parsed = Parser([...tokens], {
    boolean: table.boolean,
    number: table.number,
    string: table.string,
    array: table.array,
    alias: table.alias,
    configuration: { 'camel-case-expansion': false },
  });
  const names = new Set(longOptions(table));
  return new Set(Object.keys(parsed).filter((k) => names.has(k)));
}

/** Where an effective value came from. */
export type Source = 'flag' | 'default' | Setting;

export interface Effective<T> {
  args: T;
  sources: Map<string, Source>;
}

/** `args` with each key not given as a flag taken from `settings` when the file sets it. */
export function applySettings<T extends object>(
  args: T,
  keys: readonly string[],
  explicit: ReadonlySet<string>,
  settings: ReadonlyMap<string, Setting>,
): Effective<T> {
  const merged: Record<string, unknown> = { ...(args as Record<string, unknown>) };
  const sources = new Map<string, Source>();
  for (const key of keys) {
    const setting = settings.get(key);
    if (explicit.has(key)) sources.set(key, 'flag');
    else if (setting === undefined) sources.set(key, 'default');
    else {
      merged[key] = setting.value;
      sources.set(key, setting);
    }
  }
  return { args: merged as T, sources };
}

/**
 * `--print-config`: one TOML line per key, so the output can be pasted into a file, and a comment naming the
 * source: `flag`, `FILE:LINE [section]` or `default`.
 */
export function formatSettings(effective: Effective<object>, header: string): string {
  const values = effective.args as Record<string, unknown>;
  const rows = [...effective.sources].map(([key, source]) => {
    const value = values[key];
    const text = value === undefined ? `# ${key} (not set)` : `${key} = ${JSON.stringify(value)}`;
    return [text, describeSource(source)] as const;
  });
  const width = Math.max(0, ...rows.map(([text]) => text.length));
  return [`# ${header}`, ...rows.map(([text, from]) => `${text.padEnd(width)}  # ${from}`)].join('\n') + '\n';
}

function describeSource(source: Source): string {
  if (typeof source === 'string') return source;
  const section = source.section === undefined ? '' : ` [${source.section}]`;
  return `${source.file}:${source.line}${section}`;
}
