/**
 * Structural checks on tokenizer.json and tokenizer_config.json before they reach the tokenizer
 * library, which otherwise fails deep inside with messages about its own code ("type is not iterable",
 * "config.merges.map is not a function") or accepts nonsense (a vocab of `true`). Checked: the model
 * (type, vocab, merges), added tokens, the shape of every pipeline stage (normalizer, pre-tokenizer,
 * post-processor, decoder, including TemplateProcessing's pieces), and in tokenizer_config.json the
 * types of the fields headwise or the library read. Each failure is one line naming the file and field.
 * The chat template is compiled only when used (`tokenizer.ts`).
 */
import { HeadwiseError } from '../errors.js';
import { isPlainObject, nestedDeeperThan } from '../io/json.js';

export const MODEL_TYPES = ['BPE', 'WordPiece', 'WordLevel', 'Unigram'] as const;
const MAX_DEPTH = 64;

type Fail = (field: string, msg: string) => never;

function failer(where: string): Fail {
  return (field, msg) => {
    throw new HeadwiseError(`${where}: ${field} ${msg}`);
  };
}

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);
const isNat = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

/** Pipeline stages may nest (`Sequence`); each is null or an object with a string `type`. */
function checkStage(v: unknown, field: string, fail: Fail): void {
  if (v === null || v === undefined) return;
  if (!isPlainObject(v)) fail(field, `must be an object or null (got ${kind(v)})`);
  if (typeof v.type !== 'string') fail(`${field}.type`, `must be a string (got ${kind(v.type)})`);
  for (const list of ['normalizers', 'pretokenizers', 'processors', 'decoders']) {
    const items = v[list];
    if (items === undefined) continue;
    if (!Array.isArray(items)) fail(`${field}.${list}`, `must be an array (got ${kind(items)})`);
    items.forEach((item, i) => checkStage(item, `${field}.${list}[${i}]`, fail));
  }
  if (v.type === 'TemplateProcessing') checkTemplateProcessing(v, field, fail);
}

function checkTemplateProcessing(v: Record<string, unknown>, field: string, fail: Fail): void {
  for (const part of ['single', 'pair']) {
    const pieces = v[part];
    if (pieces === undefined) continue;
    if (!Array.isArray(pieces)) fail(`${field}.${part}`, `must be an array of {SpecialToken} / {Sequence} pieces (got ${kind(pieces)})`);
    pieces.forEach((p, i) => {
      const at = `${field}.${part}[${i}]`;
      if (!isPlainObject(p) || Object.keys(p).length !== 1 || !['SpecialToken', 'Sequence'].includes(Object.keys(p)[0])) {
        fail(at, 'must be {"SpecialToken": {...}} or {"Sequence": {...}}');
      }
      const inner = Object.values(p)[0];
      if (!isPlainObject(inner) || typeof inner.id !== 'string' || (inner.type_id !== undefined && !isNat(inner.type_id))) {
        fail(at, 'must hold {"id": string, "type_id": integer ≥ 0}');
      }
    });
  }
  const special = v.special_tokens;
  if (special === undefined) return;
  if (!isPlainObject(special)) fail(`${field}.special_tokens`, `must be an object (got ${kind(special)})`);
  for (const [name, t] of Object.entries(special)) {
    const at = `${field}.special_tokens[${JSON.stringify(name)}]`;
    if (!isPlainObject(t) || typeof t.id !== 'string' || !Array.isArray(t.ids) || !t.ids.every(isNat) || !Array.isArray(t.tokens) || !t.tokens.every((x) => typeof x === 'string')) {
      fail(at, 'must be {"id": string, "ids": [integers], "tokens": [strings]}');
    }
  }
}

