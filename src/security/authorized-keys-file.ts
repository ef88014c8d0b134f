/**
 * The daemon's authorized_keys file on disk (spec/SECURITY.md §5.3): read with the served account's rights,
 * re-read when its mtime or size changes, at most 1 MiB, and refused, as sshd's StrictModes does, when the
 * file or its directory can be written by anyone but the account (or root).
 */
import { constants as fsConstants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type AuthorizedKeys, MAX_AUTHORIZED_KEYS_BYTES, parseAuthorizedKeys } from './authorized-keys.js';

const EMPTY: AuthorizedKeys = { entries: [], skipped: [] };

export class AuthorizedKeysFile {
  readonly path: string;
  readonly #uid: number;
  readonly #log: (line: string) => void;
  #cached: { stamp: string; keys: AuthorizedKeys } | undefined;

  /** `uid` is the served account: only it (or root) may own and write the file and its directory. */
  constructor(path: string, uid: number, log: (line: string) => void) {
    this.path = path;
    this.#uid = uid;
    this.#log = log;
  }

  /** The current entries; a missing, unsafe or unreadable file holds none (the reason is logged). */
  async load(): Promise<AuthorizedKeys> {
    try {
      return await this.#read();
    } catch (err) {
      this.#cached = undefined;
      const code = (err as NodeJS.ErrnoException).code;
      this.#log(
        code === 'ENOENT' ? `${this.path} does not exist: no SSH key is authorized` : (err as Error).message,
      );
      return EMPTY;
    }
  }

  async #read(): Promise<AuthorizedKeys> {
    await this.#checkOwner(dirname(this.path), await stat(dirname(this.path)));
    const handle = await open(
      this.path,
      fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK,
    );
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new Error(`${this.path} is not a regular file`);
      await this.#checkOwner(this.path, st);
      if (st.size > MAX_AUTHORIZED_KEYS_BYTES) throw new Error(`${this.path} is larger than 1 MiB`);
      const stamp = `${st.ino}:${st.mtimeMs}:${st.size}`;
      if (this.#cached?.stamp === stamp) return this.#cached.keys;
      const buf = Buffer.alloc(MAX_AUTHORIZED_KEYS_BYTES + 1);
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
      if (bytesRead > MAX_AUTHORIZED_KEYS_BYTES) throw new Error(`${this.path} is larger than 1 MiB`);
      const keys = parseAuthorizedKeys(buf.subarray(0, bytesRead).toString('utf8'));
      for (const line of keys.skipped) this.#log(`${this.path}: skipped ${line}`);
      this.#cached = { stamp, keys };
      return keys;
    } finally {
      await handle.close();
    }
  }

  /** sshd StrictModes: owned by the account or root, not writable by group or others. */
  async #checkOwner(path: string, st: { uid: number; mode: number }): Promise<void> {
    if (st.uid !== this.#uid && st.uid !== 0) {
      throw new Error(`${path} is owned by uid ${st.uid}, not by the served account: ignoring ${this.path}`);
    }
    if ((st.mode & 0o022) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new Error(`${path} has mode ${mode} (group or world writable): ignoring ${this.path}`);
    }
  }
}
