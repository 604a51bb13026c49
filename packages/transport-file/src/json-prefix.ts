const LITERALS = ['true', 'false', 'null'];
const SPACE = new Set([' ', '\t', '\n', '\r']);
const NUMBER = /[0-9eE.+-]/;

type Expect = 'value' | 'value-or-close' | 'key-or-close' | 'key' | 'colon' | 'after';

/**
 * Whether `text` could still become JSON by appending to it: true for a file cut off
 * by a writer that has not finished (`{"id":"a",`, or nothing yet), false as soon as a
 * character no completion could follow (`{{`, `not json`). Loose on numbers, exact on
 * structure; meant for text that `JSON.parse` has already refused.
 */
export function isJsonPrefix(text: string): boolean {
  const stack: ('{' | '[')[] = [];
  let expect: Expect = 'value';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (SPACE.has(c)) {
      i++;
      continue;
    }
    const top = stack[stack.length - 1];
    if (expect === 'colon') {
      if (c !== ':') return false;
      expect = 'value';
      i++;
      continue;
    }
    if (expect === 'after') {
      if (top === undefined) return false;
      if (c === ',') expect = top === '{' ? 'key' : 'value';
      else if ((c === '}' && top === '{') || (c === ']' && top === '[')) stack.pop();
      else return false;
      i++;
      continue;
    }
    if ((expect === 'key-or-close' && c === '}') || (expect === 'value-or-close' && c === ']')) {
      stack.pop();
      expect = 'after';
      i++;
      continue;
    }
    if (expect === 'value-or-close') expect = 'value';
    if (c === '"') {
      const isKey: boolean = expect === 'key' || expect === 'key-or-close';
      let j = i + 1;
      for (; j < text.length; j++) {
        if (text[j] === '\\') j++;
        else if (text[j] === '"') break;
        else if (text.charCodeAt(j) < 0x20) return false;
      }
      if (j >= text.length) return true; // cut inside a string
      expect = isKey ? 'colon' : 'after';
      i = j + 1;
      continue;
    }
    if (expect !== 'value') return false;
    if (c === '{' || c === '[') {
      stack.push(c);
      expect = c === '{' ? 'key-or-close' : 'value-or-close';
      i++;
      continue;
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      while (i < text.length && NUMBER.test(text[i]!)) i++;
      expect = 'after';
      continue;
    }
    const literal = LITERALS.find((l) => l[0] === c);
    if (!literal) return false;
    const rest = text.slice(i, i + literal.length);
    if (!literal.startsWith(rest)) return false;
    i += rest.length;
    expect = 'after';
  }
  return true;
}
