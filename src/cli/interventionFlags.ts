/**
 * The intervention flags shared by `generate`, `niah` and `atlas`:
 * - `--intervene FILE` (repeatable): a spec file (interventions/spec.ts); several combine in order;
 * - `--ablate L:H,...`: zero the outputs of these heads;
 * - `--highlight TEXT` (repeatable): PASTA towards this text of the prompt, on `--steer-heads` (a head
 *   list, or a spec file such as `steer-profile --out` writes, whose PASTA heads are used) or, by
 *   default, every head of the upper half of the layers; `--alpha` sets α (default 0.01).
 * Flags combine in the order above. Every error names its source and field on one line, e.g.
 * `spec.json: interventions[0].op: unknown op "ablat" ...` or `--highlight: "foo" does not occur in the
 * prompt`; the CLI exits 1. Mean ablation (`ablate {mode: "mean"}` in a file) uses mean head outputs over
 * a few haystack windows, computed once per model and cached (interventions/means.ts).
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { HeadwiseError, UsageError } from '../errors.js';
import {
  bindIntervention,
  combine,
  defaultHeadMeans,
  DEFAULTS,
  describe,
  modelShape,
  needsMeans,
  parseHeadList,
  parseInterventionSpec,
  SpecError,
  type BoundIntervention,
  type InterventionSpec,
  type ModelShape,
} from '../interventions/index.js';
import type { HeadId } from '../runtime/capture.js';
import type { CacheSetup } from '../runtime/generate.js';
import type { Model } from '../runtime/model.js';

export interface InterventionFlags {
  intervene?: string[];
  ablate?: string;
  highlight?: string[];
  steerHeads?: string;
  alpha?: string;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Adds --intervene, --ablate, and (unless `highlight: false`) --highlight, --steer-heads, --alpha. */
export function interventionOptions(cmd: Command, { highlight = true } = {}): Command {
  cmd
    .option('--intervene <file>', 'apply the interventions of a spec file (JSON; repeat to combine)', collect)
    .option('--ablate <heads>', 'zero the outputs of these heads, e.g. 4:1,5:0 ("*" = all)');
  if (highlight) {
    cmd
      .option('--highlight <text>', 'PASTA: steer attention towards this text, which must occur in every prompt (repeat for several)', collect)
      .option('--steer-heads <heads|file>', 'heads --highlight steers: L:H,... or a spec file from steer-profile (default: every head of the upper half of the layers)')
      .option('--alpha <α>', `PASTA: attention outside the highlighted text is multiplied by α, 0 < α ≤ 1 (default ${DEFAULTS.pastaAlpha})`);
  }
  return cmd;
}

/** The heads `--highlight` steers when `--steer-heads` is not given: all heads of layers ⌊L/2⌋ .. L−1. */
export function defaultSteerHeads(shape: ModelShape): HeadId[] {
  const out: HeadId[] = [];
  for (let layer = Math.floor(shape.numLayers / 2); layer < shape.numLayers; layer++) for (let head = 0; head < shape.numHeads; head++) out.push({ layer, head });
  return out;
}

/** Where each intervention of a flag-built spec came from, to name it in errors. */
interface Origin {
  /** Prefix for the error path, e.g. "spec.json: interventions[2]" or "--highlight". */
  label: string;
  /** Whether the rest of the path (after `interventions[i]`) is kept. */
  keepPath: boolean;
}

/** A spec built from the flags, not yet bound to a prompt. */
export interface FlagSpec {
  spec: InterventionSpec;
  origins: Origin[];
  /** One line per intervention, for logs and --json. */
  describe: string;
}

