import { describe, expect, it } from 'vitest';
import { greedyReadout } from './niahRun.js';

// Token id → text: 1 " 48", 2 "29", 3 "37", 4 "1", 5 ".", 6 " the", 7 "30", 0 EOS.
const pieces: Record<number, string> = { 0: '', 1: ' 48', 2: '29', 3: '37', 4: '1', 5: '.', 6: ' the', 7: '30' };
const tok = { decode: (ids: number[]) => ids.map((i) => pieces[i]).join('') };
const sample = { answerIds: [1, 2, 3, 4, 5], value: '4829371' };

describe('greedyReadout', () => {
  it('is correct when every teacher-forced argmax is the answer token', () => {
    expect(greedyReadout(tok, sample, [1, 2, 3, 4, 5], [0])).toMatchObject({ verdict: 'correct', wrong: -1, text: ' 4829371.' });
  });
  it('follows greedy decoding to the first wrong argmax', () => {
    expect(greedyReadout(tok, sample, [1, 2, 7, 4, 5], [0])).toMatchObject({ verdict: 'wrong', wrong: 2, text: ' 482930', greedy: [1, 2, 7] });
    // After the whole value, a token that does not continue the number settles it as correct.
    expect(greedyReadout(tok, sample, [1, 2, 3, 4, 6], [0])).toMatchObject({ verdict: 'correct', wrong: 4 });
    // EOS stops decoding: the text so far is final.
    expect(greedyReadout(tok, sample, [1, 2, 0, 4, 5], [0])).toMatchObject({ verdict: 'wrong', wrong: 2, text: ' 4829' });
  });
  it('is open when what comes next still decides', () => {
    expect(greedyReadout(tok, sample, [6, 2, 3, 4, 5], [0])).toMatchObject({ verdict: 'open', wrong: 0, greedy: [6] });
    // A digit right after the whole value makes a longer number: wrong, whatever follows.
    expect(greedyReadout(tok, sample, [1, 2, 3, 4, 4], [0])).toMatchObject({ verdict: 'wrong', wrong: 4 });
  });
});
