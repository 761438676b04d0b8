/**
 * Fuzz: tokenizer.json and tokenizer_config.json. A small byte-level BPE cut from the bundled model's
 * tokenizer (its first 400 ids and the merges among them) is mutated — vocab of the wrong type,
 * post-processor pieces replaced (`"single": 5`), merges broken, added tokens, nesting deep — and the
 * config gets random chat templates (`{% for %}`), token fields and flags. Each case builds, encodes,
 * decodes and (with a template) renders a chat, or is refused with one clean line.
 */
import fs from 'node:fs';
import { expect, it } from 'vitest';
import { HfTokenizer } from '../../src/hf/tokenizer.js';
import { clean, edgeValue, mutate, newTally, record, seeded } from './fuzz.js';

const full = JSON.parse(fs.readFileSync('models/ref-llama-7m/tokenizer.json', 'utf8')) as Record<string, any>;
const vocab = Object.fromEntries(Object.entries(full.model.vocab as Record<string, number>).filter(([, id]) => id < 400));
const merges = (full.model.merges as [string, string][]).filter(([a, b]) => a + b in vocab && a in vocab && b in vocab);
const small = { ...full, model: { ...full.model, vocab, merges } };
const baseConfig = JSON.parse(fs.readFileSync('models/ref-llama-7m/tokenizer_config.json', 'utf8')) as Record<string, unknown>;
const TEMPLATES = [
  '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}',
  '{% for %}', '{{', '{% if %}{% endif %}', '{{ messages[0].content | upper }}', '{{ raise_exception("no") }}', '{% macro %}', '{{ bos_token }}{{ messages }}', '', '{% set x = 1 %}{{ x.y.z }}',
];
const TEXTS = ['Hello, world', '', ' ', 'é\u0000😀', 'The special magic number is 12345.', '<|endoftext|>'];

it('fuzz: 1 500 mutated tokenizer files build and run, or are refused with one clean line', () => {
  const rng = seeded(31);
  const tally = newTally();
  expect(clean(tally, 'cut tokenizer as is', () => void HfTokenizer.fromJson(small, baseConfig).encode('Hello'))).toBe('accepted');
  for (let i = 0; i < 1500; i++) {
    const r = rng.next();
    let json: unknown = small;
    let config: unknown = baseConfig;
    if (r < 0.55) {
      // Aim most mutations at the parts the library trusts: the model and the pipeline stages.
      const part = rng.pick(['model', 'post_processor', 'pre_tokenizer', 'decoder', 'added_tokens', 'normalizer', 'root']);
      json = part === 'root' ? mutate(small, rng) : { ...small, [part]: rng.chance(0.3) ? edgeValue(rng) : mutate(small[part] ?? {}, rng) };
    } else if (r < 0.65) {
      json = { ...small, post_processor: { type: 'TemplateProcessing', single: edgeValue(rng), pair: small.post_processor.pair, special_tokens: rng.chance(0.5) ? edgeValue(rng) : small.post_processor.special_tokens } };
    } else if (r < 0.75) {
      json = { ...small, model: { ...small.model, [rng.pick(['vocab', 'merges', 'type'])]: edgeValue(rng) } };
    } else {
      config = rng.chance(0.5) ? { ...baseConfig, chat_template: rng.chance(0.8) ? rng.pick(TEMPLATES) : edgeValue(rng) } : mutate({ ...baseConfig, chat_template: rng.pick(TEMPLATES) }, rng);
    }
    clean(tally, `tokenizer case ${i}`, () => {
      const tok = HfTokenizer.fromJson(json, config);
      for (let k = 0; k < 2; k++) {
        const ids = tok.encode(rng.pick(TEXTS));
        tok.decode(ids);
        tok.offsets(ids);
      }
      if (tok.hasChatTemplate) tok.applyChatTemplate([{ role: 'user', content: 'hi' }]);
    });
  }
  record('tokenizer files', tally);
  expect(tally.cases).toBeGreaterThanOrEqual(1500);
});
