// The node tunnel with the docker runtime: the real kubectl execs into and port-forwards
// to a container of a real Docker engine on an agent that only dials out (exec goes
// through the Engine API's hijacked connection, port-forward to the pod's address on the
// docker bridge). Skips, saying why, without an engine or the local busybox image.

import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerSkipReason, IMAGE } from "./docker-fixture.ts";
import { type Cluster, eventually, hasKubectl, show, startCluster } from "./kubectl-harness.ts";

const NODE = "tunnel-docker-node";
const skip = hasKubectl ? await dockerSkipReason() : "no kubectl";
if (skip) console.warn(`[tunnel-docker] skipping: ${skip}`);
let c: Cluster;

function removeContainers(): void {
  try {
    const ids = execFileSync("docker", ["ps", "-aq", "--filter", `label=io.kubeflare.node=${NODE}`], { encoding: "utf8" }).trim();
    if (ids) execFileSync("docker", ["rm", "-f", ...ids.split("\n")], { stdio: "ignore" });
  } catch {}
}

describe.skipIf(skip !== undefined)("node tunnel, docker runtime", () => {
  beforeAll(async () => {
    removeContainers();
    c = await startCluster(NODE, { runtime: "docker", agentArgs: ["--no-service-proxy"] });
    c.kubectl.ok(["apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "web" },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: "web",
              image: IMAGE,
              imagePullPolicy: "Never",
              command: ["sh", "-c", "mkdir -p /www && echo hello from docker > /www/index.html && exec httpd -f -p 8080 -h /www"],
            },
          ],
        },
      }),
    });
    await eventually(
      "pod web Running",
      () => c.kubectl.run(["get", "pod", "web", "-o", "jsonpath={.status.phase}"]).stdout === "Running",
      60_000,
    );
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    removeContainers();
  });

  it("kubectl exec runs in the container: output, stdin, exit code", () => {
    let r = c.kubectl.run(["exec", "web", "--", "cat", "/www/index.html"]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toBe("hello from docker\n");
    r = c.kubectl.run(["exec", "-i", "web", "--", "sh", "-c", "tr a-z A-Z; exit 4"], { input: "shout\n" });
    expect(r.stdout, show(r)).toBe("SHOUT\n");
    expect(r.code).toBe(4);
  });

  it("kubectl port-forward reaches the container's port on the docker bridge", async () => {
    const local = 40000 + Math.floor(Math.random() * 9000);
    const pf = c.kubectl.spawn(["port-forward", "pod/web", `${local}:8080`]);
    try {
      await pf.waitFor(/Forwarding from 127\.0\.0\.1/, 20_000);
      const body = await eventually(
        "an answer through port-forward",
        async () => {
          const res = await fetch(`http://127.0.0.1:${local}/`).catch(() => null);
          return res?.ok && (await res.text());
        },
        20_000,
      );
      expect(body).toBe("hello from docker\n");
    } finally {
      pf.stop();
    }
  });
});
