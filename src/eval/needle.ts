/**
 * Needle-in-a-haystack samples (methods.md §4): a haystack window sized so that the whole prompt is
 * `contextTokens` tokens, needles inserted at controlled depths, a question, and everything a head
 * analysis needs to score the answer — the prompt ids, the answer ids, and where each needle sits in
 * token positions. Three variants:
 * - `passKey`: one needle (default: the pass-key template);
 * - `multiKey`: `keyCount` needles with distinct keys and values; the question asks for one of them,
 *   the others act as distractors (default: the magic-number template);
 * - `conflicting`: the same key with two different values at two depths, for PASTA steering; the
 *   "expected" needle is the one at `depth`, and both are reported (default: magic-number template).
 * A sample is a pure function of (tokenizer, haystack, spec): the seed fixes keys, values, depths left
 * open and the haystack window. Running the model is the caller's; exact match is in `match.ts`.
 *
 * Lengths: `inputIds` (BOS included) is at most `contextTokens` and, unless the haystack runs out,
 * within a few tokens of it; the answer's tokens come on top. The haystack window starts at a seeded
 * line and is cut between words to fit.
 *
 * Depth: a fraction of the haystack window's characters (0 = right after BOS, 1 = right before the
 * question), snapped to the nearest sentence end (`haystack.ts`); `tokenDepth` reports where the needle
 * landed, in tokens. Needles never split a word.
 *
 * Spans, all in positions of `inputIds` (BOS = 0), [start, end):
 * - `needles[i].span`: the tokens of the whole needle sentence (the template text without its outer
 *   spaces, e.g. "The pass key is 4829371. Remember it. 4829371 is the pass key.") — the span the
 *   retrieval score checks (Wu et al. use the needle span; a copied value token lies inside it);
 * - `needles[i].valueSpans`: the tokens of each occurrence of the value in that needle (two for the
 *   pass-key template), for checks that want the value tokens only. A value token may carry the space
 *   before the digits (byte-level BPE: " 48", "29", "37", "1").
 */
import { check, HeadwiseError } from '../errors.js';
import { haystackWindow, insertionPoint } from './haystack.js';
import { drawKeys, drawValues, KEY_WORDS } from './keyValues.js';
import { Random } from './random.js';
import { checkTemplate, fillTemplate, MAGIC_NUMBER_TEMPLATE, PASS_KEY_TEMPLATE, templateUsesKey, type NeedleTemplate } from './templates.js';
import { countTokens, specialPrefixLength, type TextTokenizer } from './textTokenizer.js';
import { TokenSpanMapper, type CharSpan, type TokenSpan } from './tokenSpans.js';

interface CommonSpec {
  /** Target length of `inputIds`, BOS included; never exceeded. */
  contextTokens: number;
  /** Depth (0 = start of the haystack, 1 = right before the question) of the needle the question is about. */
  depth: number;
  seed: number;
  /** Default: pass-key template for `passKey`, magic-number template otherwise. */
  template?: NeedleTemplate;
  /** Words to draw keys from; default `KEY_WORDS`. */
  keyWords?: readonly string[];
}

export interface PassKeySpec extends CommonSpec {
  variant: 'passKey';
}

export interface MultiKeySpec extends CommonSpec {
  variant: 'multiKey';
  /** Number of needles (≥ 1), all with distinct keys and values. */
  keyCount: number;
  /** Depths of the other keyCount − 1 needles; drawn uniformly from [0, 1] when left out. */
  otherDepths?: number[];
}

export interface ConflictingSpec extends CommonSpec {
  variant: 'conflicting';
  /** Depth of the needle with the other value; drawn uniformly from [0, 1] when left out. */
  otherDepth?: number;
}

export type NeedleSpec = PassKeySpec | MultiKeySpec | ConflictingSpec;

export interface PlacedNeedle {
  /** The key, or null for a template without `{key}`. */
  key: string | null;
  value: string;
  /** The needle text as inserted (with its outer spaces). */
  text: string;
  /** Requested depth. */
  depth: number;
  /** Achieved depth: the needle's first token as a fraction of the tokens between BOS and the question. */
  tokenDepth: number;
  /** The needle sentence (without outer whitespace) in `prompt`. */
  charSpan: CharSpan;
  /** Tokens of the needle sentence in `inputIds`. */
  span: TokenSpan;
  /** Tokens of each occurrence of the value in the needle, in order. */
  valueSpans: TokenSpan[];
}

