/**
 * ssh_config(5) `Host` patterns for the sections of fcp's config file: whitespace-separated globs (`*` any
 * run of characters, `?` one), `!` negates; a host matches when some plain pattern matches and no negated one
 * does. Matched without regard to case against the host as typed on the command line (the alias).
 */
import type { ConfigFile, Setting } from './config-file.js';

export function hostMatches(patterns: string, alias: string): boolean {
  let matched = false;
  for (const pattern of patterns.split(/\s+/)) {
    if (pattern === '' || pattern === '!') continue;
    const negated = pattern.startsWith('!');
    if (!globRegExp(negated ? pattern.slice(1) : pattern).test(alias)) continue;
    // As ssh: one negated match rules the section out, whatever else matches.
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function globRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/**
 * The settings that apply to `alias`, one per key: the first matching host section that sets a key wins it
 * (ssh's rule), then the file's top-level defaults.
 */
export function settingsFor(config: ConfigFile, alias: string): Map<string, Setting> {
  const chosen = new Map<string, Setting>();
  const add = (s: Setting) => {
    if (!chosen.has(s.key)) chosen.set(s.key, s);
  };
  for (const section of config.hosts) {
    if (hostMatches(section.patterns, alias)) section.settings.forEach(add);
  }
  config.defaults.forEach(add);
  return chosen;
}
