/**
 * ONNX Runtime sessions: the one place that talks to onnxruntime-node. Chooses the execution
 * provider (`cpu`, or `webgpu` where the binding ships it) and the thread count.
 */
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { HeadwiseError } from '../errors.js';

export type Device = 'cpu' | 'webgpu';
export const DEVICES: readonly Device[] = ['cpu', 'webgpu'];

export interface SessionOptions {
  device?: Device;
  threads?: number;
}

export function defaultThreads(): number {
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}

export async function createSession(file: string, opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  const device = opts.device ?? 'cpu';
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [device],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: opts.threads ?? defaultThreads(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableCpuMemArena: true,
    enableMemPattern: false,
    logSeverityLevel: 3,
  };
  if (device === 'webgpu') {
    // Keep KV caches and hook outputs on the GPU; the runtime downloads only what it reads.
    options.preferredOutputLocation = 'gpu-buffer';
  }
  try {
    return await ort.InferenceSession.create(file, options);
  } catch (e) {
    const msg = String((e as Error).message ?? e).split('\n')[0];
    if (device !== 'cpu') throw new HeadwiseError(`device ${device}: cannot create an ONNX Runtime session (${msg})`);
    throw e;
  }
}

export { ort };