/** The flags as one spec, or null when none is given. Errors name the flag or file and the field. */
export function resolveInterventionFlags(model: Model, flags: InterventionFlags): FlagSpec | null {
  const shape = modelShape(model);
  const specs: InterventionSpec[] = [];
  const origins: Origin[] = [];
  for (const file of flags.intervene ?? []) {
    const spec = readSpecFile(file, shape);
    specs.push(spec);
    spec.interventions.forEach((_, i) => origins.push({ label: `${file}: interventions[${i}]`, keepPath: true }));
  }
  if (flags.ablate !== undefined) {
    const heads = flagValue(() => parseHeadList(flags.ablate!, shape, '--ablate'));
    specs.push(parseInterventionSpec([{ op: 'ablate', heads: heads.map((h) => ({ ...h })), params: { mode: 'zero' } }], shape));
    origins.push({ label: '--ablate', keepPath: false });
  }
  const highlights = flags.highlight ?? [];
  if (highlights.length === 0 && flags.steerHeads !== undefined) throw new UsageError('--steer-heads: needs --highlight TEXT (the text to steer towards)');
  if (highlights.length === 0 && flags.alpha !== undefined) throw new UsageError('--alpha: needs --highlight TEXT (α is PASTA\'s)');
  if (highlights.length) {
    const alpha = flagValue(() => parseAlpha(flags.alpha));
    const heads = flags.steerHeads === undefined ? defaultSteerHeads(shape) : flagValue(() => steerHeadsOf(flags.steerHeads!, shape));
    highlights.forEach((text, i) => {
      if (text === '') throw new UsageError(`--highlight: ${i === 0 ? '' : `#${i + 1} `}is empty (give the text to steer towards)`);
    });
    specs.push(parseInterventionSpec([{ op: 'pasta', heads: heads.map((h) => ({ ...h })), params: { alpha, spans: highlights.map((text) => ({ text })) } }], shape));
    origins.push({ label: '--highlight', keepPath: false });
  }
  if (specs.length === 0) return null;
  const spec = combine(...specs);
  return { spec, origins, describe: describe(spec) };
}

/** A spec error about a flag's own value (its path starts with "--") is a usage error (exit 2); file errors stay input errors. */
export function flagValue<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof SpecError && e.path.startsWith('--')) throw new UsageError(e.message);
    throw e;
  }
}

/** Binds a flag-built spec to a prompt; errors are renamed after the flag or file they came from. */
export async function bindFlagSpec(
  model: Model,
  flagSpec: FlagSpec,
  ids: readonly number[],
  options: { prompt?: string; cache?: CacheSetup; means?: Float32Array[]; onMeans?: (done: number, total: number) => void } = {},
): Promise<BoundIntervention> {
  let means = options.means;
  if (!means && needsMeans(flagSpec.spec)) means = await defaultHeadMeans(model, { onProgress: options.onMeans });
  try {
    return await bindIntervention(model, flagSpec.spec, ids, { prompt: options.prompt, means, cache: options.cache });
  } catch (e) {
    throw relabel(e, flagSpec.origins);
  }
}

function relabel(e: unknown, origins: Origin[]): unknown {
  if (!(e instanceof SpecError)) return e;
  const m = /^interventions\[(\d+)\](.*)$/.exec(e.path);
  const origin = m ? origins[Number(m[1])] : undefined;
  if (!m || !origin) return e;
  if (origin.keepPath) return new SpecError(`${origin.label}${m[2]}`, e.detail);
  // --highlight: "interventions[k].params.spans[j].text" → "--highlight" (which one, when several).
  const span = /^\.params\.spans\[(\d+)\]/.exec(m[2]);
  return new SpecError(span && origin.label === '--highlight' ? `${origin.label}${Number(span[1]) > 0 ? ` #${Number(span[1]) + 1}` : ''}` : origin.label, e.detail);
}

function parseAlpha(value: string | undefined): number {
  if (value === undefined) return DEFAULTS.pastaAlpha;
  const alpha = Number(value);
  if (value.trim() === '' || !Number.isFinite(alpha)) throw new SpecError('--alpha', `must be a number (got ${JSON.stringify(value)})`);
  if (!(alpha > 0)) throw new SpecError('--alpha', `must be > 0 (got ${alpha})`);
  if (alpha > 1) throw new SpecError('--alpha', `must be ≤ 1 (got ${alpha}); PASTA down-weights the text outside the highlight`);
  return alpha;
}

/** `--steer-heads`: a head list, or a spec file whose PASTA interventions name the heads. */
function steerHeadsOf(value: string, shape: ModelShape): readonly HeadId[] {
  if (!fs.existsSync(value)) {
    if (/^[\s\d*:,]+$/.test(value)) return parseHeadList(value, shape, '--steer-heads');
    throw new UsageError(`--steer-heads: ${JSON.stringify(value)} is neither a head list such as 4:1,5:0 nor a spec file that exists`);
  }
  const spec = readSpecFile(value, shape);
  const heads = new Map<string, HeadId>();
  for (const iv of spec.interventions) if (iv.op === 'pasta') for (const h of iv.heads) heads.set(`${h.layer}:${h.head}`, h);
  if (heads.size === 0) throw new HeadwiseError(`--steer-heads ${value}: the spec has no pasta intervention to take heads from`);
  return [...heads.values()];
}

function readSpecFile(file: string, shape: ModelShape): InterventionSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new HeadwiseError(`--intervene ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return parseInterventionSpec(text, shape);
  } catch (e) {
    if (e instanceof SpecError) throw new SpecError(`${file}: ${e.path}`, e.detail);
    throw e;
  }
}
