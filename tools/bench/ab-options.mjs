// Same-run A/B of q8/q4 options through the bench's own child runs (dist/bench/main.js --child run):
// every variant is compiled first, then the variants run in turn, `reps` rounds, and the medians and
// per-round ratios to the first variant are printed. Variants are bench flags, separated by '|':
//   node tools/bench/ab-options.mjs MODEL REPS 'q4' 'q4 --accuracy-level 0' 'q4 --chunk 512' 'q4 --block 64'
// (the first word is the format; HEADWISE_CACHE as for any run). Prints one JSON line per variant.
import { execFileSync } from 'node:child_process';
const [model, reps, ...variants] = process.argv.slice(2);
const main = new URL('../../dist/bench/main.js', import.meta.url).pathname;
const child = (v, what) => {
  const [format, ...flags] = v.split(/\s+/);
  const out = execFileSync(process.execPath, [main, '-m', model, '--threads', '2', '--child', what, '--weights', format, ...flags], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').pop());
};
for (const v of variants) child(v, 'compile');
const runs = variants.map(() => []);
for (let r = 0; r < Number(reps); r++) {
  variants.forEach((v, i) => {
    runs[i].push(child(v, 'run'));
    process.stderr.write(`ab-options: round ${r + 1} ${v}: prefill ${runs[i][r].prefillTokensPerSecond.toFixed(1)} decode ${runs[i][r].decodeTokensPerSecond.toFixed(2)}\n`);
  });
}
const med = (x) => { const s = [...x].sort((a, b) => a - b); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
variants.forEach((v, i) => {
  const ratio = (k) => med(runs[i].map((x, r) => x[k] / runs[0][r][k]));
  console.log(JSON.stringify({
    variant: v,
    prefill: med(runs[i].map((x) => x.prefillTokensPerSecond)), decode: med(runs[i].map((x) => x.decodeTokensPerSecond)),
    prefillRatio: ratio('prefillTokensPerSecond'), decodeRatio: ratio('decodeTokensPerSecond'),
    peakRssMB: med(runs[i].map((x) => x.peakRssMB)), loadPeakRssMB: med(runs[i].map((x) => x.loadPeakRssMB)),
  }));
});
