/**
 * Topic names and filters (MQTT 5 §4.7). Requests are recognised by matching the
 * subscription filter, so `$share/group/…` and wildcard filters work as subscribed.
 */

/** U+0000 is not allowed anywhere in a topic (§1.5.4). */
const NUL = String.fromCharCode(0);

const SHARE_PREFIX = /^\$share\/([^/#+]+)\/(.+)$/;

/** The filter a shared subscription matches topics with (`$share/g/jobs/#` → `jobs/#`). */
export function matchingFilter(filter: string): string {
  const shared = SHARE_PREFIX.exec(filter);
  return shared ? shared[2]! : filter;
}

export function isSharedFilter(filter: string): boolean {
  return SHARE_PREFIX.test(filter);
}

export function isValidFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes(NUL)) return false;
  if (filter.startsWith('$share/') && !SHARE_PREFIX.test(filter)) return false;
  const levels = matchingFilter(filter).split('/');
  return levels.every((level, i) => {
    if (level === '#') return i === levels.length - 1;
    if (level === '+') return true;
    return !level.includes('#') && !level.includes('+');
  });
}

/** A name messages can be published to: no wildcards, not empty, not `$`-reserved. */
export function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && !/[#+]/.test(topic) && !topic.includes(NUL) && !topic.startsWith('$');
}

/** One level of a topic (an id inside a topic): nothing that would add a level or a wildcard. */
export function isSafeTopicLevel(level: string): boolean {
  return level.length > 0 && !/[/#+]/.test(level) && !level.includes(NUL);
}

/** Whether `topic` is matched by `filter` (a shared filter matches like its inner filter). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = matchingFilter(filter).split('/');
  const t = topic.split('/');
  // Wildcards at the first level do not match `$` topics (§4.7.2).
  if (topic.startsWith('$') && (f[0] === '#' || f[0] === '+')) return false;
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/** The last level of a topic under `prefix` (`jobs/cancel/abc` → `abc`), or undefined. */
export function idUnder(prefix: string, topic: string): string | undefined {
  if (!topic.startsWith(`${prefix}/`)) return undefined;
  const rest = topic.slice(prefix.length + 1);
  return isSafeTopicLevel(rest) ? rest : undefined;
}
