// The Docker engine the docker-runtime tests use, and the local busybox image they run
// (no registry is reachable: test/fixtures/busybox-image.sh builds it from the host's
// busybox-static). dockerSkipReason() says why those tests cannot run here, or nothing.

import { execFileSync } from "node:child_process";
import path from "node:path";
import { DockerRuntime } from "../../node-agent/runtime/docker.ts";

export const IMAGE = "kubeflare/busybox:test";
export const socketPath = process.env.DOCKER_HOST?.startsWith("unix://")
  ? process.env.DOCKER_HOST.slice("unix://".length)
  : "/var/run/docker.sock";

export async function dockerSkipReason(nodeName = `probe-${process.pid}`): Promise<string | undefined> {
  const rt = new DockerRuntime({ socketPath, nodeName });
  try {
    if (!(await rt.ping())) return `no Docker engine answers at ${socketPath}`;
    if (!(await rt.imagePresent(IMAGE))) {
      try {
        execFileSync("bash", [path.join(import.meta.dirname, "../fixtures/busybox-image.sh"), IMAGE], { stdio: "pipe" });
      } catch (e: any) {
        return `cannot build ${IMAGE}: ${String(e?.stderr ?? e?.message ?? e).trim()}`;
      }
    }
    return undefined;
  } finally {
    rt.close();
  }
}
