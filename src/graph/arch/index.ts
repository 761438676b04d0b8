/** The architecture registry: model family -> the file that says how its blocks are built. */
import type { Family } from '../../hf/config.js';
import type { ArchFactory } from './arch.js';
import { gpt2Arch } from './gpt2.js';
import { llamaArch } from './llama.js';
import { mistralArch } from './mistral.js';
import { qwen2Arch } from './qwen2.js';
import { qwen3Arch } from './qwen3.js';

export const ARCHITECTURES: Record<Family, ArchFactory> = {
  llama: llamaArch,
  mistral: mistralArch,
  qwen2: qwen2Arch,
  qwen3: qwen3Arch,
  gpt2: gpt2Arch,
};
