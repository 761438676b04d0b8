/**
 * How every metric is shown, in one place for the HTML report (`report.ts`) and the web app
 * (`src/web/app`): its name in words, its code name (shown on hover), its unit, and its colour scale.
 * Scales are chosen by what the number *is*, never stretched to the data: shares and probabilities sit
 * on a fixed [0, 1] scale (an induction maximum of 0.04 stays pale), KL divergences in nats on a log
 * scale over four decades below the largest value, counts and distances on a linear scale from 0,
 * signed values (patching effects, logit attributions) on a diverging scale symmetric around 0.
 * Pure and free of Node and DOM imports, so both sides bundle it.
 */

/** `fixed01`: linear on [0, 1]; `log`: log over [max/10^4, max], smaller values clamped; `linear`: [0, max]; `diverging`: [-m, m]. */
export type ScaleKind = 'fixed01' | 'log' | 'linear' | 'diverging';

export interface MetricDisplay {
  /** Code name, as in the atlas JSON (`streamingHarm`). */
  code: string;
  /** Name in words (`Streaming harm`). */
  title: string;
  /** What one unit is (`KL, nats`). */
  unit: string;
  scale: ScaleKind;
  /** A d3 / Observable Plot colour scheme name (lower case). */
  scheme: string;
  /** The metric is per KV head rather than per query head (for the title only; the atlas says for sure). */
  perKvHead?: boolean;
}

/** Decades shown below the largest value on a log scale. */
export const LOG_DECADES = 4;

export const METRIC_DISPLAY: Record<string, MetricDisplay> = {
  retrieval: { code: 'retrieval', title: 'Retrieval score', unit: 'copy rate', scale: 'fixed01', scheme: 'ylorrd' },
  streamingHarm: { code: 'streamingHarm', title: 'Streaming harm', unit: 'KL, nats', scale: 'log', scheme: 'ylorrd', perKvHead: true },
  ablationKl: { code: 'ablationKl', title: 'Ablation importance', unit: 'KL, nats', scale: 'log', scheme: 'ylorrd' },
  sink: { code: 'sink', title: 'Sink score', unit: 'attention share on BOS', scale: 'fixed01', scheme: 'blues' },
  hiddenSinks: { code: 'hiddenSinks', title: 'Hidden sinks', unit: 'key columns > 0.1', scale: 'linear', scheme: 'blues' },
  previousToken: { code: 'previousToken', title: 'Previous-token score', unit: 'attention share', scale: 'fixed01', scheme: 'greens' },
  duplicateToken: { code: 'duplicateToken', title: 'Duplicate-token score', unit: 'attention share', scale: 'fixed01', scheme: 'greens' },
  induction: { code: 'induction', title: 'Induction score', unit: 'attention share', scale: 'fixed01', scheme: 'greens' },
  reach: { code: 'reach', title: 'Mean reach', unit: 'tokens back', scale: 'linear', scheme: 'purples' },
  waad: { code: 'waad', title: 'WAAD (W = 10)', unit: 'tokens back, capped at 10', scale: 'linear', scheme: 'purples' },
  entropy: { code: 'entropy', title: 'Attention entropy', unit: 'nats', scale: 'linear', scheme: 'purples' },
  attention: { code: 'attention', title: 'Attention weight', unit: 'share of the query row', scale: 'fixed01', scheme: 'blues' },
  accuracy: { code: 'accuracy', title: 'Needle accuracy', unit: 'share correct', scale: 'fixed01', scheme: 'rdylgn' },
};

/** The display of `code`; an unknown metric is shown linearly under its code name. */
export function metricDisplay(code: string): MetricDisplay {
  return METRIC_DISPLAY[code] ?? { code, title: code, unit: '', scale: 'linear', scheme: 'viridis' };
}

/** A colour scale as Observable Plot takes it (`color: {...}`), plus what the legend should say. */
export interface ColorScale {
  type: 'linear' | 'log';
  scheme: string;
  domain: [number, number];
  clamp?: boolean;
  pivot?: number;
  /** The scale as the legend says it, e.g. "fixed 0–1" or "log scale". */
  note: string;
}

