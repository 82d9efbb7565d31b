// JSON.parse keeps the last of duplicate keys silently; log consumers (jq) may read another one.

/**
 * The keys that occur more than once in one object of a JSON text, as `path.key` (`$` is the top
 * level). Strings are skipped correctly (escapes included); the text is assumed to be valid JSON.
 */
export function duplicateJsonKeys(text: string): string[] {
  const found: string[] = [];
  const stack: { keys: Set<string>; path: string; isObject: boolean }[] = [];
  let lastString = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      lastString = JSON.parse(text.slice(i, j + 1)) as string;
      i = j + 1;
      continue;
    }
    const top = stack.at(-1);
    if (c === ':' && top?.isObject) {
      if (top.keys.has(lastString)) found.push(`${top.path}.${lastString}`);
      top.keys.add(lastString);
    } else if (c === '{' || c === '[') {
      const path = top === undefined ? '$' : `${top.path}.${top.isObject ? lastString : '[]'}`;
      stack.push({ keys: new Set(), path, isObject: c === '{' });
    } else if (c === '}' || c === ']') stack.pop();
    i += 1;
  }
  return found;
}
