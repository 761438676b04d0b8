/**
 * The JSON that patching, attribution and importance runs produce, in one place: `headwise patch
 * --json`, `headwise importance --json`, the HTML report and the web app all read these types. Plain
 * data (numbers, strings, arrays); `format` names the kind and its version, so a reader can refuse what
 * it does not know. Positions are token indices of the prompt (BOS = 0); heads count from 0.
 */
import type { MetricName } from './metrics.js';

/** Which activation a patching cell replaces (clean → corrupt run). */
export type PatchMode = 'head' | 'head-pos' | 'attn-out' | 'joint' | 'resid-pre' | 'mlp-out';
export const PATCH_MODES: readonly PatchMode[] = ['head', 'head-pos', 'attn-out', 'joint', 'resid-pre', 'mlp-out'];

/** A token of a prompt as shown to people. */
export interface TokenText {
  id: number;
  text: string;
}

/**
 * One patched run. `heads` lists every head patched (none for `resid-pre` and `mlp-out`); `layer` and
 * `head` place the cell on a heatmap: `head` is null when the cell is a whole layer's activation
 * (`attn-out`, `resid-pre`, `mlp-out`), both are null when the heads
 * were patched together (`joint`); `position` is null when the patch covered all of
 * `PatchingResult.positions` at once (`head`, `joint`).
 */
export interface PatchCell {
  heads: { layer: number; head: number }[];
  layer: number | null;
  head: number | null;
  position: number | null;
  /** The metric on the corrupt run with this patch. */
  value: number;
  /** Share of the clean − corrupt gap restored (`restoredFraction`): 1 = clean, 0 = corrupt. */
  restored: number;
}

export interface PatchingResult {
  format: 'headwise.patching/1';
  model: string;
  metric: MetricName;
  mode: PatchMode;
  /** The hook point patched, with {layer} (and {head}) left as placeholders. */
  hook: string;
  /** Clean and corrupt prompts, token by token (same length). */
  clean: TokenText[];
  corrupt: TokenText[];
  /** The answer token (and the wrong one, for a logit difference) read at the last position. */
  answer: TokenText;
  wrong: TokenText | null;
  /** The metric on the clean and on the corrupt run, unpatched. */
  cleanValue: number;
  corruptValue: number;
  /** Positions patched (every one at once in `head` mode; one per cell otherwise). */
  positions: number[];
  cells: PatchCell[];
  /** Wall time of the patched runs, milliseconds. */
  elapsedMs: number;
}

/** How a head was knocked out in an importance run. */
export type AblationMode = 'zero' | 'mean' | 'resample';
export const ABLATION_MODES: readonly AblationMode[] = ['zero', 'mean', 'resample'];
/** Which positions of a prompt the ablation covers: every position, or only the rows that predict the answer. */
export type AblationScope = 'all' | 'answer';
export const ABLATION_SCOPES: readonly AblationScope[] = ['all', 'answer'];

export interface HeadEffect {
  layer: number;
  head: number;
  /** Mean over prompts of the metric's change when the head is ablated (a drop for logprob/logit-diff, the KL itself for kl). */
  effect: number;
  /** 95% t interval of the mean over prompts. */
  ci: [number, number];
}

export interface ImportanceResult {
  format: 'headwise.importance/1';
  model: string;
  metric: MetricName;
  ablation: AblationMode;
  scope: AblationScope;
  prompts: number;
  /** Mean over prompts of the metric on the unablated model. */
  baseline: number;
  /** Every head, largest effect first. */
  heads: HeadEffect[];
  elapsedMs: number;
}

/** Direct logit attribution at one position, and the logit lens (`attribution.ts`). */
export interface AttributionResult {
  format: 'headwise.attribution/1';
  model: string;
  position: number;
  answer: TokenText;
  /** null: attributions are of logit(answer) alone. */
  wrong: TokenText | null;
  /** How the final norm was linearised. */
  norm: string;
  /** logit(answer) − logit(wrong) of the run itself. */
  logitDiff: number;
  /** Every head's direct effect through the frozen final norm and the LM head, layer-major. */
  heads: { layer: number; head: number; attribution: number }[];
  /** The embeddings' term. */
  embed: number;
  /** Per layer: the attention output's bias (hook_attn_out − Σ heads' hook_result). */
  attnBias: number[];
  /** Per layer: the MLP output. */
  mlp: number[];
  /** The final norm's bias through the LM head (LayerNorm with a bias; 0 for RMSNorm). */
  normBias: number;
  /** The LM head bias's difference (0 without one). */
  lmHeadBias: number;
  /** embed + Σ heads + Σ attnBias + Σ mlp + normBias + lmHeadBias; equals logitDiff up to float error. */
  sum: number;
  /** Per layer: that block's output through the real final norm and LM head. */
  logitLens: { layer: number; logitDiff: number; answerLogProb: number }[];
}
