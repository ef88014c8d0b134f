import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';
import {
  codeFromWire,
  describeCode,
  AREAS,
  ERRNO_CODES,
  ERROR_CODES,
  errorArea,
  type ErrorCode,
  exitClassOf,
  FcpError,
  isErrorCode,
  isFatalCode,
  isFcpCode,
  SOCKET_CODES,
  toFcpError,
  wireCodeOf,
} from '../../src/protocol/errors.js';
import { EXIT, exitCodeFor, exitCodesMarkdown } from '../../src/cli/exit-codes.js';

// The error code table (src/protocol/error-codes.ts) and its documentation (spec/ERRORS.md) must list the same
// codes with the same wire numbers, kinds and exit statuses. Tests run from the repository root.

const SPEC_PATH = path.join(process.cwd(), 'spec', 'ERRORS.md');
const SPEC = readFileSync(SPEC_PATH, 'utf8');

interface DocRow {
  code: string;
  wire: number;
  kind: string;
  exit: number;
  line: number;
}

/** Rows of the code tables: | `CODE` | 0xNNNN | fatal or per-file | exit | meaning | what to do | */
function parseCodeRows(markdown: string): DocRow[] {
  const rows: DocRow[] = [];
  markdown.split('\n').forEach((text, i) => {
    if (!text.startsWith('|')) return;
    const cells = text
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    const code = /^`([A-Z][A-Z0-9_]*)`$/.exec(cells[0] ?? '')?.[1];
    const wire = /^0x([0-9a-f]{4})$/i.exec(cells[1] ?? '')?.[1];
    if (code === undefined || wire === undefined) return;
    assert.is(cells.length, 6, `spec/ERRORS.md line ${i + 1}: six cells`);
    rows.push({
      code,
      wire: Number.parseInt(wire, 16),
      kind: cells[2]!,
      exit: Number(cells[3]),
      line: i + 1,
    });
  });
  return rows;
}

const ROWS = parseCodeRows(SPEC);
const ALL_CODES: ReadonlyArray<[ErrorCode, number]> = Object.entries({ ...ERROR_CODES, ...ERRNO_CODES }).map(
  ([code, info]) => [code as ErrorCode, info.wire],
);

test('spec/ERRORS.md: the parser finds the tables', () => {
  assert.ok(ROWS.length >= 40, `only ${ROWS.length} rows found`);
});

test('spec/ERRORS.md lists every code with its wire number', () => {
  const documented = new Map(ROWS.map((r) => [r.code, r]));
  for (const [code, wire] of ALL_CODES) {
    const row = documented.get(code);
    assert.ok(row !== undefined, `${code} is missing from spec/ERRORS.md`);
    if (row === undefined) continue;
    assert.is(
      row.wire,
      wire,
      `${code}: spec/ERRORS.md line ${row.line} says 0x${row.wire.toString(16)}, the code 0x${wire.toString(16)}`,
    );
  }
});

test('spec/ERRORS.md names no code the table lacks, and none twice', () => {
  const known = new Set<string>(ALL_CODES.map(([code]) => code));
  const seen = new Set<string>();
  for (const row of ROWS) {
    assert.ok(known.has(row.code), `spec/ERRORS.md line ${row.line}: ${row.code} is not a code`);
    assert.not.ok(seen.has(row.code), `spec/ERRORS.md line ${row.line}: ${row.code} listed twice`);
    seen.add(row.code);
  }
});

test('spec/ERRORS.md gives each code its fatal/per-file kind and exit status', () => {
  for (const row of ROWS) {
    if (!isErrorCode(row.code)) {
      assert.unreachable(`${row.code} (line ${row.line}) is not a code`);
      continue;
    }
    const kind = isFatalCode(row.code) ? 'fatal' : 'per-file';
    assert.is(row.kind, kind, `${row.code} (line ${row.line})`);
    assert.is(row.exit, exitCodeFor(new FcpError(row.code)), `${row.code} exit (line ${row.line})`);
  }
});

test('spec/ERRORS.md holds the exit code table exactly as exit-codes.ts renders it', () => {
  assert.ok(SPEC.includes(exitCodesMarkdown()), 'the exit code table differs from exitCodesMarkdown()');
  for (const [name, code] of Object.entries(EXIT)) {
    assert.match(SPEC, new RegExp(`^\\| ${code} \\| ${name} \\|`, 'm'), name);
  }
});

