/**
 * Headwise's temporary files and folders: one recognisable name for all of them
 * (`<target>.headwise-<pid>-<8 hex>.tmp`, beside the file or folder they will become), a registry of
 * the ones this process holds so SIGINT/SIGTERM can remove them before exiting (130 / 143), and a sweep
 * that removes stale ones left by a process that was killed (SIGKILL cannot be caught): only names
 * that match the pattern exactly and whose PID is no longer alive. Nothing else is ever deleted.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const TEMP_RE = /^(.*)\.headwise-(\d+)-[0-9a-f]{8}\.tmp$/;

const live = new Set<string>();

/** A fresh temporary path for `target` (same folder, so the final rename is atomic). Registered until `releaseTemp`. */
export function tempPathFor(target: string): string {
  const tmp = `${target}.headwise-${process.pid}-${crypto.randomBytes(4).toString('hex')}.tmp`;
  live.add(tmp);
  return tmp;
}

/** The temporary is gone (renamed into place or removed): stop tracking it. */
export function releaseTemp(tmp: string): void {
  live.delete(tmp);
}

/** Removes a temporary file or folder of this process and stops tracking it. */
export function removeTemp(tmp: string): void {
  try {
    fs.rmSync(tmp, { recursive: true, force: true });
  } catch {
    // best effort: a temporary that cannot be removed is swept by a later run
  }
  live.delete(tmp);
}

/** Temporaries this process holds now (for tests). */
export function liveTemps(): string[] {
  return [...live];
}

/** Whether `name` is a headwise temporary; its PID if so. */
export function tempOwner(name: string): number | null {
  const m = TEMP_RE.exec(path.basename(name));
  return m ? Number(m[2]) : null;
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes stale headwise temporaries in `dir` (the folder an output is about to be written to): names
 * matching the pattern whose process is dead. Returns what was removed.
 */
export function sweepStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = tempOwner(name);
    if (pid === null || alive(pid)) continue;
    try {
      fs.rmSync(path.join(dir, name), { recursive: true, force: true });
      removed.push(path.join(dir, name));
    } catch {
      // not ours to fight over
    }
  }
  return removed;
}

let installed = false;

/**
 * On SIGINT / SIGTERM: remove every registered temporary and exit with 128 + signal (130 / 143),
 * unless the running command listens for the signal too. Installed once per process (the CLI calls it;
 * the library never does).
 */
export function cleanUpOnSignals(): void {
  if (installed) return;
  installed = true;
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      for (const tmp of [...live]) removeTemp(tmp);
      // A command that handles the signal itself (serve: close the server) exits on its own.
      if (process.listenerCount(signal) === 1) process.exit(code);
    });
  }
}
