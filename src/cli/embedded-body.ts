/**
 * bin/fcpd.js is one file (the remote install ships and hash-checks one file, README "Works wherever ssh
 * works") holding two programs: the launcher (fcpd-launch.ts) and, in one block comment after it, the rest
 * of fcpd, both bundled as CommonJS. node compiles the launcher only: V8 skips a comment for a small
 * part of what compiling those 700 KB costs, so `fcpd --serve-once` writes its bootstrap line before the rest
 * is compiled. The launcher then reads its own file and runs the comment's text through node:vm.
 *
 * Inside the comment every `*` that would close it is followed by a \x01, which the body never holds (esbuild
 * writes control characters in strings as escapes; embedBody checks), and which the reader removes: one pass
 * over a few hundred places, where one `//` a line would cost a pass over 19,000 (~4 ms of CPU, pinned).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { type CacheableSource, compileCached } from './compile-cache.js';

/**
 * Ends the process as an error thrown at the top of a module does (the stack on stderr, exit 1): for the
 * launchers, which are CommonJS bundles so that node starts them without its ES module loader (~5 ms of
 * CPU before serve-once's line, measured pinned) and so cannot await at their top.
 */
export function crash(err: unknown): void {
  process.nextTick(() => {
    throw err;
  });
}

/** The line that opens the comment; never a line esbuild writes. */
const OPEN = '/* fcpd: the rest of the daemon, in a comment (cli/embedded-body.ts)\n';
const CLOSE = '*/\n';
const GUARD = '\x01';
/** The CommonJS wrapper node's own loader puts around a module. */
const WRAPPER_HEAD = '(function (exports, require, module, __filename, __dirname) {';

/** The launcher's text followed by `body` (a CommonJS bundle), as bin/fcpd.js holds them. */
export function embedBody(launcher: string, body: string): string {
  if (launcher.includes(`\n${OPEN}`)) throw new Error('the launcher already holds a body');
  if (body.includes(GUARD)) throw new Error('the body holds a \\x01, which its embedding reserves');
  const code = body.replace(/^#!.*\n/, '');
  return `${launcher.replace(/\n?$/, '\n')}${OPEN}${code.replaceAll('*/', `*${GUARD}/`)}${CLOSE}`;
}

/** What embedBody() put in `text`, and the number of its first line; undefined when it holds none. */
export function embeddedBody(text: string): { code: string; line: number } | undefined {
  const at = text.indexOf(`\n${OPEN}`);
  if (at < 0 || !text.endsWith(CLOSE)) return undefined;
  const start = at + 1 + OPEN.length;
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < start; i = text.indexOf('\n', i + 1)) line++;
  return { code: text.slice(start, text.length - CLOSE.length).replaceAll(GUARD, ''), line };
}

/** The launcher part of a text embedBody() made; undefined when it holds no body. */
export function launcherOf(text: string): string | undefined {
  const at = text.indexOf(`\n${OPEN}`);
  return at < 0 ? undefined : text.slice(0, at + 1);
}

/**
 * Runs a CommonJS body as node runs the module `file`, compiled with a code cache (compile-cache.ts) keyed
 * by `bytes`, the content of `file`; returns its exports.
 */
export function runBody(
  file: string,
  body: { code: string; line: number },
  cache: Pick<CacheableSource, 'bytes' | 'kind' | 'variant'>,
): unknown {
  const code = `${WRAPPER_HEAD}${body.code}\n})`;
  const script = compileCached({ file, code, lineOffset: body.line - 1, ...cache });
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  const module = { exports: {} as unknown };
  wrapper(module.exports, createRequire(file), module, file, path.dirname(file));
  return module.exports;
}
