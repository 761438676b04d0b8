/** The shared metric display: fixed scales stay fixed, KL goes on a log scale, Wilson intervals against known values. */
import { describe, expect, it } from 'vitest';
import { accuracyText, colorScale, colorValue, formatShort, metricDisplay, METRIC_DISPLAY, textColorOn, wilson } from './metricDisplay.js';

describe('metric display', () => {
  it('puts shares on a fixed [0, 1] domain whatever the data', () => {
    for (const m of ['induction', 'duplicateToken', 'retrieval', 'sink', 'previousToken', 'attention']) {
      expect(colorScale(metricDisplay(m), [[0.037, 0.001], [0.007, 0]]).domain, m).toEqual([0, 1]);
      expect(colorScale(metricDisplay(m), [[0.9]]).type).toBe('linear');
    }
  });

  it('draws KL on a log scale four decades below the largest value, clamping smaller ones', () => {
    const s = colorScale(metricDisplay('streamingHarm'), [[0.02, 0.5], [2.0, 0]]);
    expect(s.type).toBe('log');
    expect(s.domain[1]).toBe(2);
    expect(s.domain[0]).toBeCloseTo(2e-4, 12);
    expect(colorValue(s, 0)).toBeCloseTo(2e-4, 12);
    expect(colorScale(metricDisplay('ablationKl'), [[0.1]]).type).toBe('log');
  });

  it('falls back to a diverging scale for signed values, and to linear-from-0 for unknown metrics', () => {
    const s = colorScale(metricDisplay('streamingHarm'), [[-0.3, 0.1]]);
    expect(s).toMatchObject({ type: 'linear', domain: [-0.3, 0.3], pivot: 0 });
    expect(colorScale(metricDisplay('somethingNew'), [[2, 5]]).domain).toEqual([0, 5]);
    expect(metricDisplay('somethingNew').title).toBe('somethingNew');
  });

  it('names every metric in words with its code name kept', () => {
    for (const [code, d] of Object.entries(METRIC_DISPLAY)) {
      expect(d.code).toBe(code);
      expect(d.title).not.toBe(code);
    }
  });

  it('picks a text colour that reads on the cell', () => {
    const s = colorScale(metricDisplay('sink'), [[0.5]]);
    expect(textColorOn(s, 0.95)).toBe('white');
    expect(textColorOn(s, 0.05)).toBe('black');
  });

  it('writes short cell values', () => {
    expect(formatShort(0.7712)).toBe('.771');
    expect(formatShort(12.345)).toBe('12.3');
    expect(formatShort(0.00004)).toBe('4e-5');
    expect(formatShort(NaN)).toBe('–');
  });

  it('computes Wilson intervals (0 of 10: the textbook upper bound 0.2775)', () => {
    const a = wilson(0, 10);
    expect(a.lo).toBe(0);
    expect(a.hi).toBeCloseTo(0.27753, 4);
    const b = wilson(63, 96);
    expect(b.lo).toBeCloseTo(0.55688, 4);
    expect(b.hi).toBeCloseTo(0.74360, 4);
    expect(wilson(5, 5).hi).toBe(1);
    expect(accuracyText(0.5, 4)).toBe('50% (n = 4, 95% CI 15–85%)');
  });
});
