/**
 * Typed intervention specs: the fixture is compiled with the TypeScript compiler API, and exactly the
 * lines marked `// error TSnnnn` fail, each with its code — a misspelled op or field does not
 * type-check, a well-formed spec does.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'specTypos.fixture.ts');

describe('intervention spec types', () => {
  it('misspelled ops, fields and params are compile errors; good specs compile', () => {
    const program = ts.createProgram([fixture], {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
      types: ['node'],
    });
    const source = program.getSourceFile(fixture)!;
    const got = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file?.fileName === source.fileName)
      .map((d) => `${source.getLineAndCharacterOfPosition(d.start!).line + 1}: TS${d.code}`);
    const expected = source.text.split('\n').flatMap((line, i) => {
      const m = /\/\/ error (TS\d+)$/.exec(line);
      return m ? [`${i + 1}: ${m[1]}`] : [];
    });
    expect(expected.length).toBe(10);
    expect(got).toEqual(expected);
    // Nothing outside the fixture fails either (the sources it imports type-check).
    expect(ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName !== source.fileName).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);
  });
});
