// An ESLint rule of this repository: no import cycles among the modules of a source tree (eslint.config.mjs runs
// it on mcp-server/src). The layers' zones keep imports pointing down between layers; this keeps them acyclic
// inside a layer too, where a cycle makes the order modules load in decide what works.
//
// Only imports that stay in the built code count: `import type`, and imports whose every name is a type, are
// erased by the compiler and cannot form a cycle at run time (the same choice as eslint-plugin-import's no-cycle).
// Dynamic import() is left out too: it loads on first use, never at load time. The graph of the other modules
// is read once per ESLint process with TypeScript's own parser; the file being linted is read from its ESLint AST.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** Relative specifiers of the imports of `text` that remain at run time. */
function runtimeImports(file, text) {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out = [];
  for (const st of source.statements) {
    if (ts.isImportDeclaration(st)) {
      const clause = st.importClause;
      const bindings = clause?.namedBindings;
      const allTypes =
        clause &&
        (clause.isTypeOnly ||
          (!clause.name &&
            bindings &&
            ts.isNamedImports(bindings) &&
            bindings.elements.length > 0 &&
            bindings.elements.every((e) => e.isTypeOnly)));
      if (!allTypes) out.push(st.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(st) && st.moduleSpecifier) {
      const named = st.exportClause && ts.isNamedExports(st.exportClause) ? st.exportClause.elements : undefined;
      const allTypes = st.isTypeOnly || (named && named.length > 0 && named.every((e) => e.isTypeOnly));
      if (!allTypes) out.push(st.moduleSpecifier.text);
    }
  }
  return out;
}

/** The module a relative specifier names: `./x.js` is the source `./x.ts`. Undefined for packages and built-ins. */
function resolve(from, spec) {
  if (!spec.startsWith('.')) return undefined;
  return path.resolve(path.dirname(from), spec).replace(/\.js$/, '.ts');
}

function tsFiles(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory()
        ? tsFiles(path.join(dir, e.name))
        : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')
          ? [path.join(dir, e.name)]
          : [],
    );
}

const graphs = new Map();
/** file -> the files it imports at run time, for every module under `root` (read once per process). */
function graphOf(root) {
  let g = graphs.get(root);
  if (!g) {
    g = new Map();
    for (const file of tsFiles(root)) {
      const targets = runtimeImports(file, fs.readFileSync(file, 'utf8'))
        .map((s) => resolve(file, s))
        .filter((t) => t !== undefined);
      g.set(file, targets);
    }
    graphs.set(root, g);
  }
  return g;
}

/** A path of imports from `start` back to `goal` (both included), or undefined. Breadth first: the shortest. */
function pathBack(graph, start, goal) {
  const before = new Map([[start, null]]);
  const queue = [start];
  while (queue.length > 0) {
    const at = queue.shift();
    for (const next of graph.get(at) ?? []) {
      if (before.has(next)) continue;
      before.set(next, at);
      if (next === goal) {
        const out = [];
        for (let f = goal; f !== null; f = before.get(f)) out.unshift(f);
        return out;
      }
      queue.push(next);
    }
  }
  return undefined;
}

const noImportCycle = {
  meta: {
    type: 'problem',
    docs: { description: 'no import cycles among the modules of a source tree (type-only imports excepted)' },
    schema: [{ type: 'object', properties: { root: { type: 'string' } }, required: ['root'] }],
    messages: {
      cycle:
        'import cycle: {{cycle}}. Move what both sides need into a module below them, or import only types with `import type` (docs/architecture.md, "Layers")',
    },
  },
  create(context) {
    const root = path.resolve(context.cwd, context.options[0].root);
    const file = context.filename;
    if (!file.startsWith(root + path.sep)) return {};
    const rel = (f) => path.relative(root, f);
    const check = (node, allTypes) => {
      if (allTypes || !node.source) return;
      const target = resolve(file, node.source.value);
      if (!target) return;
      const back = target === file ? [file] : pathBack(graphOf(root), target, file);
      if (back) context.report({ node, messageId: 'cycle', data: { cycle: [file, ...back].map(rel).join(' -> ') } });
    };
    const typesOnly = (specifiers) =>
      specifiers.length > 0 && specifiers.every((s) => s.importKind === 'type' || s.exportKind === 'type');
    return {
      ImportDeclaration: (node) =>
        check(
          node,
          node.importKind === 'type' ||
            (node.specifiers.every((s) => s.type === 'ImportSpecifier') && typesOnly(node.specifiers)),
        ),
      ExportNamedDeclaration: (node) => check(node, node.exportKind === 'type' || typesOnly(node.specifiers)),
      ExportAllDeclaration: (node) => check(node, node.exportKind === 'type'),
    };
  },
};

export default { rules: { 'no-import-cycle': noImportCycle } };
