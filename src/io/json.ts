/**
 * JSON input that cannot crash a reader: nesting depth measured without recursion (JSON.parse itself
 * is iterative, but every recursive walk after it — validation, JSON.stringify, freezing — would
 * overflow the stack on a value nested 10 000 deep), and own-property lookups for names that come from
 * files (`constructor`, `__proto__` are keys like any other, never inherited members).
 */

/** Whether `value` nests objects/arrays more than `limit` levels deep (iterative, stops early). */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** `obj[key]` only when `key` is the object's own property. */
export function ownValue(obj: object, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? (obj as Record<string, unknown>)[key] : undefined;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