function checkModel(model: unknown, fail: Fail): void {
  if (!isPlainObject(model)) fail('model', `must be an object (got ${kind(model)})`);
  const type = model.type ?? (model.merges !== undefined ? 'BPE' : undefined);
  if (typeof type !== 'string' || !(MODEL_TYPES as readonly string[]).includes(type)) {
    fail('model.type', `${type === undefined ? 'is missing' : `${JSON.stringify(type) ?? kind(type)} is not supported`} (supported: ${MODEL_TYPES.join(', ')})`);
  }
  const vocab = model.vocab;
  if (type === 'Unigram') {
    if (!Array.isArray(vocab) || !vocab.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && typeof e[1] === 'number' && Number.isFinite(e[1]))) {
      fail('model.vocab', 'must be an array of [piece, score] pairs for Unigram');
    }
    return;
  }
  if (!isPlainObject(vocab)) fail('model.vocab', `must be an object of token → id (got ${kind(vocab)})`);
  for (const [token, id] of Object.entries(vocab)) {
    if (!isNat(id)) fail(`model.vocab[${JSON.stringify(token)}]`, `must be an integer id ≥ 0 (got ${JSON.stringify(id)})`);
  }
  if (Object.keys(vocab).length === 0) fail('model.vocab', 'is empty');
  if (type === 'BPE') {
    const merges = model.merges;
    if (merges === undefined) return;
    if (!Array.isArray(merges)) fail('model.merges', `must be an array (got ${kind(merges)})`);
    merges.forEach((m, i) => {
      const ok = (typeof m === 'string' && m.includes(' ')) || (Array.isArray(m) && m.length === 2 && m.every((x) => typeof x === 'string'));
      if (!ok) fail(`model.merges[${i}]`, 'must be "a b" or ["a", "b"]');
    });
  }
}

/** Checks a parsed tokenizer.json; `where` names the file. */
export function checkTokenizerJson(json: unknown, where: string): asserts json is Record<string, unknown> {
  const fail: Fail = failer(where);
  if (!isPlainObject(json)) throw new HeadwiseError(`${where}: must be a JSON object`);
  if (nestedDeeperThan(json, MAX_DEPTH)) throw new HeadwiseError(`${where}: nested more than ${MAX_DEPTH} levels deep`);
  checkModel(json.model, fail);
  const added = json.added_tokens;
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added)) fail('added_tokens', `must be an array (got ${kind(added)})`);
    added.forEach((t, i) => {
      if (!isPlainObject(t) || !isNat(t.id) || typeof t.content !== 'string') fail(`added_tokens[${i}]`, 'must be {"id": integer ≥ 0, "content": string, ...}');
    });
  }
  for (const stage of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) checkStage(json[stage], stage, fail);
  for (const opt of ['truncation', 'padding']) {
    const v = json[opt];
    if (v !== undefined && v !== null && !isPlainObject(v)) fail(opt, `must be an object or null (got ${kind(v)})`);
  }
}

/** Fields of tokenizer_config.json that must be booleans when present. */
const BOOLEAN_FIELDS = ['add_bos_token', 'add_eos_token', 'clean_up_tokenization_spaces', 'legacy', 'do_lower_case'];

/** Checks a parsed tokenizer_config.json; `where` names the file. */
export function checkTokenizerConfig(config: unknown, where: string): asserts config is Record<string, unknown> {
  const fail: Fail = failer(where);
  if (!isPlainObject(config)) throw new HeadwiseError(`${where}: must be a JSON object`);
  if (nestedDeeperThan(config, MAX_DEPTH)) throw new HeadwiseError(`${where}: nested more than ${MAX_DEPTH} levels deep`);
  for (const f of BOOLEAN_FIELDS) {
    if (config[f] !== undefined && config[f] !== null && typeof config[f] !== 'boolean') fail(f, `must be true or false (got ${kind(config[f])})`);
  }
  for (const f of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
    const v = config[f];
    if (v === undefined || v === null || typeof v === 'string') continue;
    if (!isPlainObject(v) || typeof v.content !== 'string') fail(f, `must be a string, {"content": string} or null (got ${kind(v)})`);
  }
  const tpl = config.chat_template;
  if (tpl !== undefined && tpl !== null && typeof tpl !== 'string') {
    if (!Array.isArray(tpl) || !tpl.every((t) => isPlainObject(t) && typeof t.name === 'string' && typeof t.template === 'string')) {
      fail('chat_template', 'must be a string or a list of {"name": string, "template": string}');
    }
  }
  if (config.model_max_length !== undefined && config.model_max_length !== null && typeof config.model_max_length !== 'number') {
    fail('model_max_length', `must be a number (got ${kind(config.model_max_length)})`);
  }
}
