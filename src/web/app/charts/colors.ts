/**
 * The app's side of the shared metric display (`atlas/metricDisplay.ts`): a colour scale as a
 * function value → CSS colour for canvases, with the same schemes and domains Plot gets in the SVG
 * charts and the report, and Plot legend options that say which scale it is.
 */
import * as d3 from 'd3';
import * as Plot from '@observablehq/plot';
import { colorValue, scalePosition, type ColorScale } from '../../../atlas/metricDisplay.js';

const SCHEMES: Record<string, (t: number) => string> = {
  blues: d3.interpolateBlues,
  greens: d3.interpolateGreens,
  purples: d3.interpolatePurples,
  ylorrd: d3.interpolateYlOrRd,
  rdylgn: d3.interpolateRdYlGn,
  rdbu: d3.interpolateRdBu,
  viridis: d3.interpolateViridis,
};

/** value → colour on `scale`; `sqrtRamp` spreads small shares (attention) without moving the [0, 1] domain. */
export function colorFn(scale: ColorScale, sqrtRamp = false): (v: number) => string {
  const interp = SCHEMES[scale.scheme] ?? d3.interpolateViridis;
  return (v) => {
    const t = scalePosition(scale, v);
    return interp(sqrtRamp ? Math.sqrt(t) : t);
  };
}

/** Plot options for the same scale (for Plot.cell / Plot.legend). */
export function plotColor(scale: ColorScale, label: string, sqrtRamp = false): Plot.ScaleOptions {
  return {
    type: sqrtRamp ? 'sqrt' : scale.type,
    scheme: scale.scheme as Plot.ColorScheme,
    domain: scale.domain,
    clamp: scale.clamp,
    pivot: scale.pivot,
    label: `${label} (${sqrtRamp ? `${scale.note}, square-root ramp` : scale.note})`,
  };
}

export function legend(scale: ColorScale, label: string, width = 260, sqrtRamp = false): HTMLElement | SVGSVGElement {
  return Plot.legend({ color: plotColor(scale, label, sqrtRamp), width, tickFormat: scale.type === 'log' ? '~g' : undefined }) as HTMLElement | SVGSVGElement;
}

export { colorValue };
