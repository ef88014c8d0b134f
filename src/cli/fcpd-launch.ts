#!/usr/bin/env node
/**
 * bin/fcpd.js: for `fcpd --serve-once` in the form fcp sends over ssh, binds, makes the key and writes the
 * bootstrap line (fcpd-serve-once-open.ts) before the rest of fcpd is compiled and run; then, for every
 * command, runs the rest (fcpd.ts), which bin/fcpd.js carries commented out after this (embedded-body.ts).
 * The line is what the client waits for over the ssh round trip; the rest loads while it travels (README
 * "What it costs"). Kept small on purpose: everything it imports is compiled before the line can leave.
 */
// More threadpool workers than the default 4 keep small-file I/O (open/write/close/rename) overlapping.
// Set before anything here uses the pool (the run directory's mkdir).
process.env['UV_THREADPOOL_SIZE'] ??= '16';

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cacheVariant } from './compile-cache.js';
import { crash, embeddedBody, runBody } from './embedded-body.js';
import type { runFcpd } from './fcpd.js';
import { type EarlyServeOnce, openAndAnnounce, StopWiring } from './fcpd-serve-once-open.js';
import { quickOverSshArgs } from './fcpd-quick-args.js';

/** Where the rest is when this runs unbundled (dist/src/cli/fcpd-launch.js): a name esbuild leaves alone. */
const UNBUNDLED = './fcpd.js';

/**
 * The serve-once start, when the arguments are fcp's plain form; undefined when not, or when it failed: fcpd
 * then starts as it would without this launcher, and says what is wrong in its own words.
 */
async function startEarly(): Promise<EarlyServeOnce | undefined> {
  // As yargs' hideBin for plain node: argv[0] is node, argv[1] this file.
  const args = quickOverSshArgs(process.argv.slice(2));
  if (args?.['serve-once'] !== true) return undefined;
  const stopping = new StopWiring();
  try {
    return { stopping, opened: await openAndAnnounce({ ...args, port: args.port ?? 0 }, stopping) };
  } catch {
    // Nothing was announced: the full start binds and checks again and reports the failure.
    stopping.undo();
    return undefined;
  }
}

async function loadFcpd(): Promise<{ runFcpd: typeof runFcpd }> {
  const file = fileURLToPath(import.meta.url);
  const bytes = readFileSync(file);
  const body = embeddedBody(bytes.toString('utf8'));
  if (body === undefined) return (await import(UNBUNDLED)) as { runFcpd: typeof runFcpd };
  const variant = cacheVariant(process.argv.slice(2), ['--serve-once', '--stdio', 'stop', 'status']);
  return runBody(file, body, { bytes, kind: 'fcpd', variant }) as { runFcpd: typeof runFcpd };
}

// No top-level await: this bundle is CommonJS (embedded-body.ts, crash() says why).
startEarly()
  .then(async (early) => (await loadFcpd()).runFcpd(early))
  .catch(crash);
