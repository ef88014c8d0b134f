import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from '../helpers/test.js';
import * as assert from 'uvu/assert';

// The dependency rules of STYLE.md, read from the import lines of src/**/*.ts:
// protocol <- security <- transport <- transfer <- client, daemon <- cli; daemon and client never import each
// other; no cycles between files or between folders. Tests run from the repository root.

const ROOT = process.cwd();
const SRC = path.join(ROOT, 'src');

/** Every specifier a TypeScript source imports or re-exports, static or dynamic, type-only included. */
function importSpecifiers(source: string): string[] {
  const out: string[] = [];
  // `import x from '...'`, `import { a,\n b } from '...'`, `import type ...`, `export * from '...'`,
  // `import '...'`. Anchored at a line start so prose in comments does not count.
  const statement = /^[ \t]*(?:import|export)\b(?:[^;'"]*?\bfrom\s*)?\s*['"]([^'"\n]+)['"]/gm;
  const dynamic = /\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g;
  for (const re of [statement, dynamic]) {
    for (const m of source.matchAll(re)) out.push(m[1]!);
  }
  return out;
}

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listTs(full));
    else if (entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

interface Module {
  /** Path relative to the repository root, '/'-separated: src/transport/dial.ts */
  file: string;
  /** Resolved imports of our own files, relative like `file`. */
  local: string[];
  /** Everything else: node builtins and packages. */
  external: string[];
}

function rel(p: string): string {
  return path.relative(ROOT, p).split(path.sep).join('/');
}

function scan(): Map<string, Module> {
  const files = listTs(SRC);
  const known = new Set(files.map(rel));
  const modules = new Map<string, Module>();
  for (const full of files) {
    const file = rel(full);
    const mod: Module = { file, local: [], external: [] };
    for (const spec of importSpecifiers(readFileSync(full, 'utf8'))) {
      if (!spec.startsWith('.')) {
        mod.external.push(spec);
        continue;
      }
      // NodeNext: relative imports name the emitted .js file.
      const target = rel(path.resolve(path.dirname(full), spec)).replace(/\.js$/, '.ts');
      assert.ok(known.has(target), `${file} imports ${spec}, which is not a file under src/`);
      mod.local.push(target);
    }
    modules.set(file, mod);
  }
  return modules;
}

const MODULES = scan();

function layerOf(file: string): string {
  return file.split('/')[1] ?? '';
}

/** Returns one cycle as a list of files (first === last), or undefined. */
function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const WHITE = 0;
  const GREY = 1;
  const BLACK = 2;
  const color = new Map<string, number>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    color.set(node, GREY);
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const c = color.get(next) ?? WHITE;
      if (c === GREY) return [...stack.slice(stack.indexOf(next)), next];
      if (c === WHITE) {
        const found = visit(next);
        if (found !== undefined) return found;
      }
    }
    stack.pop();
    color.set(node, BLACK);
    return undefined;
  };
  for (const node of [...graph.keys()].sort()) {
    if ((color.get(node) ?? WHITE) !== WHITE) continue;
    const found = visit(node);
    if (found !== undefined) return found;
  }
  return undefined;
}

test('the import reader finds every form of import', () => {
  const source = [
    "import { a,\n  b } from './multi.js';",
    "import type { T } from '../types.js';",
    "import x from 'pkg';",
    'import * as ns from "node:fs";',
    "import './side-effect.js';",
    "export * from './re.js';",
    "export { y } from './named.js';",
    'export const z = 1;',
    "// import { no } from './comment.js';",
    "const m = await import('./dynamic.js');",
    "type Argv = import('yargs').Argv;",
    " * see import { c } from './doc.js' in the docs",
  ].join('\n');
  assert.equal(importSpecifiers(source).sort(), [
    '../types.js',
    './dynamic.js',
    './multi.js',
    './named.js',
    './re.js',
    './side-effect.js',
    'node:fs',
    'pkg',
    'yargs',
  ]);
});

test('the cycle finder finds cycles and accepts a DAG', () => {
  const dag = new Map([
    ['a', ['b', 'c']],
    ['b', ['c']],
    ['c', []],
  ]);
  assert.is(findCycle(dag), undefined);
  const cyclic = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['d', 'b']],
    ['d', []],
  ]);
  assert.equal(findCycle(cyclic), ['b', 'c', 'b']);
  assert.equal(findCycle(new Map([['self', ['self']]])), ['self', 'self']);
});

/**
 * Every folder of src/ and its floor: a file may import its own folder and folders on lower floors only, so
 * no two folders can import each other. A new folder fails here until it is given its floor.
 */
const FLOORS: Readonly<Record<string, number>> = {
  protocol: 0,
  // Keys, proofs, TLS contexts: what a transport needs to open an authenticated channel.
  security: 1,
  transport: 2,
  transfer: 3,
  client: 4,
  daemon: 4,
  cli: 5,
};

test('every folder of src/ has its floor, and imports only its own folder and lower floors', () => {
  for (const mod of MODULES.values()) {
    const from = layerOf(mod.file);
    assert.ok(FLOORS[from] !== undefined, `src/${from}/ is not in the layering table (${mod.file})`);
    for (const target of mod.local) {
      const to = layerOf(target);
      if (to === from) continue;
      assert.ok(
        FLOORS[to]! < FLOORS[from]!,
        `${mod.file} imports ${target}: src/${to}/ is not below src/${from}/`,
      );
    }
  }
});

test('the scan sees the whole source tree', () => {
  for (const layer of ['protocol', 'transfer', 'transport', 'security', 'daemon', 'client', 'cli']) {
    assert.ok(
      [...MODULES.keys()].some((f) => layerOf(f) === layer),
      `no file found in src/${layer}`,
    );
  }
  const index = MODULES.get('src/protocol/index.ts');
  assert.ok(index !== undefined && index.local.length >= 5, 'src/protocol/index.ts re-exports its modules');
});

test('src/protocol imports nothing of ours outside src/protocol, and no net, fs or child_process', () => {
  const forbidden = /^(node:)?(net|fs|fs\/promises|child_process|dgram|tls|http|https)$/;
  for (const mod of MODULES.values()) {
    if (layerOf(mod.file) !== 'protocol') continue;
    for (const target of mod.local) {
      assert.is(layerOf(target), 'protocol', `${mod.file} imports ${target}`);
    }
    for (const spec of mod.external) assert.not.match(spec, forbidden, `${mod.file} imports ${spec}`);
  }
});

test('src/daemon and src/client never import each other', () => {
  for (const mod of MODULES.values()) {
    const layer = layerOf(mod.file);
    for (const target of mod.local) {
      if (layer === 'daemon') assert.is.not(layerOf(target), 'client', `${mod.file} imports ${target}`);
      if (layer === 'client') assert.is.not(layerOf(target), 'daemon', `${mod.file} imports ${target}`);
    }
  }
});

test('src/transfer, src/transport and src/security never import src/daemon or src/client', () => {
  for (const mod of MODULES.values()) {
    if (!['transfer', 'transport', 'security'].includes(layerOf(mod.file))) continue;
    for (const target of mod.local) {
      assert.not.ok(['daemon', 'client'].includes(layerOf(target)), `${mod.file} imports ${target}`);
    }
  }
});

test('no import cycles among src files', () => {
  const graph = new Map([...MODULES.values()].map((m) => [m.file, m.local]));
  const cycle = findCycle(graph);
  assert.is(cycle, undefined, `import cycle: ${cycle?.join(' -> ')}`);
});

test.run();
