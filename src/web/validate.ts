/**
 * Checking request bodies field by field. Every failure is a 400 whose message starts with the
 * field's name (`layer: 9 is out of range (model has 6 layers)`), so the app can show it next to the
 * input and a script can tell what to fix. Unknown fields are errors too: a typo must not be ignored.
 */
import { HttpError } from './http.js';

export type Body = Record<string, unknown>;

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

export function bad(field: string, detail: string): HttpError {
  return new HttpError(400, `${field}: ${detail}`);
}

/** The body as an object with only the `allowed` keys. */
export function objectBody(value: unknown, allowed: readonly string[]): Body {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpError(400, `body must be a JSON object (got ${show(value)})`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw bad(key, `unknown field (expected ${allowed.join(', ')})`);
  }
  return value as Body;
}

export function stringField(body: Body, field: string, { maxChars, allowEmpty = false }: { maxChars: number; allowEmpty?: boolean }): string {
  const v = body[field];
  if (v === undefined) throw bad(field, 'missing (expected a string)');
  if (typeof v !== 'string') throw bad(field, `must be a string (got ${show(v)})`);
  if (!allowEmpty && v.trim() === '') throw bad(field, 'is empty');
  if (v.length > maxChars) throw bad(field, `is ${v.length} characters long, the limit is ${maxChars}`);
  return v;
}

export function intField(body: Body, field: string, min: number, max: number, fallback?: number, what?: string): number {
  const v = body[field];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw bad(field, `missing (expected an integer from ${min} to ${max})`);
  }
  if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(field, `must be an integer (got ${show(v)})`);
  if (v < min || v > max) throw bad(field, `${v} is out of range (${what ?? `expected ${min} to ${max}`})`);
  return v;
}

export function boolField(body: Body, field: string, fallback: boolean): boolean {
  const v = body[field];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw bad(field, `must be true or false (got ${show(v)})`);
  return v;
}
