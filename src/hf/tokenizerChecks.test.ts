import { describe, expect, it } from 'vitest';
import { checkTokenizerConfig, checkTokenizerJson } from './tokenizerChecks.js';

const ok = {
  model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b'] },
  added_tokens: [{ id: 0, content: 'a' }],
  pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'ByteLevel' }] },
  post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: 'a', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], special_tokens: { a: { id: 'a', ids: [0], tokens: ['a'] } } },
};

describe('checkTokenizerJson', () => {
  it('accepts a well-formed file', () => expect(() => checkTokenizerJson(ok, 'tokenizer.json')).not.toThrow());

  it.each<[string, unknown, RegExp]>([
    ['single: 5', { ...ok, post_processor: { type: 'TemplateProcessing', single: 5 } }, /tokenizer\.json: post_processor\.single must be an array/],
    ['a bad piece', { ...ok, post_processor: { type: 'TemplateProcessing', single: [{ Special: {} }] } }, /post_processor\.single\[0\] must be/],
    ['vocab true', { ...ok, model: { ...ok.model, vocab: true } }, /model\.vocab must be an object of token → id \(got a boolean\)/],
    ['vocab "x"', { ...ok, model: { ...ok.model, vocab: 'x' } }, /model\.vocab must be an object/],
    ['a fractional id', { ...ok, model: { ...ok.model, vocab: { a: 0.5 } } }, /model\.vocab\["a"\] must be an integer id/],
    ['merges not a list', { ...ok, model: { ...ok.model, merges: {} } }, /model\.merges must be an array/],
    ['a merge without a space', { ...ok, model: { ...ok.model, merges: ['ab'] } }, /model\.merges\[0\]/],
    ['an unknown model', { ...ok, model: { type: 'constructor', vocab: {} } }, /model\.type "constructor" is not supported/],
    ['a stage without type', { ...ok, decoder: { x: 1 } }, /decoder\.type must be a string/],
    ['nested sequence', { ...ok, normalizer: { type: 'Sequence', normalizers: [{ type: 5 }] } }, /normalizer\.normalizers\[0\]\.type/],
    ['an array', [], /must be a JSON object/],
  ])('refuses %s', (_name, json, re) => expect(() => checkTokenizerJson(json, 'tokenizer.json')).toThrow(re));
});

describe('checkTokenizerConfig', () => {
  it('accepts strings, AddedToken objects and named templates', () => {
    expect(() => checkTokenizerConfig({ bos_token: { content: '<s>' }, eos_token: '</s>', chat_template: [{ name: 'default', template: 'x' }], add_bos_token: true }, 'c.json')).not.toThrow();
  });
  it.each<[string, unknown, RegExp]>([
    ['a numeric template', { chat_template: 5 }, /chat_template must be a string or a list/],
    ['a boolean flag as text', { add_bos_token: 'yes' }, /add_bos_token must be true or false/],
    ['a token as a number', { eos_token: 7 }, /eos_token must be a string/],
  ])('refuses %s', (_name, json, re) => expect(() => checkTokenizerConfig(json, 'c.json')).toThrow(re));
});
