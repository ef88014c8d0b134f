/** A throwaway fcpd child on 127.0.0.1 and a free port, for the demo and the bench scripts. */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { FCP_DAEMON_JS } from './fcp.js';

export interface LocalDaemon {
  child: ChildProcess;
  port: number;
}

/** Starts `fcpd --port 0 --bind 127.0.0.1 --root ROOT` and resolves once it prints its port. */
export function startLocalDaemon(root: string, env: NodeJS.ProcessEnv = process.env): Promise<LocalDaemon> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [FCP_DAEMON_JS, '--port', '0', '--bind', '127.0.0.1', '--root', path.resolve(root)],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
        env,
      },
    );
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('fcpd did not start within 10 s'));
    }, 10_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on [^\s]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fcpd exited with ${code}`));
    });
  });
}
