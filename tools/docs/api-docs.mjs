// Writes docs/api.md: every symbol `headwise` exports (src/index.ts), grouped by the file that declares
// it, with its signature and doc comment, read with the TypeScript compiler API. `npm run docs:api`.
// Deterministic (sorted by file, then source order), so the file is diffable and CI can check it is current.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const entry = path.join(root, 'src', 'index.ts');
const program = ts.createProgram([entry], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, skipLibCheck: true, noEmit: true, types: ['node'] });
const checker = program.getTypeChecker();
const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry));
const byFile = new Map();
for (const exported of checker.getExportsOfModule(moduleSymbol)) {
  const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
  const decl = symbol.declarations?.[0];
  if (!decl) continue;
  const file = path.relative(root, decl.getSourceFile().fileName);
  const doc = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
  const examples = ts.getJSDocTags(decl).filter((t) => t.tagName.text === 'example').map((t) => (typeof t.comment === 'string' ? t.comment : ts.getTextOfJSDocComment(t.comment) ?? '').trim());
  let signature;
  if (ts.isFunctionDeclaration(decl)) signature = `function ${exported.name}${checker.signatureToString(checker.getSignatureFromDeclaration(decl), decl, ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.WriteArrowStyleSignature).replace(/ => /, ': ')}`;
  else if (ts.isClassDeclaration(decl)) {
    const members = decl.members.filter((m) => m.name && !(ts.getCombinedModifierFlags(m) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected))).map((m) => `  ${m.getText().split('{')[0].replace(/\s+/g, ' ').trim().replace(/;$/, '')}`);
    signature = `class ${exported.name} {\n${members.join('\n')}\n}`;
  } else if (ts.isVariableDeclaration(decl)) signature = `const ${exported.name}: ${checker.typeToString(checker.getTypeOfSymbolAtLocation(symbol, decl), decl, ts.TypeFormatFlags.NoTruncation)}`;
  else signature = decl.getText().replace(/\/\*\*[\s\S]*?\*\//g, '').replace(/\n\s*\n/g, '\n');
  if (signature.length > 3000) signature = signature.slice(0, 3000) + '\n  …';
  if (!byFile.has(file)) byFile.set(file, []);
  byFile.get(file).push({ name: exported.name, pos: decl.getStart(), signature, doc, examples });
}
const out = ['# headwise API reference', '', 'Generated from the sources by `npm run docs:api` (tools/docs/api-docs.mjs); do not edit by hand.', 'Everything below is exported from `headwise` (src/index.ts), grouped by the file that declares it.', ''];
for (const file of [...byFile.keys()].sort()) {
  out.push(`## ${file}`, '');
  for (const s of byFile.get(file).sort((a, b) => a.pos - b.pos)) {
    out.push(`### ${s.name}`, '', '```ts', s.signature, '```', '');
    if (s.doc) out.push(s.doc, '');
    for (const e of s.examples) out.push('```ts', e, '```', '');
  }
}
const target = path.join(root, 'docs', 'api.md');
fs.writeFileSync(target + '.tmp', out.join('\n'));
fs.renameSync(target + '.tmp', target);
console.log(`${path.relative(root, target)}: ${[...byFile.values()].reduce((n, l) => n + l.length, 0)} symbols from ${byFile.size} files`);
