/**
 * What fcp asks a remote login shell to run (README "Works wherever ssh works"): one POSIX sh script that
 * finds or installs fcpd, wrapped so that any login shell (sh, bash, zsh, fish, csh) hands it to `sh`
 * unchanged, and the words quoted inside it. ssh-command.ts puts these into ssh's argv.
 */
import { FcpError } from '../protocol/errors.js';

/** What the remote runs to start fcpd: the user's `--remote-fcpd` words, or fcp's own search. */
export type RemoteCommand =
  | { readonly kind: 'given'; readonly command: string }
  | { readonly kind: 'search'; readonly cachedName: string | undefined };

/** `--remote-fcpd CMD` when given, else the search (with the cached bundle's name when this fcp has one). */
export function remoteCommandFor(given: string | undefined, cachedName: string | undefined): RemoteCommand {
  return given === undefined ? { kind: 'search', cachedName } : { kind: 'given', command: given };
}

/** The first word of the line the remote prints when it has neither fcpd nor the cached bundle. */
export const NEED_INSTALL_TAG = 'FCPD-NEED-INSTALL';

/** Where the remote keeps the bundle fcp installed, under the login user's home. */
export const REMOTE_CACHE_DIR = '.cache/fcp';

/** What loginShellCommand refuses in a script: a line break, csh's `!`, and fish's escapes inside '...'. */
export const UNSAFE_IN_LOGIN_SHELL = /[\n\r!]|\\[\\']/;

/**
 * Quotes `text` as one word for sh, bash, zsh, fish and csh alike: single quotes, and each ' inside as
 * '"'"' (close, a double-quoted quote, reopen). No backslash: a word quoted here is often quoted again
 * (the remote script inside `sh -c '...'`), and fish reads \' inside single quotes as a quote, so the
 * '\'' form, quoted twice, came out unbalanced there.
 */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'"'"'`)}'`;
}

/**
 * The one word ssh hands to the login shell: `exec sh -c '<script>'`. The script must be one line (csh
 * refuses a newline inside quotes), and free of `\\` and `\'` (fish unescapes both inside '...') and `!`
 * (csh history).
 */
export function loginShellCommand(script: string): string {
  if (UNSAFE_IN_LOGIN_SHELL.test(script))
    throw new FcpError('FCP_ERR_INTERNAL', 'remote script not safe for every login shell');
  return `exec sh -c ${shellQuote(script)}`;
}

/**
 * The bundle's name in the remote cache: fcpd-VERSION-HASH16.cjs. The bundle is CommonJS, and `.cjs` says so
 * whatever package.json node finds above the cache (a `"type": "module"` in the login user's home made a
 * `.js` one an ES module there, and fcpd failed to start).
 */
export function cachedBundleName(version: string, hash16: string): string {
  return `fcpd-${version}-${hash16}.cjs`;
}

/**
 * The remote sh script that runs the first fcpd that exists with `tail` after it: `--remote-fcpd`, else
 * `fcpd` on PATH, else the cached bundle with node; else it prints NEED_INSTALL_TAG and node's version.
 * The data connections run the same script, so they find the same fcpd the bootstrap found.
 */
export function remoteFcpdScript(remote: RemoteCommand, tail: readonly string[]): string {
  const args = tail.map(shellQuote).join(' ');
  // --remote-fcpd is the user's own remote command line, run by the remote sh as rsync runs --rsync-path
  // (so `cd /srv && fcpd` works too: no exec in front of it).
  if (remote.kind === 'given') return `${remote.command} ${args}`;
  const steps = [`if command -v fcpd >/dev/null 2>&1; then exec fcpd ${args}; fi`];
  if (remote.cachedName !== undefined) {
    const cached = `"$HOME"/${REMOTE_CACHE_DIR}/${shellQuote(remote.cachedName)}`;
    const run = runIfIntact(cached, remote.cachedName, `exec node ${cached} ${args}`);
    steps.push(`if [ -f ${cached} ] && command -v node >/dev/null 2>&1; then ${run}; fi`);
  }
  return [
    ...steps,
    `N=$(node -p process.versions.node 2>/dev/null)`,
    `if [ -n "$N" ]; then echo "${NEED_INSTALL_TAG} {\\"node\\":\\"$N\\"}"; ` +
      `else echo "${NEED_INSTALL_TAG} {\\"node\\":null}"; fi`,
  ].join('; ');
}