export interface NeedleSample {
  variant: NeedleSpec['variant'];
  seed: number;
  contextTokens: number;
  template: NeedleTemplate;
  /** Haystack with needles, then the question; ends right before the answer. */
  prompt: string;
  /** Expected continuation, e.g. " 4829371.". */
  answer: string;
  /** Expected value, e.g. "4829371". */
  value: string;
  /** Key the question asks about (null for pass key). */
  key: string | null;
  /** tokenizer.encode(prompt), BOS included. */
  inputIds: number[];
  /** Tokens of the answer as they follow the prompt: encode(prompt + answer) = inputIds ++ answerIds. */
  answerIds: number[];
  /** Needles in prompt order. */
  needles: PlacedNeedle[];
  /** Index in `needles` of the needle whose value is the expected answer. */
  target: number;
  /** Position in `inputIds` of the token holding the question's first visible character (after its leading "\n"). */
  questionStart: number;
}

interface NeedlePlan {
  key: string | null;
  value: string;
  depth: number;
}

function checkDepth(depth: number, what: string): void {
  check(Number.isFinite(depth) && depth >= 0 && depth <= 1, `${what} ${depth} is outside [0, 1]`);
}

/** Keys, values and depths of the needles; the target (asked-about) needle comes first. */
function planNeedles(spec: NeedleSpec, template: NeedleTemplate, rng: Random): NeedlePlan[] {
  const usesKey = templateUsesKey(template);
  const words = spec.keyWords ?? KEY_WORDS;
  switch (spec.variant) {
    case 'passKey': {
      const [key] = usesKey ? drawKeys(rng, 1, words) : [null];
      const [value] = drawValues(rng, 1);
      return [{ key, value, depth: spec.depth }];
    }
    case 'multiKey': {
      check(Number.isInteger(spec.keyCount) && spec.keyCount >= 1, `multiKey: keyCount must be a positive integer (got ${spec.keyCount})`);
      check(usesKey || spec.keyCount === 1, `multiKey: template ${template.name} has no {key}, so it cannot tell ${spec.keyCount} needles apart`);
      const others = spec.otherDepths ?? [];
      check(spec.otherDepths === undefined || others.length === spec.keyCount - 1,
        `multiKey: ${others.length} other depths given for ${spec.keyCount - 1} other needles`);
      others.forEach((d) => checkDepth(d, 'multiKey: other depth'));
      const keys = usesKey ? drawKeys(rng, spec.keyCount, words) : [null];
      const values = drawValues(rng, spec.keyCount);
      return keys.map((key, i) => ({
        key,
        value: values[i],
        depth: i === 0 ? spec.depth : (spec.otherDepths?.[i - 1] ?? rng.float()),
      }));
    }
    case 'conflicting': {
      check(usesKey, `conflicting: template ${template.name} has no {key}`);
      if (spec.otherDepth !== undefined) checkDepth(spec.otherDepth, 'conflicting: other depth');
      const [key] = drawKeys(rng, 1, words);
      const [first, second] = drawValues(rng, 2);
      return [
        { key, value: first, depth: spec.depth },
        { key, value: second, depth: spec.otherDepth ?? rng.float() },
      ];
    }
  }
}

/** Builds one needle-in-a-haystack sample. Throws when the context cannot hold the needles and question. */
export function generateNeedleSample(tokenizer: TextTokenizer, haystack: string, spec: NeedleSpec): NeedleSample {
  check(Number.isInteger(spec.contextTokens) && spec.contextTokens > 0, `contextTokens must be a positive integer (got ${spec.contextTokens})`);
  checkDepth(spec.depth, 'needle depth');
  const template = spec.template ?? (spec.variant === 'passKey' ? PASS_KEY_TEMPLATE : MAGIC_NUMBER_TEMPLATE);
  checkTemplate(template);
  const rng = new Random(spec.seed);
  const plans = planNeedles(spec, template, rng);
  const texts = plans.map((p) => fillTemplate(template.needle, p.key ?? '', p.value));
  const target = plans[0];
  const question = fillTemplate(template.question, target.key ?? '', target.value);
  const answer = fillTemplate(template.answer, target.key ?? '', target.value);

  const prefix = specialPrefixLength(tokenizer);
  const fixed = countTokens(tokenizer, question, prefix) + texts.reduce((n, t) => n + countTokens(tokenizer, t, prefix), 0);
  let budget = spec.contextTokens - prefix - fixed;
  check(budget >= 0, `contextTokens ${spec.contextTokens} cannot hold ${plans.length} needle(s) and the question (${fixed + prefix} tokens)`);

  // A window with more tokens than the budget (unless the haystack itself is shorter), tokenized once.
  const windowSeed = rng.int(0, 2 ** 31 - 1);
  let window = '';
  let windowIds: number[] = [];
  for (let chars = budget * 6 + 256; ; chars *= 2) {
    window = haystackWindow(haystack, new Random(windowSeed), chars);
    windowIds = tokenizer.encode(window).slice(prefix);
    if (windowIds.length > budget || chars >= haystack.length) break;
  }

  for (let attempt = 0; attempt < 8; attempt++) {
    const hay = cutToTokens(tokenizer, window, windowIds, budget);
    const built = assemble(hay, plans, texts, question);
    const inputIds = tokenizer.encode(built.prompt);
    if (inputIds.length > spec.contextTokens) {
      budget -= inputIds.length - spec.contextTokens;
      continue;
    }
    return describe(tokenizer, spec, template, built, inputIds, answer, prefix);
  }
  throw new HeadwiseError(`could not fit the prompt into ${spec.contextTokens} tokens`);
}

