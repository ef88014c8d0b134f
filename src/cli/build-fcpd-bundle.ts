/**
 * `npm run bundle` runs this after esbuild: puts the rest of fcpd (dist/bin/fcpd-body.cjs) into the launcher
 * bundle (dist/bin/fcpd.js) as embedded-body.ts lays it out, and removes the separate file, so that the
 * daemon stays the one file the remote install ships. And it marks dist/bin as CommonJS: the launchers are
 * CommonJS bundles (embedded-body.ts crash() says why) under a package whose "type" is "module"; the copy
 * the remote install puts in ~/.cache/fcp has no package.json around it, and CommonJS is node's default.
 * Usage: node dist/src/cli/build-fcpd-bundle.js
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { embedBody } from './embedded-body.js';

/** dist/bin, from this file's place in dist/src/cli/. */
const BIN = fileURLToPath(new URL('../../bin/', import.meta.url));

const launcher = readFileSync(`${BIN}fcpd.js`, 'utf8');
const body = readFileSync(`${BIN}fcpd-body.cjs`, 'utf8');
writeFileSync(`${BIN}fcpd.js`, embedBody(launcher, body));
rmSync(`${BIN}fcpd-body.cjs`);
writeFileSync(`${BIN}package.json`, `${JSON.stringify({ type: 'commonjs' })}\n`);
