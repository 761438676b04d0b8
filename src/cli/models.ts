/**
 * `headwise models`: the supported model types and what each declares — its one-line summary, and,
 * read off the architecture file instantiated on a small config of that family, the block layout
 * (residual wiring, where the norms sit, q/k norm, positions) and the config fields it reads that
 * change the math. Nothing here is a second copy of the facts: the table is built from
 * `graph/arch/` and `hf/families.ts`.
 */
import { Command } from 'commander';
import { ARCHITECTURE_SUMMARY, ARCHITECTURES } from '../graph/arch/index.js';
import { parseModelConfig } from '../hf/config.js';
import { FAMILIES, FAMILY_READS, type Family } from '../hf/families.js';
import { printJson } from './common.js';

export interface ModelTypeInfo {
  modelType: Family;
  summary: string;
  residual: 'sequential' | 'parallel';
  norms: string[];
  qkNorm: boolean;
  positions: 'rope' | 'learned';
  /** Math-changing config fields read beyond sizes, eps, RoPE, biases and tied embeddings. */
  reads: string[];
}

/** A small config of each family, enough to instantiate its architecture file. */
function sampleConfig(family: Family): Record<string, unknown> {
  if (family === 'gpt2') return { model_type: 'gpt2', n_embd: 64, n_head: 4, n_layer: 1, n_positions: 64, vocab_size: 16 };
  const moe = family === 'mixtral' ? { num_local_experts: 2, num_experts_per_tok: 1 }
    : family === 'qwen2_moe' || family === 'qwen3_moe' ? { num_experts: 2, num_experts_per_tok: 1, moe_intermediate_size: 8 } : {};
  return { model_type: family, hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 1, intermediate_size: 128, vocab_size: 16, max_position_embeddings: 64, ...moe };
}

export function modelTypes(): ModelTypeInfo[] {
  return FAMILIES.map((family) => {
    const arch = ARCHITECTURES[family](parseModelConfig(sampleConfig(family), family));
    const norms = (['attnNorm', 'postAttnNorm', 'mlpNorm', 'postMlpNorm'] as const).filter((n) => arch[n] !== undefined);
    return {
      modelType: family,
      summary: ARCHITECTURE_SUMMARY[family],
      residual: arch.block.residual,
      norms,
      qkNorm: arch.qkNorm !== undefined,
      positions: arch.attention(0).rope ? 'rope' : 'learned',
      reads: FAMILY_READS[family],
    };
  });
}

export function modelsCommand(): Command {
  return new Command('models')
    .description('list the supported model types (config.json model_type) and what each architecture declares')
    .option('--json', 'print one JSON object')
    .action((flags: { json?: boolean }) => {
      const types = modelTypes();
      if (flags.json) return printJson({ modelTypes: types });
      const width = Math.max(...types.map((t) => t.modelType.length));
      for (const t of types) {
        const extra = [t.residual === 'parallel' ? 'parallel residual' : null, t.positions === 'learned' ? 'learned positions' : null, t.reads.length ? `reads ${t.reads.join(', ')}` : null].filter(Boolean);
        process.stdout.write(`${t.modelType.padEnd(width)}  ${t.summary}${extra.length ? ` [${extra.join('; ')}]` : ''}\n`);
      }
      process.stdout.write(`${types.length} model types. Add one: docs/architectures.md\n`);
    });
}
