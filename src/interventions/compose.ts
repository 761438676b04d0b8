/**
 * Working with specs as lists: combine several, remove one, and describe them for people, one line per
 * intervention. Validation is `spec.ts`'s; these take validated specs and return new ones.
 */

import type { HeadId } from '../runtime/capture.js';
import { SpecError, deepFreeze, type Intervention, type InterventionSpec, type SpanRef } from './spec.js';

/** The interventions of `specs` in order (earlier specs apply first); notes are joined with "; ". */
export function combine(...specs: InterventionSpec[]): InterventionSpec {
  const notes = specs.map((s) => s.note).filter((n): n is string => n !== undefined && n !== '');
  const interventions = specs.flatMap((s) => s.interventions);
  return deepFreeze(notes.length ? { version: 1, note: notes.join('; '), interventions } : { version: 1, interventions });
}

/**
 * The spec as pretty JSON for a file, heads written as "L:H" strings; `parseInterventionSpec` reads it
 * back to an equal spec.
 */
export function specToJson(spec: InterventionSpec): string {
  const plain = {
    version: spec.version,
    ...(spec.note === undefined ? {} : { note: spec.note }),
    interventions: spec.interventions.map((iv) => ({ ...iv, heads: iv.heads.map((h) => `${h.layer}:${h.head}`) })),
  };
  return JSON.stringify(plain, null, 2) + '\n';
}

/** `spec` without its `index`-th intervention. */
export function removeIntervention(spec: InterventionSpec, index: number): InterventionSpec {
  const n = spec.interventions.length;
  if (!Number.isInteger(index) || index < 0 || index >= n) {
    throw new SpecError('index', `${index} is out of range (spec has ${n} intervention${n === 1 ? '' : 's'})`);
  }
  return deepFreeze({ ...spec, interventions: spec.interventions.filter((_, i) => i !== index) });
}

/**
 * One line per intervention, numbered as `removeIntervention` counts them.
 *
 * @example
 * describe(spec)
 * // [0] ablate (zero) 4:1, 5:3
 * // [1] pasta α=0.01 on text "Mary is a doctor." — 2:{0-3}
 */
export function describe(spec: InterventionSpec): string {
  if (spec.interventions.length === 0) return '(no interventions)';
  return spec.interventions.map((iv, i) => `[${i}] ${describeOne(iv)}`).join('\n');
}

function describeOne(iv: Intervention): string {
  let what: string;
  switch (iv.op) {
    case 'ablate':
      what = `ablate (${iv.params.mode})`;
      break;
    case 'scale':
      what = `scale ×${iv.params.factor}`;
      break;
    case 'pasta':
      what = `pasta α=${iv.params.alpha} on ${iv.params.spans.map(describeSpan).join(', ')} —`;
      break;
    case 'act':
      what = `act τ=${iv.params.tau} β=${iv.params.beta}${iv.params.minQueries > 1 ? ` minQueries=${iv.params.minQueries}` : ''}`;
      break;
    case 'steer': {
      const norm = Math.sqrt(iv.params.vector.reduce((acc, x) => acc + x * x, 0));
      what = `steer +${iv.params.alpha}·v (|v|=${round(norm)}, ${iv.params.vector.length} dims)`;
      break;
    }
  }
  return `${what} ${describeHeads(iv.heads)}${iv.note ? `  # ${iv.note}` : ''}`;
}

function describeSpan(span: SpanRef): string {
  if ('text' in span) {
    const text = span.text.length > 40 ? `${span.text.slice(0, 37)}...` : span.text;
    return `text ${JSON.stringify(text)}${span.occurrence ? ` (occurrence ${span.occurrence})` : ''}`;
  }
  if ('chars' in span) return `chars [${span.chars[0]}, ${span.chars[1]})`;
  return `tokens [${span.tokens[0]}, ${span.tokens[1]})`;
}

/** "4:1, 5:{0-2}" — heads grouped by layer, runs of heads compressed. */
export function describeHeads(heads: readonly Readonly<HeadId>[]): string {
  const byLayer = new Map<number, number[]>();
  for (const { layer, head } of heads) byLayer.set(layer, [...(byLayer.get(layer) ?? []), head]);
  return [...byLayer.entries()]
    .sort(([a], [b]) => a - b)
    .map(([layer, hs]) => {
      const sorted = [...hs].sort((a, b) => a - b);
      return sorted.length === 1 ? `${layer}:${sorted[0]}` : `${layer}:{${runs(sorted)}}`;
    })
    .join(', ');
}

function runs(sorted: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(j - i >= 2 ? `${sorted[i]}-${sorted[j]}` : sorted.slice(i, j + 1).join(','));
    i = j + 1;
  }
  return parts.join(',');
}

function round(x: number): string {
  return Number(x.toPrecision(3)).toString();
}
