/**
 * The one error type headwise throws for bad input: a corrupt file, a missing tensor, an unknown
 * architecture, a bad flag, an over-long prompt. Its message is a single line that says what is wrong
 * and where; the CLI prints it as is (no stack trace) and exits non-zero, the server answers 4xx with it.
 * Anything else that escapes is a bug and is reported as one.
 */
export class HeadwiseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HeadwiseError';
  }
}

/** Throws a HeadwiseError with `message` when `condition` is false. */
export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new HeadwiseError(typeof message === 'function' ? message() : message);
}

/**
 * Bad use of the command line or API: an unknown flag, a flag value out of its range or of the wrong
 * form, flags that do not go together. The CLI exits 2 for these and 1 for other HeadwiseErrors
 * (bad files, models, specs); see `headwise --help`.
 */
export class UsageError extends HeadwiseError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
