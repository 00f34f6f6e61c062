// npm start: a local control plane on http://127.0.0.1:8787 with state kept across
// restarts, and a kubeconfig for its admin user.
//
//   npm start -- [--port N] [--host H] [--state-dir D] [--kubeconfig F] [--verbose]

import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { kubeconfigYAML, ROOT, startControlPlane } from "./control-plane.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8787" },
    host: { type: "string", default: "127.0.0.1" },
    "state-dir": { type: "string", default: join(ROOT, ".wrangler", "state") },
    kubeconfig: { type: "string", default: join(process.cwd(), "kubeconfig") },
    verbose: { type: "boolean", default: false },
    http: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help) {
  console.log("usage: npm start -- [--port N] [--host H] [--state-dir D] [--kubeconfig FILE] [--http] [--verbose]");
  console.log("  --http  serve plain HTTP instead of HTTPS (kubectl then sends no token: use curl or client libraries)");
  process.exit(0);
}
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port: not a port number: ${values.port}`);
  process.exit(2);
}

const stateDir = resolve(values["state-dir"]!);
const cp = await startControlPlane({ host: values.host, port, stateDir, verbose: values.verbose, tls: !values.http });
const kubeconfig = resolve(values.kubeconfig!);
writeFileSync(kubeconfig, kubeconfigYAML(cp.url, cp.token, cp.caCert), { mode: 0o600 });

console.log(`control plane: ${cp.url}`);
console.log(`state:         ${stateDir}`);
console.log(`kubeconfig:    ${kubeconfig}`);
console.log(`try:           KUBECONFIG=${kubeconfig} kubectl get namespaces`);

let stopping = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    console.log("stopping");
    await cp.stop();
    process.exit(0);
  });
}
