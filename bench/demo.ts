/**
 * `npm run demo`: the main job in one command. Starts a throwaway fcpd on a free loopback port with a temp
 * root, generates a small tree, pushes it, pulls it back, verifies both copies byte for byte (content, mode,
 * mtime, link targets), prints fcp's own summaries and removes everything. Nothing outside its temp
 * directory is read or written: the daemon's state (host key, token) and the client's home, known_hosts
 * and ssh config all live inside it, and no ssh-agent is asked.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalDaemon } from './local-daemon.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FCP = path.join(here, '../src/cli/fcp.js');

function makeTree(dir: string): number {
  let seed = 12345;
  const random = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed;
  };
  let files = 0;
  for (let d = 0; d < 10; d++) {
    const sub = path.join(dir, `dir ${d}`, 'nested');
    mkdirSync(sub, { recursive: true });
    for (let f = 0; f < 20; f++) {
      const size = 1 + (random() % 16384);
      const data = Buffer.alloc(size);
      for (let i = 0; i < size; i++) data[i] = random() >>> 24;
      writeFileSync(path.join(sub, `file-${f}.dat`), data, { mode: f % 3 === 0 ? 0o600 : 0o644 });
      files++;
    }
  }
  const big = Buffer.alloc(24 * 1024 * 1024 + 7);
  for (let i = 0; i + 4 <= big.length; i += 4096) big.writeUInt32LE(random(), i);
  writeFileSync(path.join(dir, 'big.bin'), big);
  writeFileSync(path.join(dir, 'empty'), '');
  mkdirSync(path.join(dir, 'empty dir'));
  writeFileSync(path.join(dir, 'héllo wörld.txt'), 'unicode names round-trip\n');
  symlinkSync('big.bin', path.join(dir, 'link-to-big'));
  utimesSync(path.join(dir, 'big.bin'), 1_600_000_000.123456, 1_600_000_000.123456);
  return files + 4;
}

/** Entry-by-entry description: type, mode, mtime (µs), size and content hash or link target. */
function describe(root: string, rel = ''): string[] {
  const out: string[] = [];
  const abs = path.join(root, rel);
  const st = lstatSync(abs, { bigint: true });
  const mode = (Number(st.mode) & 0o7777).toString(8);
  if (st.isSymbolicLink()) out.push(`${rel} link ${readlinkSync(abs)}`);
  else if (st.isDirectory()) {
    if (rel !== '') out.push(`${rel} dir ${mode}`);
    for (const name of readdirSync(abs).sort()) out.push(...describe(root, path.join(rel, name)));
  } else {
    const hash = createHash('sha256').update(readFileSync(abs)).digest('hex').slice(0, 16);
    out.push(`${rel} file ${mode} ${st.mtimeNs / 1000n} ${st.size} ${hash}`);
  }
  return out;
}

/** The environment of the demo's fcpd and fcp: every place they look for state or config is under `work`. */
function privateEnv(work: string): NodeJS.ProcessEnv {
  const home = path.join(work, 'home');
  mkdirSync(home);
  return {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_STATE_HOME: path.join(home, '.local', 'state'),
    FCPD_STATE_DIR: path.join(work, 'fcpd-state'),
    FCP_CONFIG_DIR: path.join(work, 'fcp-config'),
    SSH_AUTH_SOCK: '',
  };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cmd, ...args], { stdio: ['ignore', 'inherit', 'inherit'], env });
    child.on('close', (code) => resolve(code ?? 1));
  });
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'fcp-demo-'));
  const src = path.join(work, 'data');
  const root = path.join(work, 'server-root');
  const back = path.join(work, 'pulled-back');
  mkdirSync(src);
  mkdirSync(root);
  const entries = makeTree(src);
  console.log(`demo: generated ${entries} entries in ${src}`);
  const env = privateEnv(work);
  // An empty ssh config, named: the user's ~/.ssh/config has no say in the demo.
  const sshConfig = path.join(work, 'ssh_config');
  writeFileSync(sshConfig, '');
  const fcp = (args: string[]) => run(FCP, ['-F', sshConfig, ...args], env);
  const { child, port } = await startLocalDaemon(root, env);
  console.log(`demo: fcpd listening on 127.0.0.1:${port}, root ${root}`);
  try {
    console.log(`$ fcp push ${src}/ 127.0.0.1:${port}:incoming`);
    if ((await fcp(['push', `${src}/`, `127.0.0.1:${port}:incoming`])) !== 0) throw new Error('push failed');
    console.log(`$ fcp push ${src}/ 127.0.0.1:${port}:incoming   (again: everything is up to date)`);
    if ((await fcp(['push', `${src}/`, `127.0.0.1:${port}:incoming`])) !== 0)
      throw new Error('re-push failed');
    console.log(`$ fcp pull 127.0.0.1:${port}:incoming/ ${back}`);
    if ((await fcp(['pull', `127.0.0.1:${port}:incoming/`, back])) !== 0) throw new Error('pull failed');
    const want = describe(src).join('\n');
    const pushed = describe(path.join(root, 'incoming')).join('\n');
    const pulled = describe(back).join('\n');
    if (pushed !== want) throw new Error('the pushed tree differs from the source');
    if (pulled !== want) throw new Error('the pulled tree differs from the source');
    console.log(
      `demo: verified ${entries} entries on both copies (content, modes, mtimes, link targets): OK`,
    );
  } finally {
    child.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`demo: ${err.message}`);
    process.exit(1);
  },
);
