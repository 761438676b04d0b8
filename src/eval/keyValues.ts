/**
 * What needles are made of: keys (lower-case English words of 4 to 10 letters, from a built-in list of
 * everyday nouns so that they read naturally in "the special magic number for {key}") and values
 * (random integers from 10000 to 9999999, the range the reference models were trained on). Draws are
 * seeded and distinct within a sample.
 */
import { check } from '../errors.js';
import type { Random } from './random.js';

export const VALUE_MIN = 10000;
export const VALUE_MAX = 9999999;

/** Built-in key words: lower-case, 4–10 letters, no duplicates. */
export const KEY_WORDS: readonly string[] = [
  'apple', 'anchor', 'basket', 'bottle', 'bridge', 'butter', 'button', 'camera', 'candle', 'canyon',
  'carpet', 'castle', 'cellar', 'cherry', 'circle', 'closet', 'cloud', 'copper', 'cotton', 'desert',
  'dinner', 'doctor', 'dragon', 'engine', 'falcon', 'feather', 'forest', 'fountain', 'garden', 'ginger',
  'glacier', 'hammer', 'harbor', 'helmet', 'island', 'jacket', 'jungle', 'kettle', 'kitchen', 'ladder',
  'lantern', 'lemon', 'letter', 'library', 'meadow', 'mirror', 'monkey', 'mountain', 'napkin', 'needle',
  'orange', 'oyster', 'packet', 'palace', 'parrot', 'pencil', 'pepper', 'piano', 'pillow', 'planet',
  'pocket', 'potato', 'rabbit', 'ribbon', 'river', 'rocket', 'saddle', 'salmon', 'sandal', 'school',
  'signal', 'silver', 'spider', 'spoon', 'statue', 'sugar', 'summer', 'table', 'teapot', 'thunder',
  'ticket', 'tiger', 'timber', 'tomato', 'tower', 'turtle', 'umbrella', 'valley', 'velvet', 'violin',
  'wagon', 'walnut', 'window', 'winter', 'wizard', 'yellow', 'zebra', 'almond', 'badger', 'beacon',
  'blanket', 'cabinet', 'compass', 'cookie', 'crystal', 'dolphin', 'elephant', 'festival', 'giraffe', 'harvest',
  'horizon', 'journal', 'kangaroo', 'lighthouse', 'magnet', 'marble', 'notebook', 'octopus', 'penguin', 'pyramid',
  'sapphire', 'scarecrow', 'snowflake', 'squirrel', 'sunflower', 'telescope', 'tractor', 'trumpet', 'volcano', 'waterfall',
];

/** k distinct keys drawn from `words`. */
export function drawKeys(rng: Random, k: number, words: readonly string[] = KEY_WORDS): string[] {
  check(k <= words.length, `cannot draw ${k} distinct keys from ${words.length} words`);
  return rng.sample(words, k);
}

/** k distinct values in [min, max], as decimal strings. */
export function drawValues(rng: Random, k: number, min = VALUE_MIN, max = VALUE_MAX): string[] {
  check(max - min + 1 >= k, `cannot draw ${k} distinct values from [${min}, ${max}]`);
  const values = new Set<string>();
  while (values.size < k) values.add(String(rng.int(min, max)));
  return [...values];
}
