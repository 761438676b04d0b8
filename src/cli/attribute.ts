/**
 * `headwise attribute`: direct logit attribution of every head at one position and the logit lens per
 * layer (`patching/attribution.ts`), as a table or as JSON (`--json`, `headwise.attribution/1` of
 * `patching/format.ts`). This file parses flags and prints.
 */
import { Command } from 'commander';
import { directLogitAttribution } from '../patching/attribution.js';
import { intArg, loadModel, modelOptions, printJson, readPromptFlags, type ModelFlags } from './common.js';

interface Flags extends ModelFlags {
  prompt?: string;
  promptFile?: string;
  answer: string;
  wrong?: string;
  position?: number;
  top: number;
  json?: boolean;
}

export function attributeCommand(): Command {
  const cmd = new Command('attribute')
    .description("direct logit attribution: each head's write to the residual stream through the final norm (scale frozen at this run) onto logit(answer) − logit(wrong); and the logit lens per layer")
    .option('-p, --prompt <text>', 'the prompt')
    .option('--prompt-file <file>', 'read the prompt from a file')
    .requiredOption('--answer <text>', 'the answer whose logit is attributed (its first token)')
    .option('--wrong <text>', 'subtract the logit of this answer (its first token)')
    .option('--position <n>', 'prompt position read (default the last)', intArg(0))
    .option('--top <n>', 'heads to print without --json', intArg(1), 10)
    .option('--json', 'print the result as one JSON object (headwise.attribution/1)');
  return modelOptions(cmd).action(async (flags: Flags) => {
    const prompt = readPromptFlags(flags);
    const model = await loadModel(flags);
    try {
      const r = await directLogitAttribution(model, prompt, { answer: flags.answer, wrong: flags.wrong, position: flags.position });
      if (flags.json) return printJson(r);
      console.log(`${r.model} @ ${r.position}: logit(${JSON.stringify(r.answer.text)})${r.wrong ? ` − logit(${JSON.stringify(r.wrong.text)})` : ''} = ${r.logitDiff.toFixed(4)}; terms sum to ${r.sum.toFixed(4)} (${r.norm})`);
      console.log('head     attribution');
      for (const h of [...r.heads].sort((a, b) => Math.abs(b.attribution) - Math.abs(a.attribution)).slice(0, flags.top)) console.log(`${`${h.layer}:${h.head}`.padEnd(9)}${h.attribution.toFixed(4).padStart(10)}`);
      console.log(`embeddings ${r.embed.toFixed(4)}; MLPs ${r.mlp.map((x) => x.toFixed(2)).join(' ')}; attention biases ${r.attnBias.reduce((a, b) => a + b, 0).toFixed(4)}; final norm bias ${r.normBias.toFixed(4)}; LM head bias ${r.lmHeadBias.toFixed(4)}`);
      console.log(`logit lens (per layer): ${r.logitLens.map((x) => x.logitDiff.toFixed(2)).join(' ')}`);
    } finally {
      await model.dispose();
    }
  });
}
