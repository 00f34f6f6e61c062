// Builds the standalone node agent: node-agent/main.ts and everything it imports (the
// runtimes, the shared helpers from workers/shared/) bundled by esbuild into one ES module
// for Node 22 with no dependencies, node-agent/dist/kubeflare-agent.mjs, the `bin` of the
// kubeflare-agent package (node-agent/package.json). Copy that one file to a node and run
//
//   node kubeflare-agent.mjs --server URL --join-token T --ca-file tls.crt --runtime process
//
//   node scripts/build-agent.ts [--outfile F]     (npm run build:agent)
//
// main.ts runs main() only when it is the entry file (process.argv[1] against
// import.meta.url). In the bundle import.meta.url is the bundle's own URL, so that holds
// when the bundle is run directly. npm installs a `bin` as a symlink, though, and Node
// keeps process.argv[1] as the symlink's path while import.meta.url is the real path: the
// banner below makes process.argv[1] the real path first, so `kubeflare-agent` started
// through npm's symlink runs too.

import { chmodSync, mkdirSync, realpathSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const AGENT_ENTRY = join(ROOT, "node-agent", "main.ts");
export const AGENT_BUNDLE = join(ROOT, "node-agent", "dist", "kubeflare-agent.mjs");

const SHEBANG = "#!/usr/bin/env node";
// CommonJS dependencies (ws) require() Node's built-ins: an ES module has no require, so
// the banner makes one.
const BANNER = [
  "// kubeflare-agent: the kubeflare node agent, bundled by scripts/build-agent.ts. Do not edit.",
  'import { realpathSync as __kfRealpath } from "node:fs";',
  'import { createRequire as __kfCreateRequire } from "node:module";',
  "const require = __kfCreateRequire(import.meta.url);",
  "try { if (process.argv[1]) process.argv[1] = __kfRealpath(process.argv[1]); } catch {}",
].join("\n");

/** ws's optional native speed-ups: it require()s them in a try and does without. */
const OPTIONAL = ["bufferutil", "utf-8-validate"];

export interface BuildResult {
  outfile: string;
  bytes: number;
  ms: number;
}

/** Bundles the agent into outfile (default node-agent/dist/kubeflare-agent.mjs), executable. */
export async function buildAgent(outfile = AGENT_BUNDLE): Promise<BuildResult> {
  const t0 = performance.now();
  const out = resolve(outfile);
  mkdirSync(dirname(out), { recursive: true });
  const res = await build({
    entryPoints: [AGENT_ENTRY],
    outfile: out,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    packages: "bundle",
    external: OPTIONAL,
    banner: { js: BANNER },
    legalComments: "none",
    logLevel: "warning",
    metafile: true,
    write: false,
  });
  const errors = res.errors.map((e) => e.text);
  if (errors.length) throw new Error(`esbuild: ${errors.join("; ")}`);
  // Everything must be inlined: the only imports left are Node's built-ins (and the
  // optional natives, which are never there).
  const external = Object.values(res.metafile.outputs)
    .flatMap((o) => o.imports)
    .filter((i) => i.external && !isBuiltin(i.path) && !OPTIONAL.includes(i.path))
    .map((i) => i.path);
  if (external.length) throw new Error(`the agent bundle imports non-built-in modules: ${[...new Set(external)].join(", ")}`);
  // esbuild keeps the entry's own hashbang line and puts the banner after it: one shebang, first.
  const text = res.outputFiles.find((f) => f.path === out)?.text;
  if (text === undefined) throw new Error(`esbuild produced no ${out}`);
  const body = text.replace(/^(#![^\n]*\n)+/, "");
  const js = `${SHEBANG}\n${body}`;
  writeFileSync(out, js, { mode: 0o755 });
  chmodSync(out, 0o755);
  return { outfile: out, bytes: Buffer.byteLength(js), ms: performance.now() - t0 };
}

function isEntry(): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  const { values } = parseArgs({
    options: { outfile: { type: "string", default: AGENT_BUNDLE }, help: { type: "boolean", short: "h", default: false } },
    strict: true,
  });
  if (values.help) {
    console.log("usage: node scripts/build-agent.ts [--outfile F]   (default node-agent/dist/kubeflare-agent.mjs)");
  } else {
    buildAgent(values.outfile).then(
      (r) => console.log(`built ${r.outfile} (${(r.bytes / 1024).toFixed(0)} KiB) in ${r.ms.toFixed(0)} ms`),
      (e) => {
        console.error(`build-agent: ${e instanceof Error ? e.message : String(e)}`);
        process.exit(1);
      },
    );
  }
}