/** The window cut to about `budget` tokens, at a gap between words, without trailing whitespace. */
function cutToTokens(tokenizer: TextTokenizer, window: string, windowIds: number[], budget: number): string {
  if (budget <= 0) return '';
  if (windowIds.length <= budget) return window.trimEnd();
  // Decoded length ≈ character position (a clean-up of " ?" can shift it by a character or two).
  const approx = tokenizer.decode(windowIds.slice(0, budget)).length;
  let cut = Math.min(approx, window.length);
  while (cut > 0 && !/\s/.test(window[cut])) cut--;
  return window.slice(0, cut).trimEnd();
}

interface Assembled {
  prompt: string;
  /** Per plan (target first): where its text starts in the prompt. */
  starts: number[];
  texts: string[];
  plans: NeedlePlan[];
  /** Character where the question starts. */
  questionAt: number;
}

function assemble(hay: string, plans: NeedlePlan[], texts: string[], question: string): Assembled {
  const at = plans.map((p) => insertionPoint(hay, p.depth));
  // Prompt order: by insertion point, then by depth, then target first.
  const order = plans.map((_, i) => i).sort((a, b) => at[a] - at[b] || plans[a].depth - plans[b].depth || a - b);
  const starts = new Array<number>(plans.length);
  let prompt = '';
  let from = 0;
  for (const i of order) {
    prompt += hay.slice(from, at[i]);
    from = at[i];
    starts[i] = prompt.length;
    prompt += texts[i];
  }
  prompt += hay.slice(from);
  const questionAt = prompt.length;
  return { prompt: prompt + question, starts, texts, plans, questionAt };
}

function describe(
  tokenizer: TextTokenizer,
  spec: NeedleSpec,
  template: NeedleTemplate,
  built: Assembled,
  inputIds: number[],
  answer: string,
  prefix: number,
): NeedleSample {
  const { prompt, plans, texts, starts } = built;
  const full = tokenizer.encode(prompt + answer);
  if (full.length <= inputIds.length || inputIds.some((id, i) => full[i] !== id)) {
    throw new HeadwiseError(
      `template ${template.name}: the answer ${JSON.stringify(answer)} merges with the end of the prompt into other tokens; ` +
        'end the question and start the answer so that a token boundary falls between them (e.g. "... is" + " {value}.")',
    );
  }
  const answerIds = full.slice(inputIds.length);
  const mapper = new TokenSpanMapper(tokenizer, prompt, inputIds, prefix);
  // The question starts with its first non-space character's token (a leading "\n" may merge with the haystack).
  const qText = prompt.slice(built.questionAt);
  const questionStart = mapper.tokenAt(built.questionAt + Math.max(0, qText.search(/\S/)));
  const haystackTokens = Math.max(1, questionStart - prefix);

  const placed = plans.map((plan, i): PlacedNeedle & { index: number } => {
    const text = texts[i];
    const lead = text.length - text.trimStart().length;
    const core = text.trim();
    const charSpan = { start: starts[i] + lead, end: starts[i] + lead + core.length };
    const span = mapper.tokenSpan(charSpan);
    const valueSpans: TokenSpan[] = [];
    for (let v = text.indexOf(plan.value); v >= 0; v = text.indexOf(plan.value, v + plan.value.length)) {
      const valueSpan = mapper.tokenSpan({ start: starts[i] + v, end: starts[i] + v + plan.value.length });
      const decoded = tokenizer.decode(inputIds.slice(valueSpan.start, valueSpan.end));
      check(decoded.includes(plan.value), `value span of ${plan.value} decodes to ${JSON.stringify(decoded)} (token mapping is off)`);
      valueSpans.push(valueSpan);
    }
    return {
      index: i,
      key: plan.key,
      value: plan.value,
      text,
      depth: plan.depth,
      tokenDepth: (span.start - prefix) / haystackTokens,
      charSpan,
      span,
      valueSpans,
    };
  });
  placed.sort((a, b) => a.charSpan.start - b.charSpan.start);
  const target = placed.findIndex((p) => p.index === 0);
  const needles = placed.map(({ index: _index, ...needle }) => needle);
  return {
    variant: spec.variant,
    seed: spec.seed,
    contextTokens: spec.contextTokens,
    template,
    prompt,
    answer,
    value: plans[0].value,
    key: plans[0].key,
    inputIds,
    answerIds,
    needles,
    target,
    questionStart,
  };
}