/**
 * `run` only while the cached bundle's SHA-256 starts with the HASH16 of its name (SECURITY.md §15): a copy
 * damaged on disk or edited since is then not run; the script goes on to NEED_INSTALL_TAG and fcp installs
 * it again over the name. Hashed by `sha256sum` (coreutils, busybox) or `shasum -a 256` (perl, macOS), in the
 * same ssh command (no round trip; ~3 ms of remote CPU for the 650 KiB bundle with sha256sum, ~17 with
 * shasum); with neither, or neither able to read it, it runs as before. 64 bits of the hash are plenty
 * against damage; whoever could forge a match can write the user's home, and ssh already trusts that.
 */
function runIfIntact(cached: string, name: string, run: string): string {
  const hash16 = /-([0-9a-f]{16})\.cjs$/.exec(name)?.[1];
  if (hash16 === undefined) return run;
  const sum = `sum=$(sha256sum ${cached} 2>/dev/null || shasum -a 256 ${cached} 2>/dev/null)`;
  return `${sum}; case "$sum" in ""|${hash16}*) ${run};; esac`;
}

/** An install's temp file older than this is a crashed install's leftover (installProgram). */
const STALE_INSTALL_TEMP_MS = 3_600_000;

/**
 * The node program that installs the bundle it reads on stdin: the cache dir (and its parent) must be the
 * user's own and closed to group and other, the bundle must hash to `sha256`, and it lands under its final
 * name by a rename from an exclusive temp file, so a reader never sees half of it. The temp's name is
 * random: one named by pid met the leftover of an earlier install that crashed with the same pid (EEXIST),
 * and failed every install until removed by hand. Leftovers (`.fcpd-*.tmp`) are removed once an hour old
 * (a younger one may be another run's install in progress), only regular files of this user (lstat: a link
 * is never followed nor removed). Written without ', ! and backslashes (see loginShellCommand).
 */
export function installProgram(name: string, sha256: string): string {
  return [
    `const fs=require("fs"),path=require("path"),crypto=require("crypto");`,
    `const fail=(m)=>{process.stderr.write("fcp install: "+m+"\\n");process.exit(1)};`,
    `const dir=path.join(require("os").homedir(),"${REMOTE_CACHE_DIR}");`,
    `fs.mkdirSync(dir,{recursive:true,mode:0o700});`,
    `for(const d of [dir,path.dirname(dir)]){const s=fs.lstatSync(d);`,
    `const ok=s.isDirectory()&&s.uid===process.getuid()&&(s.mode&0o22)===0;`,
    `if(ok===false)fail(d+" must be a directory of this user that group and other cannot write")}`,
    `const parts=[];process.stdin.on("data",(c)=>parts.push(c));process.stdin.on("end",()=>{`,
    `const data=Buffer.concat(parts);const got=crypto.createHash("sha256").update(data).digest("hex");`,
    `if((got==="${sha256}")===false)fail("the bundle arrived damaged (sha256 "+got+")");`,
    `const old=Date.now()-${STALE_INSTALL_TEMP_MS};for(const f of fs.readdirSync(dir)){`,
    `if((f.startsWith(".fcpd-")&&f.endsWith(".tmp"))===false)continue;const p=path.join(dir,f);`,
    `try{const s=fs.lstatSync(p);if(s.isFile()&&s.uid===process.getuid()&&s.mtimeMs<old)fs.unlinkSync(p)}catch{}}`,
    `const tmp=path.join(dir,".${name}."+crypto.randomBytes(8).toString("hex")+".tmp");`,
    `const fd=fs.openSync(tmp,"wx",0o600);`,
    `try{fs.writeSync(fd,data);fs.fsyncSync(fd);fs.closeSync(fd);fs.renameSync(tmp,path.join(dir,"${name}"))}`,
    `catch(e){try{fs.unlinkSync(tmp)}catch{}throw e}});`,
  ].join('');
}
