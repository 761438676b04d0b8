/**
 * How the KV cache of each layer is split into groups of KV heads. Each group is one dense buffer of
 * its own length, so a policy can keep the full history for some heads and a short window for others
 * (DuoAttention / RazorAttention style) and really free the memory of the rest. A group belongs to a
 * cache class (e.g. "full", "stream"); all groups of a class hold the same key positions, so one
 * attention mask per class serves every layer.
 */
export interface KvGroup {
  kvHeads: number[];
  cacheClass: string;
  /**
   * How the graph reads the group's past keys/values on the CPU: `group` (default), one head-major
   * [groupKvHeads, past, headDim] input — a banded full-history buffer read in place, or a bounded
   * window buffer — so scores and the weighted sum are one batched matmul each; `head`, one
   * [past, headDim] input per KV head (one small matmul per head; kept for comparison).
   */
  pastInput?: 'head' | 'group';
}

/** Per layer, the groups of KV heads (together covering each KV head exactly once). */
export type KvLayout = KvGroup[][];

export function uniformLayout(numLayers: number, numKvHeads: number, cacheClass = 'full'): KvLayout {
  const all = Array.from({ length: numKvHeads }, (_, i) => i);
  return Array.from({ length: numLayers }, () => [{ kvHeads: all, cacheClass }]);
}

/** Layout with `full[l]` KV heads of layer l in class "full" and the rest in class "stream". */
export function splitLayout(numLayers: number, numKvHeads: number, isFull: (layer: number, kvHead: number) => boolean): KvLayout {
  return Array.from({ length: numLayers }, (_, l) => {
    const full: number[] = [];
    const stream: number[] = [];
    for (let g = 0; g < numKvHeads; g++) (isFull(l, g) ? full : stream).push(g);
    const groups: KvGroup[] = [];
    if (full.length) groups.push({ kvHeads: full, cacheClass: 'full' });
    if (stream.length) groups.push({ kvHeads: stream, cacheClass: 'stream' });
    return groups;
  });
}

/** The layout with every group of class `cacheClass` read as one `group` input. */
export function groupPastInput(layout: KvLayout, cacheClass: string): KvLayout {
  return layout.map((groups) => groups.map((g) => (g.cacheClass === cacheClass ? { ...g, pastInput: 'group' as const } : g)));
}

export function layoutClasses(layout: KvLayout): string[] {
  return [...new Set(layout.flatMap((groups) => groups.map((g) => g.cacheClass)))].sort();
}

/** Query heads served by a group, in the order the graph lays them out (KV-head major). */
export function groupQueryHeads(group: KvGroup, numHeads: number, numKvHeads: number): number[] {
  const rep = numHeads / numKvHeads;
  return group.kvHeads.flatMap((g) => Array.from({ length: rep }, (_, r) => g * rep + r));
}
