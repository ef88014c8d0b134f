// Lint rules for src/, test/ and bench/ (npm run lint). Formatting is prettier's job, not eslint's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.bench-data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  // Wire and terminal code matches control characters on purpose (NUL checks, ANSI escapes).
  { rules: { 'no-control-regex': 'off' } },
  {
    files: ['**/*.ts'],
    // Typed linting: the promise rules need the type checker (tsconfig.json covers src, test and bench).
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A promise nobody awaits loses its rejection (an unhandled rejection ends the process) or races
      // the code after it; await it, handle it, or `void` it with a comment saying why that is safe.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Unused function arguments are sometimes part of an interface; prefix them with _.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always'],
      'no-var': 'error',
      'prefer-const': 'error',
    },
  },
  {
    // Tests take test/suite from test/helpers/test.ts, which adds the per-test timeout (a hang fails in
    // seconds, not at test/run.js's 30-minute limit), and execFileSync/spawnSync from test/helpers/sync.ts,
    // which adds a time limit to a call that blocks the thread (no per-test timeout can fire during it); only
    // those two files wrap the originals.
    files: ['test/**/*.ts'],
    ignores: ['test/helpers/test.ts', 'test/helpers/sync.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'uvu',
              importNames: ['test', 'suite'],
              message: 'import test/suite from test/helpers/test.ts: it adds the per-test timeout.',
            },
            {
              name: 'node:child_process',
              importNames: ['execFileSync', 'spawnSync', 'execSync'],
              message: 'import execFileSync/spawnSync from test/helpers/sync.ts: a blocking call needs a time limit.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
      },
    },
  },
);
