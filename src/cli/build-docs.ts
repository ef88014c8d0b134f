/**
 * `npm run build` runs this after bundling: writes the man pages and completion scripts (docs.ts) into the
 * package root, where package.json's "man" and "files" name them. Usage: node dist/src/cli/build-docs.js
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedDocs } from './docs.js';

/** The package root: this file is dist/src/cli/build-docs.js. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

for (const [file, text] of generatedDocs(join(ROOT, 'dist/bin'))) {
  mkdirSync(dirname(join(ROOT, file)), { recursive: true });
  writeFileSync(join(ROOT, file), text);
}
