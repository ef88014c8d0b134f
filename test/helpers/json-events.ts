// The --json event schema as spec/EVENTS.md documents it, read from the document itself, and a checker
// for fcp's stdout against it: the doc is the schema, so a field that is not documented fails a test.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describeRun } from './cli.js';
import { startFcp } from './reliability.js';

type FieldType = 'integer' | 'number' | 'string' | 'boolean' | 'string[]';

interface FieldSpec {
  types: ReadonlyArray<FieldType | 'null'>;
  optional: boolean;
}

export type EventSchema = ReadonlyMap<string, ReadonlyMap<string, FieldSpec>>;

export type JsonEvent = Record<string, unknown> & { event: string };

const TABLE_ROW = /^\| `([a-z_]+)` \| ([a-z[\]]+(?: or null)?)(\?)? \|/;

/** Every event's fields, the common ones included, from the tables of spec/EVENTS.md. */
export function readEventSchema(): EventSchema {
  const text = readFileSync(path.join(process.cwd(), 'spec', 'EVENTS.md'), 'utf8');
  const common = new Map<string, FieldSpec>();
  const events = new Map<string, Map<string, FieldSpec>>();
  let current: Map<string, FieldSpec> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('## Fields common')) current = common;
    const heading = /^### ([a-z_]+)$/.exec(line);
    if (heading !== null) {
      current = new Map();
      events.set(heading[1]!, current);
    }
    const row = TABLE_ROW.exec(line);
    if (row === null || current === undefined) continue;
    const [type, orNull] = row[2]!.split(' or ');
    current.set(row[1]!, {
      types: orNull === undefined ? [type as FieldType] : [type as FieldType, 'null'],
      optional: row[3] === '?',
    });
  }
  for (const fields of events.values()) for (const [k, v] of common) fields.set(k, v);
  return events;
}

function typeOk(value: unknown, type: FieldType | 'null'): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'integer':
      return Number.isSafeInteger(value) && (value as number) >= 0;
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'string[]':
      return Array.isArray(value) && value.every((v) => typeof v === 'string');
    default:
      return typeof value === type;
  }
}

/** The problems of one parsed line against the schema; empty when it conforms. */
export function schemaProblems(schema: EventSchema, line: Record<string, unknown>): string[] {
  const fields = typeof line['event'] === 'string' ? schema.get(line['event']) : undefined;
  if (fields === undefined) return [`unknown event ${JSON.stringify(line['event'])}`];
  const problems: string[] = [];
  for (const [name, value] of Object.entries(line)) {
    const spec = fields.get(name);
    if (spec === undefined) problems.push(`undocumented field ${name}`);
    else if (!spec.types.some((t) => typeOk(value, t)))
      problems.push(`${name} is ${JSON.stringify(value)}, not ${spec.types.join(' or ')}`);
  }
  for (const [name, spec] of fields) {
    if (!spec.optional && !(name in line)) problems.push(`missing field ${name}`);
  }
  if (line['v'] !== 1) problems.push(`v is ${JSON.stringify(line['v'])}`);
  return problems;
}

/**
 * Parses fcp --json stdout: every line must be a JSON object conforming to the schema; throws naming the
 * first line that is not.
 */
export function parseEvents(schema: EventSchema, stdout: string): JsonEvent[] {
  const lines = stdout.split('\n');
  if (lines.pop() !== '') throw new Error(`stdout does not end with a newline:\n${stdout}`);
  return lines.map((line, i) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new Error(`stdout line ${i + 1} is not JSON: ${line}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error(`stdout line ${i + 1} is not an object: ${line}`);
    const problems = schemaProblems(schema, parsed as Record<string, unknown>);
    if (problems.length > 0) throw new Error(`stdout line ${i + 1}: ${problems.join('; ')}\n${line}`);
    return parsed as JsonEvent;
  });
}

/** The events named `name`. */
export function eventsNamed(events: readonly JsonEvent[], name: string): JsonEvent[] {
  return events.filter((e) => e.event === name);
}

/** The `file` events, by path. */
export function fileEvents(events: readonly JsonEvent[]): Map<string, JsonEvent> {
  return new Map(eventsNamed(events, 'file').map((e) => [String(e['path']), e]));
}

/**
 * Runs `fcp --json ARGS` to its end: every stdout line must conform to the schema and the last must be the
 * summary, carrying the exit code the process exited with.
 */
export async function runFcpJson(
  args: readonly string[],
  timeoutMs = 60_000,
): Promise<{ events: JsonEvent[]; code: number | null }> {
  const r = await startFcp(['--json', ...args], timeoutMs).done;
  let events: JsonEvent[];
  try {
    events = parseEvents(readEventSchema(), r.stdout);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${describeRun(r)}`, { cause: err });
  }
  const last = events.at(-1);
  if (last?.event !== 'summary' || last['exit_code'] !== r.code)
    throw new Error(`the last line is not the summary with the exit code:\n${describeRun(r)}`);
  return { events, code: r.code };
}