test('wire numbers are unique, non-zero u16s, and area-prefixed', () => {
  const byWire = new Map<number, string>();
  for (const [code, wire] of ALL_CODES) {
    assert.ok(Number.isInteger(wire) && wire > 0 && wire <= 0xffff, `${code}: 0x${wire.toString(16)}`);
    const other = byWire.get(wire);
    assert.is(other, undefined, `${code} and ${other} share 0x${wire.toString(16)}`);
    byWire.set(wire, code);
  }
  // The high byte is the area (spec/ERRORS.md, "Wire numbers"), and the name says it too.
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    assert.match(code, /^FCP_ERR_[A-Z]+(_[A-Z]+)*$/, code);
    const area = code.split('_')[2]!;
    assert.is(info.wire >> 8, AREAS[area as keyof typeof AREAS], `${code}: area ${area}`);
    assert.is(errorArea(code as ErrorCode), area, code);
  }
  for (const [code, info] of Object.entries(ERRNO_CODES)) {
    assert.match(code, /^E[A-Z0-9]+$/, code);
    assert.is(info.wire >> 8, AREAS.ERRNO, `${code} is in the errno area`);
    assert.is(errorArea(code as ErrorCode), 'ERRNO', code);
  }
});

test('codeFromWire(wireCodeOf(c)) === c for every code; unknown numbers are FCP_ERR_INTERNAL', () => {
  for (const [code, wire] of ALL_CODES) {
    assert.is(wireCodeOf(code), wire, code);
    assert.is(codeFromWire(wireCodeOf(code)), code, code);
    assert.is(new FcpError(code).wireCode, wire, `${code} wireCode`);
  }
  for (const wire of [0, 0x0100, 0x01ff, 0x0fff, 0xffff]) assert.is(codeFromWire(wire), 'FCP_ERR_INTERNAL');
  // A name that got past the closed type (a cast, a peer's JSON) still has a number: FCP_ERR_INTERNAL's.
  assert.is(wireCodeOf('ECONNRESET' as ErrorCode), ERROR_CODES.FCP_ERR_INTERNAL.wire);
  assert.is(wireCodeOf('nonsense' as ErrorCode), ERROR_CODES.FCP_ERR_INTERNAL.wire);
});

test('names on Object.prototype are not codes', () => {
  for (const name of ['toString', 'constructor', 'hasOwnProperty', '__proto__', 'valueOf']) {
    assert.not.ok(isFcpCode(name), name);
    assert.not.ok(isErrorCode(name), name);
    assert.is(exitClassOf(name), undefined, name);
    assert.is(wireCodeOf(name as ErrorCode), ERROR_CODES.FCP_ERR_INTERNAL.wire, `wireCodeOf(${name})`);
    assert.is(toFcpError(Object.assign(new Error('x'), { code: name })).code, 'FCP_ERR_INTERNAL', name);
  }
});

test('FcpError: code, default message, fatality from the table, override, path, cause', () => {
  const e = new FcpError('FCP_ERR_PROTO_MALFORMED');
  assert.instance(e, Error);
  assert.is(e.name, 'FcpError');
  assert.is(e.code, 'FCP_ERR_PROTO_MALFORMED');
  assert.is(e.message, ERROR_CODES.FCP_ERR_PROTO_MALFORMED.text);
  assert.is(e.fatal, true);
  assert.is(e.path, undefined);

  const cause = new Error('inner');
  const p = new FcpError('FCP_ERR_PATH_UNSAFE', 'nope', { path: 'a/../b', cause, fatal: true });
  assert.is(p.message, 'nope');
  assert.is(p.fatal, true);
  assert.is(new FcpError('FCP_ERR_PATH_UNSAFE').fatal, false);
  assert.is(p.path, 'a/../b');
  assert.is(p.cause, cause);

  const errno = new FcpError('ENOSPC');
  assert.is(errno.fatal, false);
  // Said in words (issue 15): a FAIL answer from the wire carries only the code.
  assert.is(errno.message, 'no space left on device');
  assert.is(describeCode('FCP_ERR_USAGE'), ERROR_CODES.FCP_ERR_USAGE.text);
});

