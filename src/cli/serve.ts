/** `headwise serve`: the web app on a local port, with the model loaded once in this process. */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { HeadwiseError } from '../errors.js';
import { readAtlas } from '../atlas/file.js';
import { readResultsFile, type ModelShape } from '../atlas/researchCliResults.js';
import { ResultFormatError, type ResearchResult } from '../atlas/researchResult.js';
import { atlasRunner, niahRunner } from '../web/runners.js';
import { isLoopbackHost } from '../web/http.js';
import { startServer } from '../web/server.js';
import { intArg, loadModel, modelOptions, PACKAGE_ROOT, type ModelFlags } from './common.js';

/** Where `npm run build` puts the front-end (see src/web/app/vite.config.ts). */
export const WEB_APP_DIR = path.join(PACKAGE_ROOT, 'dist', 'webapp');

interface Flags extends ModelFlags {
  port: number;
  host: string;
  allowRemote?: boolean;
  atlas?: string;
  results?: string;
}

export function serveCommand(): Command {
  const cmd = new Command('serve')
    .description('start the web app: atlas, head patterns, interventions playground, needles & KV')
    .option('--port <n>', 'port to listen on (0 = any free port)', intArg(0, 65535), 8080)
    .option('--host <address>', 'loopback address to bind (127.0.0.1, ::1, localhost, ::ffff:127.0.0.1); others need --allow-remote', '127.0.0.1')
    .option('--allow-remote', 'allow a --host that is not loopback: anyone who can reach it can run the model')
    .option('--atlas <file>', 'atlas JSON to show (from `headwise atlas --out FILE`)')
    .option('--results <file>', 'research results JSON to show: the --json output of `headwise patch` (--mode head, head-pos), `attribute` or `importance`, or the format in src/atlas/researchResult.ts');
  modelOptions(cmd);
  return cmd.action(async (flags: Flags) => {
    // Usage errors (exit 2), before the model loads: an empty host would listen on every interface.
    if (flags.host.trim() === '') cmd.error('error: --host is empty; give an address such as 127.0.0.1', { exitCode: 2 });
    if (!isLoopbackHost(flags.host) && !flags.allowRemote) {
      cmd.error(`error: --host ${flags.host} is not a loopback address and would expose the model to the network; add --allow-remote to mean it`, { exitCode: 2 });
    }
    const model = await loadModel(flags);
    const atlas = flags.atlas ? readAtlas(flags.atlas, model.config) : undefined;
    const results = flags.results ? readResults(flags.results, { name: model.name, layers: model.config.numLayers, heads: model.config.numHeads }) : undefined;
    if (!fs.existsSync(path.join(WEB_APP_DIR, 'index.html'))) {
      process.stderr.write(`headwise: warning: the web app is not built (${WEB_APP_DIR}); run \`npm run build\`. Serving the API only.\n`);
    }
    let web;
    try {
      web = await startServer({
        model,
        host: flags.host,
        allowRemote: flags.allowRemote,
        port: flags.port,
        atlas,
        results,
        appDir: WEB_APP_DIR,
        runners: { atlas: atlasRunner, niah: niahRunner },
      });
    } catch (e) {
      await model.dispose();
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new HeadwiseError(`port ${flags.port} on ${flags.host} is in use; pick another with --port`);
      if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new HeadwiseError(`--host ${flags.host}: not an address of this machine`);
      throw e;
    }
    if (!isLoopbackHost(flags.host)) process.stderr.write(`headwise: warning: --allow-remote: ${web.url}/ is open to anyone who can reach ${flags.host}\n`);
    process.stdout.write(`headwise: serving ${model.name} at ${web.url}/ (Ctrl-C to stop)\n`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await web.close();
    await model.dispose();
  });
}

/** A research results file (research CLI JSON or the results format), checked against the model; one line naming the file and field on error. */
function readResults(file: string, shape: ModelShape): ResearchResult[] {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new HeadwiseError(`--results ${file}: ${code ? `cannot read (${code})` : `not valid JSON (${(e as Error).message})`}`);
  }
  try {
    return readResultsFile(raw, shape);
  } catch (e) {
    if (e instanceof ResultFormatError) throw new HeadwiseError(`--results ${file}: ${e.message}`);
    throw e;
  }
}
