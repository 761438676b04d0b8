/** `headwise generate`: run a prompt through a model and print (or stream) the continuation. */
import { Command, Option } from 'commander';
import { HeadwiseError } from '../errors.js';
import { generate } from '../runtime/generate.js';
import { floatArg, intArg, loadModel, modelOptions, printJson, readPromptFlags, type ModelFlags } from './common.js';
import { bindFlagSpec, interventionOptions, resolveInterventionFlags, type InterventionFlags } from './interventionFlags.js';
import { kvOptions, kvReport, resolveCacheSetup, type KvFlags } from './kvFlags.js';

interface Flags extends ModelFlags, KvFlags, InterventionFlags {
  prompt?: string;
  promptFile?: string;
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
  json?: boolean;
  chat?: boolean;
}

export function generateCommand(): Command {
  const cmd = new Command('generate')
    .description('generate a continuation of a prompt')
    .option('-p, --prompt <text>', 'prompt text')
    .option('-f, --prompt-file <file>', 'read the prompt from a file')
    .option('-n, --max-new-tokens <n>', 'tokens to generate', intArg(1, 1_000_000), 32)
    .option('-t, --temperature <t>', 'sampling temperature (0 = greedy)', floatArg(0, 100), 0)
    .option('--top-k <k>', 'sample among the k most likely tokens', intArg(1))
    .option('--top-p <p>', 'nucleus sampling mass', floatArg(0, 1, { exclusiveMin: true }))
    .option('--seed <n>', 'random seed for sampling', intArg(0), 0)
    .option('--chat', "wrap the prompt as a user message with the tokenizer's chat template")
    .option('--json', 'print one JSON object instead of streaming text');
  modelOptions(cmd);
  kvOptions(cmd);
  interventionOptions(cmd);
  return cmd.action(async (flags: Flags) => {
    const text = readPromptFlags(flags);
    const model = await loadModel(flags);
    try {
      if (!model.tokenizer) throw new HeadwiseError(`${model.ckpt.dir}: no tokenizer.json, cannot encode a text prompt`);
      const prompt = flags.chat ? model.tokenizer.applyChatTemplate([{ role: 'user', content: text }]) : text;
      const ids = model.tokenize(prompt);
      const cache = await resolveCacheSetup(model, flags);
      const flagSpec = resolveInterventionFlags(model, flags);
      const bound = flagSpec ? await bindFlagSpec(model, flagSpec, ids, { prompt, cache: cache.setup }) : null;
      const stream = !flags.json;
      const result = await generate(model, ids, {
        maxNewTokens: flags.maxNewTokens,
        temperature: flags.temperature,
        topK: flags.topK,
        topP: flags.topP,
        seed: flags.seed,
        cache: cache.setup,
        hookOptions: bound?.hookOptions,
        hooks: bound?.hooks,
        onToken: stream ? (_id, delta) => process.stdout.write(delta) : undefined,
      });
      if (flags.json) {
        printJson({
          text: result.text,
          tokens: result.tokens,
          promptTokens: result.promptTokens,
          stoppedBy: result.stoppedBy,
          kv: cache.describe,
          interventions: flagSpec ? flagSpec.describe.split('\n') : [],
          // bytes held by the KV buffers (measured), full attention's for the same tokens, and r + (1 − r)(S + W)/N
          ...kvReport(model, flags, cache.setup, result.kvBytes, result.promptTokens + Math.max(0, result.tokens.length - 1), result.kvBytesFull, { bytes: result.kvBytesAttended }),
          prefillMs: Math.round(result.prefillMs),
          decodeMs: Math.round(result.decodeMs),
          decodeTokensPerSecond: result.tokens.length > 1 ? (result.tokens.length - 1) / (result.decodeMs / 1000) : null,
        });
      } else {
        if (!stream) process.stdout.write(result.text);
        process.stdout.write('\n');
      }
    } finally {
      await model.dispose();
    }
  });
}
