/** The architecture registry: model family -> the file that says how its blocks are built. */
import type { Family } from '../../hf/config.js';
import type { ArchFactory } from './arch.js';
import { gemmaArch } from './gemma.js';
import { gemma2Arch } from './gemma2.js';
import { gemma3Arch } from './gemma3.js';
import { gpt2Arch } from './gpt2.js';
import { gptNeoxArch } from './gptNeox.js';
import { graniteArch } from './granite.js';
import { llamaArch } from './llama.js';
import { mistralArch } from './mistral.js';
import { mixtralArch } from './mixtral.js';
import { olmoArch } from './olmo.js';
import { olmo2Arch } from './olmo2.js';
import { phiArch } from './phi.js';
import { phi3Arch } from './phi3.js';
import { qwen2Arch } from './qwen2.js';
import { qwen2MoeArch, qwen3MoeArch } from './qwen2Moe.js';
import { qwen3Arch } from './qwen3.js';
import { stablelmArch } from './stablelm.js';
import { starcoder2Arch } from './starcoder2.js';

export const ARCHITECTURES: Record<Family, ArchFactory> = {
  llama: (c) => llamaArch(c),
  mistral: mistralArch,
  qwen2: qwen2Arch,
  qwen3: qwen3Arch,
  gpt2: gpt2Arch,
  gemma: gemmaArch,
  gemma2: gemma2Arch,
  gemma3_text: gemma3Arch,
  phi3: phi3Arch,
  phi: phiArch,
  gpt_neox: gptNeoxArch,
  olmo: olmoArch,
  olmo2: olmo2Arch,
  granite: graniteArch,
  mixtral: mixtralArch,
  qwen2_moe: qwen2MoeArch,
  qwen3_moe: qwen3MoeArch,
  starcoder2: starcoder2Arch,
  stablelm: stablelmArch,
};