/**
 * The colour scale of a metric over its values. Values outside a fixed domain are clamped; a log
 * metric with a negative value (no KL is negative, but a foreign atlas may hold signed numbers) is drawn
 * on a diverging scale instead, and the note says so.
 *
 * @example
 * colorScale(metricDisplay('induction'), [[0.037, 0.001]]).domain // [0, 1]
 */
export function colorScale(d: MetricDisplay, values: readonly (readonly (number | null)[])[] | readonly (number | null)[]): ColorScale {
  const xs = (values as unknown[]).flat(2).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  const lo = xs.length ? Math.min(...xs) : 0;
  const hi = xs.length ? Math.max(...xs) : 1;
  const symmetric = (): ColorScale => {
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    return { type: 'linear', scheme: 'rdbu', domain: [-m, m], pivot: 0, clamp: true, note: 'diverging around 0' };
  };
  switch (d.scale) {
    case 'fixed01':
      return { type: 'linear', scheme: d.scheme, domain: [0, 1], clamp: true, note: 'fixed 0–1' };
    case 'log':
      if (lo < 0) return { ...symmetric(), note: 'diverging around 0 (negative values: no log scale)' };
      if (!(hi > 0)) return { type: 'linear', scheme: d.scheme, domain: [0, 1], clamp: true, note: 'all zero' };
      return { type: 'log', scheme: d.scheme, domain: [hi / 10 ** LOG_DECADES, hi], clamp: true, note: `log scale, ${LOG_DECADES} decades` };
    case 'diverging':
      return symmetric();
    case 'linear':
      if (lo < 0) return symmetric();
      return { type: 'linear', scheme: d.scheme, domain: [0, hi > 0 ? hi : 1], clamp: true, note: 'linear from 0' };
  }
}

/** The value a colour scale is fed: log scales get values below their domain raised to its floor. */
export function colorValue(s: ColorScale, v: number): number {
  return s.type === 'log' ? Math.max(v, s.domain[0]) : v;
}

/** Where on the scale a value sits, 0..1 (for choosing a text colour that reads on the cell). */
export function scalePosition(s: ColorScale, v: number): number {
  const [a, b] = s.domain;
  const t = s.type === 'log' ? (Math.log(Math.max(v, a)) - Math.log(a)) / (Math.log(b) - Math.log(a)) : (v - a) / (b - a);
  return Math.min(1, Math.max(0, t));
}

/** A cell's text colour: white on the dark end of a sequential scale or on either end of a diverging one. */
export function textColorOn(s: ColorScale, v: number): string {
  const t = scalePosition(s, v);
  if (s.pivot !== undefined) return t < 0.18 || t > 0.82 ? 'white' : 'black';
  return t > 0.6 ? 'white' : 'black';
}

/** A value written short enough for a cell: 3 significant figures, exponent below 0.001. */
export function formatShort(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a >= 0.001) return v.toFixed(3).replace(/^(-?)0\./, '$1.');
  return v.toExponential(0);
}

/**
 * Wilson score interval of a proportion: `successes` of `n`, at 95% (z = 1.96). Unlike p ± z·se it
 * stays inside [0, 1] and is honest at 0 of n and n of n.
 *
 * @example
 * wilson(0, 10) // { lo: 0, hi: 0.278 }
 */
export function wilson(successes: number, n: number, z = 1.959964): { lo: number; hi: number } {
  if (!(n > 0)) return { lo: 0, hi: 1 };
  const p = successes / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return { lo: Math.max(0, centre - half), hi: Math.min(1, centre + half) };
}

/** "66% (n = 96, 95% CI 56–75%)" for an accuracy measured on n prompts. */
export function accuracyText(accuracy: number, n: number): string {
  const { lo, hi } = wilson(Math.round(accuracy * n), n);
  const pct = (x: number) => `${Math.round(100 * x)}%`;
  return `${pct(accuracy)} (n = ${n}, 95% CI ${Math.round(100 * lo)}–${pct(hi)})`;
}
