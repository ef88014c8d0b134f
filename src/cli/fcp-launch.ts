#!/usr/bin/env node
/**
 * bin/fcp.js: starts the bootstrap ssh of `fcp --ssh push|pull` before anything else (early-ssh-args.ts,
 * client/early-bootstrap.ts), then runs fcp itself (bin/fcp-main.cjs, the CommonJS bundle of cli/fcp.ts).
 * Loading and compiling fcp and parsing its options take ~0.1 s of a run; the ssh login now happens
 * meanwhile. fcp is a CommonJS bundle run through node:vm, as the rest of fcpd is, for the code cache
 * (compile-cache.ts): node 20 caches the compile of neither an ES module nor a file it loads itself.
 * Kept small on purpose: everything it imports is compiled before the ssh can start.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dropEarlyBootstrap, startEarlyBootstrap } from '../client/early-bootstrap.js';
import { bundleName } from '../client/remote-install.js';
import { clientConfigPath } from './config-dir.js';
import { readDefaultConfigText } from './config-read.js';
import { configChangesSsh, earlyBootstrapArgv } from './early-ssh-args.js';
import { cacheVariant } from './compile-cache.js';
import { crash, runBody } from './embedded-body.js';

/** The main bundle, beside this one in bin/ (package.json's bundle script puts it there). */
const MAIN = new URL('./fcp-main.cjs', import.meta.url);
/** Where fcp is when this runs unbundled (dist/src/cli/fcp-launch.js): a name esbuild leaves alone. */
const UNBUNDLED = './fcp.js';

/** The name the remote cache gives the fcpd bundle beside this file, as findLocalBundle works it out. */
function localBundleName(): string | undefined {
  try {
    const data = readFileSync(new URL('./fcpd.js', import.meta.url));
    return bundleName(createHash('sha256').update(data).digest('hex'));
  } catch {
    return undefined; // no bundle here: the bootstrap then searches without one, and so does the guess
  }
}

/** fcp's config file sets what the guess cannot see (or cannot be read here): make no guess. */
function configInTheWay(): boolean {
  let text: string | undefined;
  try {
    // The same checks as fcp's own read (a FIFO or /dev/zero at the path must not hang the launcher).
    text = readDefaultConfigText(clientConfigPath());
  } catch {
    return true; // fcp itself then reports what is wrong with the file
  }
  return text !== undefined && configChangesSsh(text);
}

function startEarly(): void {
  try {
    const argv = earlyBootstrapArgv(process.argv.slice(2), localBundleName);
    if (argv === undefined || configInTheWay()) return;
    startEarlyBootstrap(argv);
    // fcp ending before the bootstrap took it (a usage error, say) ends it too: left alone, a login that
    // asks for a password would go on asking after fcp has gone. An adopted one is no longer ours to end.
    process.once('exit', dropEarlyBootstrap);
  } catch {
    // A guess that fails is no guess: fcp starts its own bootstrap as always.
  }
}

/** Runs fcp: the bundle beside this file, else (unbundled) the module. */
async function runMain(): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(MAIN);
  } catch {
    await import(UNBUNDLED);
    return;
  }
  // `//` for the bundle's `#!` line keeps the lines of stack traces the file's.
  const code = bytes.toString('utf8').replace(/^#!/, '//');
  const variant = cacheVariant(process.argv.slice(2), ['push', 'pull', 'status', 'cancel']);
  runBody(fileURLToPath(MAIN), { code, line: 1 }, { bytes, kind: 'fcp', variant });
}

startEarly();
// No top-level await: this bundle is CommonJS (embedded-body.ts, crash() says why).
runMain().catch(crash);
