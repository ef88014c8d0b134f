// Real SSH keys and a real ssh-agent for the security unit tests: keys come from ssh-keygen in a temp dir,
// the agent is `ssh-agent -D -a SOCK` (killed by pid after), keys are loaded with ssh-add. Nothing touches
// the user's ~/.ssh or their own agent.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFileSync } from './sync.js';

export type TestKeyType = 'ed25519' | 'ecdsa-256' | 'ecdsa-384' | 'ecdsa-521' | 'rsa';

export interface TestKey {
  type: TestKeyType;
  /** The private key file. */
  path: string;
  /** The `.pub` line: `type base64 comment`. */
  publicLine: string;
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `fcp-${prefix}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** ssh-keygen -t TYPE; `passphrase` encrypts it; `pem` writes the legacy PEM format instead of openssh-key-v1. */
export async function generateKey(
  dir: string,
  type: TestKeyType,
  name: string,
  opts: { passphrase?: string; pem?: boolean } = {},
): Promise<TestKey> {
  const file = path.join(dir, name);
  const [t, bits] =
    type === 'rsa' ? ['rsa', '2048'] : type === 'ed25519' ? ['ed25519', undefined] : ['ecdsa', type.slice(6)];
  const args = ['-q', '-t', t!, '-N', opts.passphrase ?? '', '-C', `${name}@test`, '-f', file];
  if (bits !== undefined) args.push('-b', bits);
  if (opts.pem) args.push('-m', 'PEM');
  execFileSync('ssh-keygen', args, { stdio: 'ignore' });
  const publicLine = (await readFile(`${file}.pub`, 'utf8')).trim();
  return { type, path: file, publicLine };
}

/** `ssh-keygen -l -E sha256 -f FILE` -> the `SHA256:...` field. */
export function keygenFingerprint(file: string): string {
  const out = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', file], { encoding: 'utf8' });
  return out.split(/\s+/)[1]!;
}

export interface TestAgent {
  socket: string;
  add(keyPath: string): void;
  stop(): Promise<void>;
}

/** A private ssh-agent in the foreground (-D) on a socket in `dir`; `stop()` kills exactly that process. */
export async function startAgent(dir: string): Promise<TestAgent> {
  const socket = path.join(dir, 'agent.sock');
  const child: ChildProcess = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync(socket); i++) await sleep(20);
  if (!existsSync(socket)) {
    child.kill('SIGTERM');
    throw new Error('ssh-agent did not create its socket within 2 s');
  }
  return {
    socket,
    add(keyPath: string) {
      execFileSync('ssh-add', ['-q', keyPath], {
        env: { ...process.env, SSH_AUTH_SOCK: socket },
        stdio: 'ignore',
      });
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface ArmoredSshSig {
  publicKey: Buffer;
  namespace: string;
  hashAlgorithm: string;
  /** The signature blob: string algorithm, string signature. */
  signature: Buffer;
}

/** `ssh-keygen -Y sign -n NAMESPACE` over `message`, parsed out of its armor (PROTOCOL.sshsig §2). */
export async function keygenSign(
  dir: string,
  key: string,
  namespace: string,
  message: Buffer,
): Promise<ArmoredSshSig> {
  const file = path.join(dir, `msg-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  await writeFile(file, message);
  execFileSync('ssh-keygen', ['-q', '-Y', 'sign', '-f', key, '-n', namespace, file], { stdio: 'ignore' });
  const armored = await readFile(`${file}.sig`, 'utf8');
  const b64 = armored.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const raw = Buffer.from(b64, 'base64');
  let pos = 6 + 4; // "SSHSIG", u32 version
  const str = (): Buffer => {
    const len = raw.readUInt32BE(pos);
    const out = raw.subarray(pos + 4, pos + 4 + len);
    pos += 4 + len;
    return out;
  };
  const publicKey = str();
  const ns = str().toString();
  str(); // reserved
  const hashAlgorithm = str().toString();
  const signature = str();
  return { publicKey, namespace: ns, hashAlgorithm, signature };
}
