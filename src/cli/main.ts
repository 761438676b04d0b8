#!/usr/bin/env node
/**
 * The `headwise` command line (the program is `program.ts`). Every command has --help; bad input ends
 * with one line on stderr (`headwise: error: ...`) and the exit code of the rule in `headwise --help`
 * (1 input, 2 usage), never a stack trace (set HEADWISE_DEBUG=1 for one). SIGINT / SIGTERM remove
 * this process's temporary files before exiting (io/tempFiles.ts).
 */
import os from 'node:os';
import { cleanUpOnSignals, sweepStaleTemps } from '../io/tempFiles.js';
import { runCli } from './program.js';

cleanUpOnSignals();
// Temporaries of killed headwise runs in the temporary folder (ONNX Runtime's private folders).
sweepStaleTemps(os.tmpdir());
const code = await runCli(process.argv.slice(2));
// Success leaves the event loop to finish (serve keeps listening); an error ends the process now.
if (code !== 0) process.exit(code);
