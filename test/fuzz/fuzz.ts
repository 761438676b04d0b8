/**
 * Shared parts of the seeded fuzz suite (test/fuzz/*.test.ts): a seeded generator, value pools that
 * hit the edges parsers get wrong (huge, negative, fractional, wrong types, prototype names, deep
 * nesting), structural mutation of a valid JSON document, and `clean`, the one outcome rule every case
 * is held to: the input is accepted, or it is refused with a HeadwiseError whose message is one line
 * that neither comes from the JavaScript engine (TypeError, "is not a function", stack frames) nor is
 * empty. Each file records its case counts with `record`; they are printed at the end of the file.
 */
import { HeadwiseError } from '../../src/errors.js';

export type Rng = ReturnType<typeof seeded>;

/** mulberry32: a small, seeded, good-enough generator. */
export function seeded(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
    chance: (p: number) => next() < p,
  };
}

/** Values that break parsers: numbers at and past the edges, wrong types, prototype names. */
export const EDGE_VALUES: readonly unknown[] = [
  0, -1, 1, 2, 3, 1.5, -0.5, 1e-12, 1e308, -1e308, 2 ** 31, 2 ** 32, 2 ** 53, 9007199254740992, 1e9, 1e21, NaN, Infinity, -Infinity,
  '', '0', '12', 'x', 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'F32', 'BF16', 'llama', '{% for %}', '\u0000', 'é'.repeat(3),
  null, true, false, [], [0], [1, 2], [-1], ['a', 'b'], [[]], {}, { type: 'x' }, { constructor: 1 }, { __proto__: { polluted: 1 } },
];

export function edgeValue(rng: Rng): unknown {
  const v = rng.pick(EDGE_VALUES);
  return typeof v === 'object' && v !== null ? structuredClone(v) : v;
}

/** A value nested `depth` levels deep (arrays or objects), built without recursion. */
export function deeplyNested(depth: number, kind: 'array' | 'object' = 'array'): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = kind === 'array' ? [v] : { a: v };
  return v;
}

/** Every [parent, key] of a JSON document (arrays sampled, so large vocabularies stay cheap). */
function slots(doc: unknown, rng: Rng): [Record<string | number, unknown>, string | number][] {
  const out: [Record<string | number, unknown>, string | number][] = [];
  const stack: unknown[] = [doc];
  while (stack.length && out.length < 4000) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    const keys = Array.isArray(v) ? [...new Set(Array.from({ length: Math.min(v.length, 4) }, () => rng.int(0, v.length - 1)))] : Object.keys(v).slice(0, 64);
    for (const k of keys) {
      out.push([v as Record<string | number, unknown>, k]);
      stack.push((v as Record<string | number, unknown>)[k]);
    }
  }
  return out;
}

/** 1–3 structural mutations of a copy of `doc`: replace a value, delete a key, add a key, or nest deep. */
export function mutate<T>(doc: T, rng: Rng, { keys = [] as readonly string[] } = {}): T {
  const copy = structuredClone(doc);
  const n = rng.int(1, 3);
  for (let i = 0; i < n; i++) {
    const all = slots(copy, rng);
    if (!all.length) break;
    const [parent, key] = rng.pick(all);
    const r = rng.next();
    if (r < 0.6) parent[key] = edgeValue(rng);
    else if (r < 0.75 && !Array.isArray(parent)) delete parent[key];
    else if (r < 0.9 && !Array.isArray(parent)) parent[keys.length && rng.chance(0.7) ? rng.pick(keys) : rng.pick(['constructor', '__proto__', 'x', 'type'])] = edgeValue(rng);
    else parent[key] = deeplyNested(rng.pick([40, 100, 2000]), rng.chance(0.5) ? 'array' : 'object');
  }
  return copy;
}

const ENGINE_MESSAGE = /is not a function|is not iterable|Cannot read propert|Cannot convert|undefined is not|of undefined|of null|Maximum call stack|Invalid array length|Invalid typed array length|out of memory|\bNaN bytes\b|^\s+at /m;

/** Asserts a thrown value is a clean refusal: a HeadwiseError with a one-line message free of engine internals. */
export function assertCleanError(e: unknown, where: string): void {
  if (!(e instanceof HeadwiseError)) throw new Error(`${where}: escaped as ${(e as Error)?.name ?? typeof e}: ${String((e as Error)?.message ?? e).slice(0, 300)}`);
  const m = e.message;
  if (!m || m.includes('\n') || ENGINE_MESSAGE.test(m)) throw new Error(`${where}: unclean message: ${JSON.stringify(m.slice(0, 300))}`);
}

export interface Tally {
  cases: number;
  accepted: number;
  refused: number;
}

/** Runs one case: `run` either returns (accepted) or throws a clean HeadwiseError (refused). */
export function clean(tally: Tally, where: string, run: () => void): 'accepted' | 'refused' {
  tally.cases++;
  try {
    run();
    tally.accepted++;
    return 'accepted';
  } catch (e) {
    assertCleanError(e, where);
    tally.refused++;
    return 'refused';
  }
}

export async function cleanAsync(tally: Tally, where: string, run: () => Promise<void>): Promise<'accepted' | 'refused'> {
  tally.cases++;
  try {
    await run();
    tally.accepted++;
    return 'accepted';
  } catch (e) {
    assertCleanError(e, where);
    tally.refused++;
    return 'refused';
  }
}

export const newTally = (): Tally => ({ cases: 0, accepted: 0, refused: 0 });

/** Prints `[fuzz] name: N cases (accepted A, refused R)`. */
export function record(name: string, t: Tally): void {
  console.log(`[fuzz] ${name}: ${t.cases} cases (accepted ${t.accepted}, refused ${t.refused})`);
}