test('the code type is closed: a typo or an unknown errno does not compile', () => {
  // Checked by tsc, not at run time: each line below must stay a type error (or the build fails).
  const typos = [
    // @ts-expect-error a misspelt code
    () => new FcpError('FCP_ERR_FILE_CHEKSUM'),
    // @ts-expect-error an errno that has no row: use toFcpError, which maps it to FCP_ERR_INTERNAL
    () => new FcpError('ENOTSUP'),
    // @ts-expect-error a socket error name is no FcpError code
    () => new FcpError('ECONNRESET'),
  ];
  assert.is(typos.length, 3);
});

test('toFcpError keeps an FcpError as it is', () => {
  const e = new FcpError('FCP_ERR_FILE_CHANGED', 'changed', { path: 'x' });
  assert.is(toFcpError(e), e);
  assert.is(toFcpError(e, 'other'), e);
});

test('toFcpError keeps errno names of real fs errors, with path and cause', () => {
  let thrown: unknown;
  try {
    readFileSync(path.join(process.cwd(), 'no-such-dir-fcp-test', 'f'));
  } catch (err) {
    thrown = err;
  }
  const e = toFcpError(thrown, 'no-such-dir-fcp-test/f');
  assert.is(e.code, 'ENOENT');
  assert.is(e.message, 'no such file or directory');
  assert.is(e.path, 'no-such-dir-fcp-test/f');
  assert.is(e.cause, thrown);
  assert.is(e.fatal, false);
  assert.is(e.wireCode, ERRNO_CODES.ENOENT.wire);
});

test('toFcpError keeps every errno name that has a wire number, and FCP codes', () => {
  for (const code of [...Object.keys(ERRNO_CODES), 'FCP_ERR_PATH_SYMLINK']) {
    const raw = Object.assign(new Error(`raw ${code}`), { code });
    const e = toFcpError(raw);
    assert.is(e.code, code);
    assert.ok(e.message.length > 0, code);
    assert.is(e.cause, raw);
  }
  // An errno without a fixed text keeps the original message.
  assert.is(
    toFcpError(Object.assign(new Error('too many open files'), { code: 'EMFILE' })).message,
    'too many open files',
  );
});

test('socket codes have an exit status but are no FcpError code; each table names its codes once', () => {
  for (const code of Object.keys(SOCKET_CODES)) {
    assert.not.ok(isErrorCode(code), code);
    assert.ok(exitClassOf(code) !== undefined, code);
    assert.is(toFcpError(Object.assign(new Error(code), { code })).code, 'FCP_ERR_INTERNAL', code);
    const row = new RegExp(`^\\| \`${code}\` \\| — \\| — \\| (\\d+) \\|`, 'm').exec(SPEC);
    assert.ok(row !== null, `${code} is missing from spec/ERRORS.md`);
    assert.is(Number(row?.[1]), exitCodeFor(Object.assign(new Error(code), { code })), `${code} exit`);
  }
  // An unknown errno is the documented catch-all: FCP_ERR_INTERNAL with the OS's words and the cause.
  const unknown = Object.assign(new Error('ENOTSUP: operation not supported'), { code: 'ENOTSUP' });
  const e = toFcpError(unknown, 'x');
  assert.is(e.code, 'FCP_ERR_INTERNAL');
  assert.is(e.message, unknown.message);
  assert.is(e.cause, unknown);
});

test('toFcpError wraps everything else as FCP_ERR_INTERNAL', () => {
  const plain = new Error('boom');
  const cases: Array<[unknown, string]> = [
    [plain, 'boom'],
    [Object.assign(new Error('reset'), { code: 'ECONNRESET' }), 'reset'],
    [Object.assign(new Error('numeric'), { code: 42 }), 'numeric'],
    ['a string', 'a string'],
    [undefined, 'undefined'],
    [null, 'null'],
    [{ code: 'EWHATEVER' }, '[object Object]'],
  ];
  for (const [thrown, message] of cases) {
    const e = toFcpError(thrown, 'p');
    assert.instance(e, FcpError);
    assert.is(e.code, 'FCP_ERR_INTERNAL', String(message));
    assert.is(e.message, message);
    assert.is(e.path, 'p');
    assert.is(e.cause, thrown);
    assert.is(e.fatal, true);
  }
});

test.run();
