// The real kubectl (/usr/bin/kubectl, v1.32) against a local control plane: TLS, its own
// temp state dir, one node agent with the fake runtime (so pods become Running), and a
// temp kubeconfig. Every command runs as a user would type it; assertions are on its
// output and exit code, and on the server's state read back with `kubectl ... -o json`.
// Without kubectl the whole file is skipped (.ci/run installs it).

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYAML } from "yaml";
import {
  type Cluster,
  eventually,
  hasKubectl,
  KUBECTL,
  type Kubectl,
  type Result,
  show,
  sleep,
  startCluster,
  table,
} from "./kubectl-harness.ts";

if (!hasKubectl) {
  console.warn(
    `test/e2e/kubectl.test.ts: SKIPPED: these tests need the real kubectl at ${KUBECTL} (v1.32); .ci/run installs it (or install kubectl there yourself).`,
  );
}

const ns = (name: string) => `apiVersion: v1
kind: Namespace
metadata:
  name: ${name}
`;

/** The multi-document manifest of the apply tests: Namespace, ConfigMap, Deployment (two containers), Service. */
function shopManifest(namespace: string, v: { image: string; extraEnv?: boolean; tier?: boolean }): string {
  return `${ns(namespace)}---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: ${namespace}
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ${namespace}
  labels:
    app: web${v.tier ? "\n    tier: frontend" : ""}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: ${v.image}
        env:
        - name: MODE
          value: prod${v.extraEnv ? "\n        - name: LOG_LEVEL\n          value: debug" : ""}
      - name: sidecar
        image: busybox:1.36
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: ${namespace}
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
`;
}

const deployment = (namespace: string, name: string, replicas: number, image = "nginx:1.25") => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: ${namespace}
  labels:
    app: ${name}
spec:
  replicas: ${replicas}
  selector:
    matchLabels:
      app: ${name}
  template:
    metadata:
      labels:
        app: ${name}
    spec:
      containers:
      - name: main
        image: ${image}
`;

const pod = (namespace: string, name: string, labels: Record<string, string>) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${namespace}
  labels:
${Object.entries(labels)
  .map(([k, v]) => `    ${k}: ${v}`)
  .join("\n")}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
`;

const names = (list: any): string[] => list.items.map((i: any) => i.metadata.name).sort();
const isReady = (p: any) =>
  p.status?.phase === "Running" && p.status.conditions?.some((c: any) => c.type === "Ready" && c.status === "True");

describe.skipIf(!hasKubectl)("kubectl against a local control plane", () => {
  let c: Cluster;
  let k: Kubectl;
  /** kubectl with the admin kubeconfig; fails the test with the whole exchange unless it exits 0. */
  const ok = (...args: string[]) => k.ok(args);
  const run = (args: string[], input?: string): Result => k.run(args, { input });
  const expectExit = (r: Result, code: number) => expect(r.code, show(r)).toBe(code);
  /** Writes a manifest into the test's temp dir and returns its path. */
  const write = (name: string, text: string) => {
    const file = join(c.dir, name);
    writeFileSync(file, text);
    return file;
  };

  /** Waits until the pods matching a selector are `count`, all Running and Ready. */
  const podsReady = (namespace: string, selector: string, count: number, timeoutMs = 30_000) =>
    eventually(
      `${count} Running, Ready pods ${selector} in ${namespace}`,
      () => {
        const items = k.json(["get", "pods", "-n", namespace, "-l", selector]).items.filter((p: any) => !p.metadata.deletionTimestamp);
        return items.length === count && items.every(isReady) && items;
      },
      timeoutMs,
    );

  beforeAll(async () => {
    c = await startCluster();
    k = c.kubectl;
  }, 90_000);

  afterAll(async () => {
    await c?.stop();
  });

  describe("discovery", () => {
    it("cluster-info names the control plane's URL", () => {
      const out = ok("cluster-info");
      expect(out).toContain(`Kubernetes control plane is running at ${c.cp.url}`);
    });

    it("api-resources lists the served resources with kubectl's short names", () => {
      const { header, rows } = table(ok("api-resources"));
      expect(header).toEqual(["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]);
      const byName = new Map(rows.map((r) => [r[0], r]));
      for (const [name, short, apiVersion, namespaced, kind] of [
        ["pods", "po", "v1", "true", "Pod"],
        ["deployments", "deploy", "apps/v1", "true", "Deployment"],
        ["replicasets", "rs", "apps/v1", "true", "ReplicaSet"],
        ["services", "svc", "v1", "true", "Service"],
        ["endpoints", "ep", "v1", "true", "Endpoints"],
        ["configmaps", "cm", "v1", "true", "ConfigMap"],
        ["namespaces", "ns", "v1", "false", "Namespace"],
        ["events", "ev", "v1", "true", "Event"],
        ["serviceaccounts", "sa", "v1", "true", "ServiceAccount"],
        ["nodes", "no", "v1", "false", "Node"],
      ]) {
        expect(byName.get(name), name).toEqual([name, short, apiVersion, namespaced, kind]);
      }
      // Without short names: four columns.
      expect(byName.get("leases")).toEqual(["leases", "coordination.k8s.io/v1", "true", "Lease"]);
      expect(byName.get("secrets")).toEqual(["secrets", "v1", "true", "Secret"]);
      // Short names resolve.
      expect(ok("get", "no", "-o", "name")).toContain(`node/${c.nodeName}`);
    });

    it("api-versions lists the core and group versions", () => {
      const versions = ok("api-versions").trim().split("\n");
      expect(versions).toEqual(
        expect.arrayContaining([
          "v1",
          "apps/v1",
          "coordination.k8s.io/v1",
          "rbac.authorization.k8s.io/v1",
          "authorization.k8s.io/v1",
          "authentication.k8s.io/v1",
        ]),
      );
    });

    it("version reports the client and a v1.32 server", () => {
      expect(ok("version")).toMatch(/Client Version: v1\.32\.[\s\S]*Server Version: v1\.32\./);
      const v = JSON.parse(ok("version", "-o", "json"));
      expect(v.serverVersion).toMatchObject({ major: "1", minor: "32" });
      expect(v.serverVersion.gitVersion).toMatch(/^v1\.32\./);
    });
  });

  describe("manifests", () => {
    it("create -f makes every document of a multi-document manifest (validated), and refuses existing objects and unknown fields", () => {
      const file = write("made.yaml", shopManifest("made", { image: "nginx:1.25", tier: true }));
      const r = run(["create", "-f", file]);
      expectExit(r, 0);
      expect(r.stdout).toBe("namespace/made created\nconfigmap/web-config created\ndeployment.apps/web created\nservice/web created\n");
      expect(r.stderr).toBe("");

      const d = k.json(["get", "deployment", "web", "-n", "made"]);
      expect(d.metadata.labels).toEqual({ app: "web", tier: "frontend" });
      expect(d.spec.replicas).toBe(2);
      expect(d.spec.template.spec.containers.map((x: any) => `${x.name}=${x.image}`)).toEqual(["app=nginx:1.25", "sidecar=busybox:1.36"]);
      expect(k.json(["get", "configmap", "web-config", "-n", "made"]).data).toEqual({ greeting: "hello" });
      expect(k.json(["get", "service", "web", "-n", "made"]).spec.ports[0]).toMatchObject({ port: 80, targetPort: 8080, protocol: "TCP" });
      expect(k.json(["get", "namespace", "made"]).status.phase).toBe("Active");

      const again = run(["create", "-f", file]);
      expectExit(again, 1);
      expect(again.stderr).toContain(`Error from server (AlreadyExists): error when creating "${file}": namespaces "made" already exists`);
      expect(again.stderr).toContain(
        `Error from server (AlreadyExists): error when creating "${file}": deployments.apps "web" already exists`,
      );

      // Validation is on (no --validate=false): an unknown field is refused and nothing is created.
      const bad = write("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  namespace: made\ndataa:\n  x: y\n");
      const rb = run(["create", "-f", bad]);
      expectExit(rb, 1);
      expect(rb.stderr).toMatch(/unknown field "dataa"/);
      const gone = run(["get", "configmap", "bad", "-n", "made"]);
      expectExit(gone, 1);
      expect(gone.stderr).toContain('Error from server (NotFound): configmaps "bad" not found');
    });

    it("apply -f creates a multi-document manifest; a changed manifest is merged (image, env var by container name, removed label), keeping other containers and others' changes", async () => {
      const v1 = write("shop-v1.yaml", shopManifest("shop", { image: "nginx:1.25", tier: true }));
      const r = run(["apply", "-f", v1]);
      expectExit(r, 0);
      expect(r.stdout).toBe("namespace/shop created\nconfigmap/web-config created\ndeployment.apps/web created\nservice/web created\n");
      await podsReady("shop", "app=web", 2);

      // Someone else labels the Deployment: client-side apply must keep what it never applied.
      expect(ok("label", "deployment/web", "-n", "shop", "owner=ops")).toBe("deployment.apps/web labeled\n");

      const v2 = write("shop-v2.yaml", shopManifest("shop", { image: "nginx:1.26", extraEnv: true }));
      const r2 = run(["apply", "-f", v2]);
      expectExit(r2, 0);
      expect(r2.stdout).toBe(
        "namespace/shop unchanged\nconfigmap/web-config unchanged\ndeployment.apps/web configured\nservice/web unchanged\n",
      );

      const d = k.json(["get", "deployment", "web", "-n", "shop"]);
      expect(d.metadata.labels).toEqual({ app: "web", owner: "ops" }); // tier removed, owner kept
      const [app, sidecar, ...more] = d.spec.template.spec.containers;
      expect(more).toEqual([]);
      expect(app).toMatchObject({
        name: "app",
        image: "nginx:1.26",
        env: [
          { name: "MODE", value: "prod" },
          { name: "LOG_LEVEL", value: "debug" },
        ],
      });
      expect(sidecar).toMatchObject({ name: "sidecar", image: "busybox:1.36" });
      const last = JSON.parse(d.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]);
      expect(last.metadata.labels).toEqual({ app: "web" });
      expect(last.spec.template.spec.containers[0].image).toBe("nginx:1.26");

      // The Deployment rolls its pods to the new template.
      await eventually(
        "the shop pods on nginx:1.26",
        () => {
          const items = k.json(["get", "pods", "-n", "shop", "-l", "app=web"]).items.filter((p: any) => !p.metadata.deletionTimestamp);
          return items.length === 2 && items.every((p: any) => isReady(p) && p.spec.containers[0].image === "nginx:1.26");
        },
        45_000,
      );
    });

    it("diff exits 1 with a unified diff when the manifest differs from the cluster, 0 with no output when it does not, and changes nothing", () => {
      const v3 = write("shop-v3.yaml", shopManifest("shop", { image: "nginx:1.27", extraEnv: true }));
      const changed = run(["diff", "-f", v3]);
      expectExit(changed, 1);
      expect(changed.stdout).toMatch(/^-\s+image: nginx:1\.26$/m);
      expect(changed.stdout).toMatch(/^\+\s+image: nginx:1\.27$/m);
      expect(changed.stdout).toContain("apps.v1.Deployment.shop.web");
      expect(changed.stdout).not.toContain("ConfigMap.shop.web-config");
      expect(k.json(["get", "deployment", "web", "-n", "shop"]).spec.template.spec.containers[0].image).toBe("nginx:1.26");

      const same = run(["diff", "-f", join(c.dir, "shop-v2.yaml")]);
      expectExit(same, 0);
      expect(same.stdout).toBe("");
    });

    it("apply --server-side records the field manager, refuses another manager's conflicting apply, takes the field over with --force-conflicts, and drops fields a manager stops applying", () => {
      k.ok(["apply", "-f", "-"], { input: ns("ssa") });
      const cm = (data: Record<string, string>) =>
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: ssa\ndata:\n${Object.entries(data)
          .map(([key, v]) => `  ${key}: ${v}`)
          .join("\n")}\n`;
      const managers = () => {
        const o = k.json(["get", "configmap", "settings", "-n", "ssa", "--show-managed-fields"]);
        const m = new Map<string, any>();
        for (const e of o.metadata.managedFields ?? []) m.set(e.manager, e);
        return { data: o.data, m };
      };

      const first = run(["apply", "--server-side", "--field-manager=alice", "-f", "-"], cm({ color: "blue", size: "large" }));
      expectExit(first, 0);
      expect(first.stdout).toBe("configmap/settings serverside-applied\n");
      let s = managers();
      expect(s.data).toEqual({ color: "blue", size: "large" });
      expect(s.m.get("alice")).toMatchObject({ operation: "Apply", apiVersion: "v1", fieldsType: "FieldsV1" });
      expect(Object.keys(s.m.get("alice").fieldsV1["f:data"]).sort()).toEqual(["f:color", "f:size"]);
      // Not shown without --show-managed-fields.
      expect(k.json(["get", "configmap", "settings", "-n", "ssa"]).metadata.managedFields).toBeUndefined();

      // Re-applying the same configuration is accepted and changes nothing.
      expectExit(run(["apply", "--server-side", "--field-manager=alice", "-f", "-"], cm({ color: "blue", size: "large" })), 0);

      const conflict = run(["apply", "--server-side", "--field-manager=bob", "-f", "-"], cm({ color: "red" }));
      expectExit(conflict, 1);
      expect(conflict.stderr).toMatch(/Apply failed with 1 conflict: conflict with "alice"( using v1)?: \.data\.color/);
      expect(conflict.stderr).toContain("--force-conflicts");
      expect(managers().data).toEqual({ color: "blue", size: "large" });

      const forced = run(["apply", "--server-side", "--field-manager=bob", "--force-conflicts", "-f", "-"], cm({ color: "red" }));
      expectExit(forced, 0);
      expect(forced.stdout).toBe("configmap/settings serverside-applied\n");
      s = managers();
      expect(s.data).toEqual({ color: "red", size: "large" });
      expect(Object.keys(s.m.get("bob").fieldsV1["f:data"])).toEqual(["f:color"]);
      expect(Object.keys(s.m.get("alice").fieldsV1["f:data"])).toEqual(["f:size"]);

      // bob no longer applies color (he owns it alone): it goes; alice's size stays.
      expectExit(run(["apply", "--server-side", "--field-manager=bob", "-f", "-"], cm({ shape: "round" })), 0);
      expect(managers().data).toEqual({ size: "large", shape: "round" });

      // Other writes record their manager too: kubectl label updates as "kubectl-label".
      ok("label", "configmap", "settings", "-n", "ssa", "tagged=yes");
      expect(managers().m.get("kubectl-label")).toMatchObject({
        operation: "Update",
        fieldsV1: { "f:metadata": { "f:labels": { "f:tagged": {} } } },
      });

      // A Deployment applied server-side: its containers are owned by name.
      const dep = run(["apply", "--server-side", "--field-manager=ci", "-f", "-"], deployment("ssa", "ssa-web", 1));
      expectExit(dep, 0);
      expect(dep.stdout).toBe("deployment.apps/ssa-web serverside-applied\n");
      const d = k.json(["get", "deployment", "ssa-web", "-n", "ssa", "--show-managed-fields"]);
      const ci = d.metadata.managedFields.find((e: any) => e.manager === "ci");
      expect(ci.operation).toBe("Apply");
      expect(ci.fieldsV1["f:spec"]["f:template"]["f:spec"]["f:containers"]).toHaveProperty(['k:{"name":"main"}']);
    });
  });

  describe("reading", () => {
    beforeAll(async () => {
      k.ok(["apply", "-f", "-"], {
        input: `${ns("browse")}---\n${deployment("browse", "web", 2)}---\n${pod("browse", "loner", { app: "loner", tier: "solo" })}`,
      });
      await podsReady("browse", "app=web", 2);
      await podsReady("browse", "app=loner", 1);
    }, 60_000);

    it("get prints kubectl's table columns for pods, deployments and nodes", () => {
      const pods = table(ok("get", "pods", "-n", "browse"));
      expect(pods.header).toEqual(["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
      expect(pods.rows).toHaveLength(3);
      const loner = pods.rows.find((r) => r[0] === "loner")!;
      expect(loner.slice(0, 4)).toEqual(["loner", "1/1", "Running", "0"]);
      expect(loner[4]).toMatch(/^\d+(s|m\d*s?)$/);

      const deploys = table(ok("get", "deployments", "-n", "browse"));
      expect(deploys.header).toEqual(["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
      expect(deploys.rows.map((r) => r.slice(0, 4))).toEqual([["web", "2/2", "2", "2"]]);

      const nodes = table(ok("get", "nodes"));
      expect(nodes.header).toEqual(["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
      const row = nodes.rows.find((r) => r[0] === c.nodeName)!;
      expect(row[1]).toBe("Ready");
      expect(row[2]).toBe("<none>");
      expect(row[4]).toMatch(/^v1\.32\./);
    });

    it("get -o wide adds the pod's IP and node", () => {
      const t = table(ok("get", "pods", "-n", "browse", "-o", "wide"));
      expect(t.header).toEqual(["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"]);
      const loner = t.rows.find((r) => r[0] === "loner")!;
      const p = k.json(["get", "pod", "loner", "-n", "browse"]);
      expect(loner[5]).toBe(p.status.podIP);
      expect(loner[6]).toBe(c.nodeName);
      expect(loner.slice(7)).toEqual(["<none>", "<none>"]);
    });

    it("get -o yaml and -o json return the objects; -o jsonpath and -o name select from them", () => {
      const list = parseYAML(ok("get", "pods", "-n", "browse", "-o", "yaml"));
      expect(list.kind).toBe("List");
      expect(list.items.map((p: any) => p.kind)).toEqual(["Pod", "Pod", "Pod"]);
      const one = parseYAML(ok("get", "deployment", "web", "-n", "browse", "-o", "yaml"));
      expect(one).toMatchObject({
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "web", namespace: "browse" },
        spec: { replicas: 2 },
      });
      expect(one.metadata.resourceVersion).toMatch(/^\d+$/);

      const p = k.json(["get", "pod", "loner", "-n", "browse"]);
      expect(p).toMatchObject({ apiVersion: "v1", kind: "Pod", spec: { nodeName: c.nodeName }, status: { phase: "Running" } });

      const jp = ok("get", "pods", "-n", "browse", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}");
      const webNames = jp.split(" ");
      expect(webNames).toHaveLength(2);
      for (const n of webNames) expect(n).toMatch(/^web-[a-z0-9]+-[a-z0-9]{5}$/);
      expect(ok("get", "pod", "loner", "-n", "browse", "-o", "jsonpath={.status.phase} {.spec.containers[0].image}")).toBe(
        "Running busybox:1.36",
      );

      expect(ok("get", "pods", "-n", "browse", "-o", "name").trim().split("\n").sort()).toEqual(
        ["pod/loner", ...webNames.map((n) => `pod/${n}`)].sort(),
      );
      expect(ok("get", "deploy,rs", "-n", "browse", "-o", "name")).toMatch(/^deployment\.apps\/web\nreplicaset\.apps\/web-[a-z0-9]+\n$/);
    });

    it("get -l and --field-selector filter", () => {
      expect(names(k.json(["get", "pods", "-n", "browse", "-l", "app=web"]))).toHaveLength(2);
      expect(names(k.json(["get", "pods", "-n", "browse", "-l", "app!=web"]))).toEqual(["loner"]);
      expect(names(k.json(["get", "pods", "-n", "browse", "-l", "app in (loner),tier=solo"]))).toEqual(["loner"]);
      expect(names(k.json(["get", "pods", "-n", "browse", "--field-selector", "status.phase=Running"]))).toHaveLength(3);
      expect(
        names(
          k.json([
            "get",
            "pods",
            "-n",
            "browse",
            "--field-selector",
            `status.phase=Running,spec.nodeName=${c.nodeName}`,
            "-l",
            "app=loner",
          ]),
        ),
      ).toEqual(["loner"]);
      const none = run(["get", "pods", "-n", "browse", "--field-selector", "status.phase=Pending"]);
      expectExit(none, 0);
      expect(none.stdout).toBe("");
      expect(none.stderr).toBe("No resources found in browse namespace.\n");
      const badField = run(["get", "pods", "-n", "browse", "--field-selector", "spec.bogus=1"]);
      expectExit(badField, 1);
      expect(badField.stderr).toContain("Error from server (BadRequest)");
    });

    it("get --all-namespaces lists every namespace's objects with a NAMESPACE column", () => {
      const t = table(ok("get", "pods", "--all-namespaces"));
      expect(t.header).toEqual(["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
      expect(t.rows.some((r) => r[0] === "browse" && r[1] === "loner")).toBe(true);
      const namespaces = new Set(k.json(["get", "deployments", "-A"]).items.map((d: any) => d.metadata.namespace));
      expect(namespaces.has("browse")).toBe(true);
      expect(namespaces.size).toBeGreaterThan(1);
    });

    it("get -w prints a new line when a pod is added", async () => {
      const w = k.spawn(["get", "pods", "-n", "browse", "-w", "--request-timeout=15s"]);
      try {
        await w.waitFor(/^loner\s+1\/1\s+Running\s+0\s+\S+$/m);
        expect(w.stdout).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
        k.ok(["apply", "-f", "-"], { input: pod("browse", "watched", { app: "watched" }) });
        await w.waitFor(/^watched\s+0\/1\s+\S+\s+0\s+\S+$/m);
        await w.waitFor(/^watched\s+1\/1\s+Running\s+0\s+\S+$/m, 20_000);
        expect(w.stdout.match(/^NAME\s/gm)).toHaveLength(1); // one header, then rows only
      } finally {
        w.stop();
      }
      ok("delete", "pod", "watched", "-n", "browse");
    });

    it("describe pod shows its node, containers, conditions and the kubelet's events", () => {
      const out = ok("describe", "pod", "loner", "-n", "browse");
      expect(out).toMatch(/^Name:\s+loner$/m);
      expect(out).toMatch(/^Namespace:\s+browse$/m);
      expect(out).toMatch(new RegExp(`^Node:\\s+${c.nodeName}/\\S+$`, "m"));
      expect(out).toMatch(/^Labels:\s+app=loner\n\s+tier=solo$/m);
      expect(out).toMatch(/^Status:\s+Running$/m);
      expect(out).toMatch(/^Containers:\n\s+main:\n/m);
      expect(out).toMatch(/^\s+Image:\s+busybox:1\.36$/m);
      expect(out).toMatch(/^\s+State:\s+Running$/m);
      expect(out).toMatch(/^\s+Ready\s+True\s*$/m);
      expect(out).toMatch(/^Events:\n\s+Type\s+Reason\s+Age\s+From\s+Message\n/m);
      expect(out).toMatch(/Normal\s+Started\s+\S+\s+kubelet\s+Started container main/);
    });

    it("describe pod shows the scheduler's Scheduled event", () => {
      const out = ok("describe", "pod", "loner", "-n", "browse");
      expect(out).toMatch(
        new RegExp(`Normal\\s+Scheduled\\s+\\S+\\s+default-scheduler\\s+Successfully assigned browse/loner to ${c.nodeName}`),
      );
    });

    it("describe deployment shows replicas, strategy, ReplicaSets and its ScalingReplicaSet events", () => {
      const out = ok("describe", "deployment", "web", "-n", "browse");
      expect(out).toMatch(/^Name:\s+web$/m);
      expect(out).toMatch(/^Replicas:\s+2 desired \| 2 updated \| 2 total \| 2 available \| 0 unavailable$/m);
      expect(out).toMatch(/^StrategyType:\s+RollingUpdate$/m);
      expect(out).toMatch(/^RollingUpdateStrategy:\s+25% max unavailable, 25% max surge$/m);
      expect(out).toMatch(/^\s+Available\s+True\s+MinimumReplicasAvailable$/m);
      expect(out).toMatch(/^NewReplicaSet:\s+web-[a-z0-9]+ \(2\/2 replicas created\)$/m);
      expect(out).toMatch(/^Events:\n\s+Type\s+Reason\s+Age\s+From\s+Message\n/m);
      expect(out).toMatch(/Normal\s+ScalingReplicaSet\s+\S+\s+deployment-controller\s+Scaled up replica set web-[a-z0-9]+ (from 0 )?to 2/);
    });

    it("describe node shows its conditions, capacity, system info and pods", () => {
      const out = ok("describe", "node", c.nodeName);
      expect(out).toMatch(new RegExp(`^Name:\\s+${c.nodeName}$`, "m"));
      expect(out).toMatch(/^Roles:\s+<none>$/m);
      expect(out).toMatch(new RegExp(`kubernetes\\.io/hostname=${c.nodeName}`));
      expect(out).toMatch(/^\s+Ready\s+True\s+.*KubeletReady/m);
      expect(out).toMatch(/^Capacity:\n(\s+\S+:\s+\S+\n)*\s+pods:\s+110$/m);
      expect(out).toMatch(/^\s+Container Runtime Version:\s+fake:\/\//m);
      expect(out).toMatch(/^Non-terminated Pods:\s+\(\d+ in total\)$/m);
      expect(out).toMatch(/^\s+browse\s+loner\s+/m);
      expect(out).toMatch(new RegExp(`HolderIdentity:\\s+${c.nodeName}`));
    });

    it("get events --field-selector involvedObject.kind=Pod returns only pod events", () => {
      const list = k.json(["get", "events", "-n", "browse", "--field-selector", "involvedObject.kind=Pod"]);
      expect(list.items.length).toBeGreaterThan(0);
      expect(new Set(list.items.map((e: any) => e.involvedObject.kind))).toEqual(new Set(["Pod"]));
      expect(list.items.map((e: any) => e.reason)).toContain("Started");
      const t = table(ok("get", "events", "-n", "browse", "--field-selector", "involvedObject.kind=Pod,involvedObject.name=loner"));
      expect(t.header).toEqual(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]);
      expect(t.rows.length).toBeGreaterThan(0);
      for (const r of t.rows) expect(r[3]).toBe("pod/loner");
      const deploy = k.json(["get", "events", "-n", "browse", "--field-selector", "involvedObject.kind=Deployment"]);
      expect(deploy.items.map((e: any) => e.reason)).toContain("ScalingReplicaSet");
    });

    it("kubectl events lists a namespace's events and filters with --for", () => {
      const all = table(ok("events", "-n", "browse"));
      expect(all.header).toEqual(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]);
      expect(all.rows.some((r) => r[2] === "ScalingReplicaSet" && r[3] === "Deployment/web")).toBe(true);
      const forPod = table(ok("events", "-n", "browse", "--for", "pod/loner"));
      expect(forPod.rows.length).toBeGreaterThan(0);
      for (const r of forPod.rows) expect(r[3]).toBe("Pod/loner");
      expect(forPod.rows.map((r) => r[2])).toContain("Started");
    });
  });

  describe("changing objects", () => {
    beforeAll(() => {
      k.ok(["apply", "-f", "-"], {
        input: `${ns("edit")}---\n${pod("edit", "subject", { app: "subject" })}---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: patchme
  namespace: edit
spec:
  replicas: 0
  selector:
    matchLabels:
      app: patchme
  template:
    metadata:
      labels:
        app: patchme
    spec:
      containers:
      - name: a
        image: nginx:1.25
      - name: b
        image: busybox:1.36
`,
      });
    });
    const meta = (kind: string, name: string) => k.json(["get", kind, name, "-n", "edit"]).metadata;

    it("label adds, refuses to change a value without --overwrite, overwrites, and removes with key-", () => {
      expect(ok("label", "pod", "subject", "-n", "edit", "env=dev")).toBe("pod/subject labeled\n");
      expect(meta("pod", "subject").labels).toEqual({ app: "subject", env: "dev" });
      const refused = run(["label", "pod", "subject", "-n", "edit", "env=prod"]);
      expectExit(refused, 1);
      expect(refused.stderr).toContain("'env' already has a value (dev), and --overwrite is false");
      expect(meta("pod", "subject").labels.env).toBe("dev");
      expect(ok("label", "pod", "subject", "-n", "edit", "env=prod", "--overwrite")).toBe("pod/subject labeled\n");
      expect(meta("pod", "subject").labels.env).toBe("prod");
      expect(ok("label", "pod", "subject", "-n", "edit", "env-")).toBe("pod/subject unlabeled\n");
      expect(meta("pod", "subject").labels).toEqual({ app: "subject" });
      // By selector, several at once.
      expect(ok("label", "pods", "-n", "edit", "-l", "app=subject", "checked=yes")).toBe("pod/subject labeled\n");
      expect(names(k.json(["get", "pods", "-n", "edit", "-l", "checked=yes"]))).toEqual(["subject"]);
    });

    it("annotate adds, refuses to change a value without --overwrite, overwrites, and removes with key-", () => {
      expect(ok("annotate", "pod", "subject", "-n", "edit", "note=one")).toBe("pod/subject annotated\n");
      expect(meta("pod", "subject").annotations).toMatchObject({ note: "one" });
      const refused = run(["annotate", "pod", "subject", "-n", "edit", "note=two"]);
      expectExit(refused, 1);
      expect(refused.stderr).toContain("'note' already has a value (one)");
      expect(ok("annotate", "pod", "subject", "-n", "edit", "note=two", "--overwrite")).toBe("pod/subject annotated\n");
      expect(meta("pod", "subject").annotations.note).toBe("two");
      expect(ok("annotate", "pod", "subject", "-n", "edit", "note-")).toBe("pod/subject annotated\n");
      expect(meta("pod", "subject").annotations?.note).toBeUndefined();
    });

    it("patch: strategic (default) merges containers by name, merge replaces lists and deletes with null, json applies operations", () => {
      const containers = () =>
        k.json(["get", "deployment", "patchme", "-n", "edit"]).spec.template.spec.containers.map((x: any) => `${x.name}=${x.image}`);
      const strategic = '{"spec":{"template":{"spec":{"containers":[{"name":"b","image":"busybox:1.37"}]}}}}';
      expect(ok("patch", "deployment", "patchme", "-n", "edit", "-p", strategic)).toBe("deployment.apps/patchme patched\n");
      expect(containers()).toEqual(["a=nginx:1.25", "b=busybox:1.37"]);
      expect(ok("patch", "deployment", "patchme", "-n", "edit", "-p", strategic)).toBe("deployment.apps/patchme patched (no change)\n");
      expect(ok("patch", "deployment", "patchme", "-n", "edit", "--type=strategic", "-p", '{"metadata":{"labels":{"team":"x"}}}')).toBe(
        "deployment.apps/patchme patched\n",
      );

      const merge =
        '{"metadata":{"labels":{"team":null,"merged":"yes"}},"spec":{"template":{"spec":{"containers":[{"name":"b","image":"busybox:1.38"}]}}}}';
      expect(ok("patch", "deployment", "patchme", "-n", "edit", "--type=merge", "-p", merge)).toBe("deployment.apps/patchme patched\n");
      expect(containers()).toEqual(["b=busybox:1.38"]); // a merge patch replaces the whole list
      expect(meta("deployment", "patchme").labels).toEqual({ merged: "yes" });

      const json =
        '[{"op":"replace","path":"/spec/replicas","value":1},{"op":"add","path":"/metadata/labels/patched","value":"json"},{"op":"remove","path":"/metadata/labels/merged"}]';
      expect(ok("patch", "deployment", "patchme", "-n", "edit", "--type=json", "-p", json)).toBe("deployment.apps/patchme patched\n");
      const d = k.json(["get", "deployment", "patchme", "-n", "edit"]);
      expect(d.spec.replicas).toBe(1);
      expect(d.metadata.labels).toEqual({ patched: "json" });

      const failedTest = run([
        "patch",
        "deployment",
        "patchme",
        "-n",
        "edit",
        "--type=json",
        "-p",
        '[{"op":"test","path":"/spec/replicas","value":5}]',
      ]);
      expectExit(failedTest, 1);
      expect(failedTest.stderr).toMatch(/^The request is invalid: .*testing value \/spec\/replicas failed/m);
      expect(k.json(["get", "deployment", "patchme", "-n", "edit"]).spec.replicas).toBe(1);
    });
  });

  describe("deployments", () => {
    const images = (selector: string) =>
      k
        .json(["get", "pods", "-n", "rollout", "-l", selector])
        .items.filter((p: any) => !p.metadata.deletionTimestamp)
        .map((p: any) => p.spec.containers[0].image);
    const status = (timeout = "60s") => run(["rollout", "status", "deployment/app", "-n", "rollout", `--timeout=${timeout}`], undefined);

    beforeAll(async () => {
      k.ok(["apply", "-f", "-"], { input: `${ns("rollout")}---\n${deployment("rollout", "app", 1)}` });
      await podsReady("rollout", "app=app", 1);
    }, 60_000);

    it("scale changes the replicas and rollout status waits until they are available", async () => {
      expect(ok("scale", "deployment", "app", "-n", "rollout", "--replicas=3")).toBe("deployment.apps/app scaled\n");
      const st = status();
      expectExit(st, 0);
      expect(st.stdout).toContain('deployment "app" successfully rolled out');
      const d = k.json(["get", "deployment", "app", "-n", "rollout"]);
      expect(d.spec.replicas).toBe(3);
      expect(d.status).toMatchObject({ replicas: 3, readyReplicas: 3, availableReplicas: 3, updatedReplicas: 3 });
      await podsReady("rollout", "app=app", 3);
      expect(ok("scale", "deploy/app", "-n", "rollout", "--replicas=2")).toBe("deployment.apps/app scaled\n");
      await podsReady("rollout", "app=app", 2);
    });

    it("set image rolls out a new revision that rollout history lists, and rollout undo goes back", async () => {
      expect(ok("set", "image", "deployment/app", "-n", "rollout", "main=nginx:1.26")).toBe("deployment.apps/app image updated\n");
      expectExit(status(), 0);
      await eventually("pods on nginx:1.26", () => {
        const imgs = images("app=app");
        return imgs.length === 2 && imgs.every((i: string) => i === "nginx:1.26");
      });
      const hist = ok("rollout", "history", "deployment/app", "-n", "rollout");
      expect(hist).toMatch(/^REVISION\s+CHANGE-CAUSE$/m);
      expect(hist).toMatch(/^1\s+<none>$/m);
      expect(hist).toMatch(/^2\s+<none>$/m);
      expect(ok("rollout", "history", "deployment/app", "-n", "rollout", "--revision=2")).toMatch(/Image:\s+nginx:1\.26/);
      expect(ok("rollout", "history", "deployment/app", "-n", "rollout", "--revision=1")).toMatch(/Image:\s+nginx:1\.25/);

      expect(ok("rollout", "undo", "deployment/app", "-n", "rollout")).toBe("deployment.apps/app rolled back\n");
      expectExit(status(), 0);
      expect(k.json(["get", "deployment", "app", "-n", "rollout"]).spec.template.spec.containers[0].image).toBe("nginx:1.25");
      await eventually("pods back on nginx:1.25", () => {
        const imgs = images("app=app");
        return imgs.length === 2 && imgs.every((i: string) => i === "nginx:1.25");
      });
      const after = ok("rollout", "history", "deployment/app", "-n", "rollout");
      expect(after).toMatch(/^2\s+<none>$/m);
      expect(after).toMatch(/^3\s+<none>$/m);
      expect(after).not.toMatch(/^1\s+<none>$/m); // revision 1 became 3
    });

    it("rollout pause holds template changes back until rollout resume", async () => {
      expect(ok("rollout", "pause", "deployment/app", "-n", "rollout")).toBe("deployment.apps/app paused\n");
      expect(k.json(["get", "deployment", "app", "-n", "rollout"]).spec.paused).toBe(true);
      const rsBefore = names(k.json(["get", "rs", "-n", "rollout", "-l", "app=app"]));
      expect(ok("set", "image", "deployment/app", "-n", "rollout", "main=nginx:1.27")).toBe("deployment.apps/app image updated\n");
      await sleep(2500);
      expect(images("app=app")).toEqual(["nginx:1.25", "nginx:1.25"]);
      expect(names(k.json(["get", "rs", "-n", "rollout", "-l", "app=app"]))).toEqual(rsBefore);
      const waiting = status("2s");
      expect(waiting.code, show(waiting)).not.toBe(0);
      expect(waiting.stdout).toContain('Waiting for deployment "app" rollout to finish: 0 out of 2 new replicas have been updated...');

      expect(ok("rollout", "resume", "deployment/app", "-n", "rollout")).toBe("deployment.apps/app resumed\n");
      expect(k.json(["get", "deployment", "app", "-n", "rollout"]).spec.paused).toBeUndefined();
      expectExit(status(), 0);
      await eventually("pods on nginx:1.27", () => {
        const imgs = images("app=app");
        return imgs.length === 2 && imgs.every((i: string) => i === "nginx:1.27");
      });
    });

    it("rollout restart replaces every pod", async () => {
      const before = new Set(names(k.json(["get", "pods", "-n", "rollout", "-l", "app=app"])));
      expect(ok("rollout", "restart", "deployment/app", "-n", "rollout")).toBe("deployment.apps/app restarted\n");
      const d = k.json(["get", "deployment", "app", "-n", "rollout"]);
      expect(d.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]).toMatch(/^\d{4}-\d\d-\d\dT/);
      expectExit(status(), 0);
      const after = await podsReady("rollout", "app=app", 2);
      for (const p of after) expect(before.has(p.metadata.name)).toBe(false);
    });
  });

  describe("deleting", () => {
    beforeAll(() => {
      k.ok(["apply", "-f", "-"], { input: ns("cascade") });
    });
    const inCascade = (selector: string) => names(k.json(["get", "deployments,replicasets,pods", "-n", "cascade", "-l", selector]));

    it("delete with the default cascade, or --cascade=background, removes the Deployment, then its ReplicaSets and pods", async () => {
      k.ok(["apply", "-f", "-"], { input: `${deployment("cascade", "bg", 2)}---\n${deployment("cascade", "bg2", 1)}` });
      await podsReady("cascade", "app=bg", 2);
      await podsReady("cascade", "app=bg2", 1);
      expect(ok("delete", "deployment", "bg", "-n", "cascade")).toBe('deployment.apps "bg" deleted\n');
      expect(ok("delete", "deployment", "bg2", "-n", "cascade", "--cascade=background")).toBe('deployment.apps "bg2" deleted\n');
      for (const name of ["bg", "bg2"]) {
        const r = run(["get", "deployment", name, "-n", "cascade"]);
        expectExit(r, 1);
        expect(r.stderr).toContain(`Error from server (NotFound): deployments.apps "${name}" not found`);
      }
      await eventually("bg's and bg2's ReplicaSets and pods gone", () => inCascade("app in (bg,bg2)").length === 0);
    });

    it("delete --cascade=foreground returns once the ReplicaSets and pods are gone", async () => {
      k.ok(["apply", "-f", "-"], { input: deployment("cascade", "fg", 2) });
      await podsReady("cascade", "app=fg", 2);
      expect(ok("delete", "deployment", "fg", "-n", "cascade", "--cascade=foreground")).toBe('deployment.apps "fg" deleted\n');
      expect(inCascade("app=fg")).toEqual([]);
    });

    it("delete --cascade=orphan leaves the dependents, without ownerReferences: the ReplicaSet's pods keep running", async () => {
      k.ok(["apply", "-f", "-"], { input: deployment("cascade", "orph", 2) });
      const pods = await podsReady("cascade", "app=orph", 2);
      expect(ok("delete", "deployment", "orph", "-n", "cascade", "--cascade=orphan")).toBe('deployment.apps "orph" deleted\n');
      const rs = k.json(["get", "replicasets", "-n", "cascade", "-l", "app=orph"]).items;
      expect(rs).toHaveLength(1);
      expect(rs[0].metadata.ownerReferences ?? []).toEqual([]);

      expect(ok("delete", "replicaset", rs[0].metadata.name, "-n", "cascade", "--cascade=orphan")).toBe(
        `replicaset.apps "${rs[0].metadata.name}" deleted\n`,
      );
      await sleep(2000); // nothing should come and delete or replace them
      const left = k.json(["get", "pods", "-n", "cascade", "-l", "app=orph"]).items;
      expect(left.map((p: any) => p.metadata.name).sort()).toEqual(pods.map((p: any) => p.metadata.name).sort());
      for (const p of left) {
        expect(p.metadata.ownerReferences ?? []).toEqual([]);
        expect(p.metadata.deletionTimestamp).toBeUndefined();
        expect(isReady(p)).toBe(true);
      }
      expect(k.json(["get", "replicasets", "-n", "cascade", "-l", "app=orph"]).items).toEqual([]);
      ok("delete", "pods", "-n", "cascade", "-l", "app=orph");
    });

    it("delete -f deletes what a manifest names", () => {
      const file = write(
        "doomed.yaml",
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: doomed\n  namespace: cascade\ndata:\n  a: "1"\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: doomed\n  namespace: cascade\nspec:\n  ports:\n  - port: 80\n`,
      );
      ok("apply", "-f", file);
      const r = run(["delete", "-f", file]);
      expectExit(r, 0);
      expect(r.stdout).toBe('configmap "doomed" deleted\nservice "doomed" deleted\n');
      for (const kind of ["configmap", "service"]) expectExit(run(["get", kind, "doomed", "-n", "cascade"]), 1);
      const again = run(["delete", "-f", file]);
      expectExit(again, 1);
      expect(again.stderr).toContain('Error from server (NotFound): error when deleting "' + file + '": configmaps "doomed" not found');
      expectExit(run(["delete", "-f", file, "--ignore-not-found"]), 0);
    });

    it("delete --all empties a namespace of one kind and waits for pods to be gone", async () => {
      k.ok(["apply", "-f", "-"], {
        input: [
          ns("sweep"),
          ...["one", "two", "three"].map((n) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${n}\n  namespace: sweep\n`),
          pod("sweep", "p1", { app: "p" }),
          pod("sweep", "p2", { app: "p" }),
        ].join("---\n"),
      });
      await podsReady("sweep", "app=p", 2);
      const r = run(["delete", "configmaps", "--all", "-n", "sweep"]);
      expectExit(r, 0);
      expect(r.stdout.trim().split("\n").sort()).toEqual([
        'configmap "one" deleted',
        'configmap "three" deleted',
        'configmap "two" deleted',
      ]);
      expect(k.json(["get", "configmaps", "-n", "sweep"]).items.map((x: any) => x.metadata.name)).toEqual([]);
      const rp = run(["delete", "pods", "--all", "-n", "sweep"], undefined);
      expectExit(rp, 0);
      expect(rp.stdout.trim().split("\n").sort()).toEqual(['pod "p1" deleted', 'pod "p2" deleted']);
      const none = run(["get", "pods", "-n", "sweep"]);
      expect(none.stderr).toBe("No resources found in sweep namespace.\n");
    });

    it("delete --grace-period=0 --force removes a pod at once", async () => {
      k.ok(["apply", "-f", "-"], {
        input: `apiVersion: v1\nkind: Pod\nmetadata:\n  name: stubborn\n  namespace: cascade\nspec:\n  terminationGracePeriodSeconds: 600\n  containers:\n  - name: main\n    image: busybox:1.36\n`,
      });
      await eventually("stubborn Running", () => isReady(k.json(["get", "pod", "stubborn", "-n", "cascade"])));
      const t0 = Date.now();
      const r = run(["delete", "pod", "stubborn", "-n", "cascade", "--grace-period=0", "--force"]);
      expectExit(r, 0);
      expect(r.stdout).toBe('pod "stubborn" force deleted\n');
      expect(r.stderr).toContain("Warning: Immediate deletion does not wait for confirmation");
      expect(Date.now() - t0).toBeLessThan(10_000);
      const gone = run(["get", "pod", "stubborn", "-n", "cascade"]);
      expectExit(gone, 1);
      expect(gone.stderr).toContain('Error from server (NotFound): pods "stubborn" not found');
    });
  });

  describe("typed create (protobuf bodies)", () => {
    it("create namespace / configmap / secret generic / deployment / service clusterip / serviceaccount / role / rolebinding", async () => {
      expect(ok("create", "namespace", "typed")).toBe("namespace/typed created\n");
      expect(k.json(["get", "namespace", "typed"]).status.phase).toBe("Active");

      expect(ok("create", "configmap", "cfg", "-n", "typed", "--from-literal=a=1", "--from-literal=b=two")).toBe("configmap/cfg created\n");
      expect(k.json(["get", "configmap", "cfg", "-n", "typed"]).data).toEqual({ a: "1", b: "two" });

      expect(ok("create", "secret", "generic", "creds", "-n", "typed", "--from-literal=password=s3cr3t")).toBe("secret/creds created\n");
      const sec = k.json(["get", "secret", "creds", "-n", "typed"]);
      expect(sec.type).toBe("Opaque");
      expect(Buffer.from(sec.data.password, "base64").toString()).toBe("s3cr3t");

      expect(ok("create", "deployment", "api", "-n", "typed", "--image=nginx:1.25", "--replicas=2", "--port=8080")).toBe(
        "deployment.apps/api created\n",
      );
      const d = k.json(["get", "deployment", "api", "-n", "typed"]);
      expect(d.spec.replicas).toBe(2);
      expect(d.spec.selector.matchLabels).toEqual({ app: "api" });
      expect(d.spec.template.spec.containers[0]).toMatchObject({ name: "nginx", image: "nginx:1.25", ports: [{ containerPort: 8080 }] });

      expect(ok("create", "service", "clusterip", "api", "-n", "typed", "--tcp=80:8080")).toBe("service/api created\n");
      const svc = k.json(["get", "service", "api", "-n", "typed"]);
      expect(svc.spec).toMatchObject({
        type: "ClusterIP",
        selector: { app: "api" },
        ports: [{ name: "80-8080", port: 80, targetPort: 8080, protocol: "TCP" }],
      });

      expect(ok("create", "serviceaccount", "robot", "-n", "typed")).toBe("serviceaccount/robot created\n");
      expect(k.json(["get", "serviceaccount", "robot", "-n", "typed"]).metadata.name).toBe("robot");

      expect(ok("create", "role", "pod-reader", "-n", "typed", "--verb=get,list", "--resource=pods,configmaps")).toBe(
        "role.rbac.authorization.k8s.io/pod-reader created\n",
      );
      expect(k.json(["get", "role", "pod-reader", "-n", "typed"]).rules).toEqual([
        { apiGroups: [""], resources: ["pods", "configmaps"], verbs: ["get", "list"] },
      ]);

      expect(ok("create", "rolebinding", "robot-reads", "-n", "typed", "--role=pod-reader", "--serviceaccount=typed:robot")).toBe(
        "rolebinding.rbac.authorization.k8s.io/robot-reads created\n",
      );
      const rb = k.json(["get", "rolebinding", "robot-reads", "-n", "typed"]);
      expect(rb.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "pod-reader" });
      expect(rb.subjects).toEqual([{ kind: "ServiceAccount", name: "robot", namespace: "typed" }]);

      await podsReady("typed", "app=api", 2);
      expect(table(ok("get", "endpoints", "api", "-n", "typed")).rows[0][1]).toMatch(/:8080/);
    });

    it("create token issues a ServiceAccount token that authenticates as the ServiceAccount", async () => {
      const token = ok("create", "token", "robot", "-n", "typed", "--duration=10m").trim();
      const parts = token.split(".");
      expect(parts).toHaveLength(3);
      const claims = JSON.parse(Buffer.from(parts[1], "base64url").toString());
      expect(claims.sub).toBe("system:serviceaccount:typed:robot");
      expect(claims.exp - claims.iat).toBe(600);

      const who = ok("--token", token, "auth", "whoami");
      expect(who).toMatch(/^Username\s+system:serviceaccount:typed:robot$/m);
      expect(who).toMatch(/system:serviceaccounts:typed/);
      await eventually(
        "the robot's RoleBinding to apply",
        () => k.run(["--token", token, "auth", "can-i", "list", "pods", "-n", "typed"]).stdout === "yes\n",
        8000,
      );
      const no = k.run(["--token", token, "auth", "can-i", "delete", "pods", "-n", "typed"]);
      expect(no.stdout).toBe("no\n");
      expectExit(no, 1);
      expect(names(JSON.parse(k.ok(["--token", token, "get", "pods", "-n", "typed", "-o", "json"])))).toHaveLength(2);
    });
  });

  describe("authorization", () => {
    it("auth can-i says yes to the admin, and auth whoami names it", () => {
      for (const args of [
        ["*", "*"],
        ["delete", "pods", "-n", "kube-system"],
        ["create", "clusterrolebindings"],
        ["get", "secrets", "-A"],
      ]) {
        const r = run(["auth", "can-i", ...args]);
        expectExit(r, 0);
        expect(r.stdout).toBe("yes\n");
      }
      const who = ok("auth", "whoami");
      expect(who).toMatch(/^ATTRIBUTE\s+VALUE$/m);
      expect(who).toMatch(/^Username\s+\S+$/m);
      expect(who).toMatch(/^Groups\s+\[.*system:masters.*\]$/m);
    });

    it("a new user may do nothing; a view RoleBinding made with kubectl lets it get and list pods in that namespace only, never delete", async () => {
      const file = join(c.dir, "erin.kubeconfig");
      const made = c.cli(["user", "create", "erin", "--kubeconfig-out", file]);
      expect(made.code, show(made)).toBe(0);
      const u = c.kubectlFor(file);
      expect(u.ok(["auth", "whoami"])).toMatch(/^Username\s+erin$/m);
      k.ok(["apply", "-f", "-"], { input: `${ns("authz")}---\n${pod("authz", "visible", { app: "visible" })}` });

      const can = (...args: string[]) => {
        const r = u.run(["auth", "can-i", ...args]);
        expect(r.stdout, show(r)).toMatch(/^(yes|no)\n$/);
        expect(r.code, show(r)).toBe(r.stdout === "yes\n" ? 0 : 1);
        return r.stdout.trim();
      };
      expect(can("get", "pods", "-n", "authz")).toBe("no");
      expect(can("list", "pods", "-n", "authz")).toBe("no");
      const denied = u.run(["get", "pods", "-n", "authz"]);
      expect(denied.code).toBe(1);
      expect(denied.stderr).toContain(
        'Error from server (Forbidden): pods is forbidden: User "erin" cannot list resource "pods" in API group "" in the namespace "authz"',
      );
      const secrets = u.run(["get", "secrets", "-n", "kube-system"]);
      expect(secrets.code).toBe(1);
      expect(secrets.stderr).toContain(
        'Error from server (Forbidden): secrets is forbidden: User "erin" cannot list resource "secrets" in API group "" in the namespace "kube-system"',
      );

      expect(ok("create", "rolebinding", "erin-view", "-n", "authz", "--clusterrole=view", "--user=erin")).toBe(
        "rolebinding.rbac.authorization.k8s.io/erin-view created\n",
      );
      const rb = k.json(["get", "rolebinding", "erin-view", "-n", "authz"]);
      expect(rb.subjects).toEqual([{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "erin" }]);
      await eventually(
        "erin may get pods in authz",
        () => u.run(["auth", "can-i", "get", "pods", "-n", "authz"]).stdout === "yes\n",
        10_000,
      );
      expect(can("get", "pods", "-n", "authz")).toBe("yes");
      expect(can("list", "pods", "-n", "authz")).toBe("yes");
      expect(can("watch", "pods", "-n", "authz")).toBe("yes");
      expect(can("delete", "pods", "-n", "authz")).toBe("no");
      expect(can("create", "pods", "-n", "authz")).toBe("no");
      expect(can("get", "secrets", "-n", "authz")).toBe("no"); // view does not include secrets
      expect(can("list", "pods", "-n", "default")).toBe("no");
      expect(can("list", "pods", "-n", "kube-system")).toBe("no");

      expect(names(JSON.parse(u.ok(["get", "pods", "-n", "authz", "-o", "json"])))).toEqual(["visible"]);
      const del = u.run(["delete", "pod", "visible", "-n", "authz"]);
      expect(del.code).toBe(1);
      expect(del.stderr).toContain(
        'Error from server (Forbidden): pods "visible" is forbidden: User "erin" cannot delete resource "pods" in API group "" in the namespace "authz"',
      );
      expect(u.run(["get", "pods", "-n", "default"]).stderr).toContain("Error from server (Forbidden)");
      expect(u.run(["get", "secrets", "-n", "kube-system"]).stderr).toContain("Error from server (Forbidden)");
    });
  });

  describe("explain", () => {
    it("explain pod.spec.containers describes the field and lists its fields", () => {
      const out = ok("explain", "pod.spec.containers");
      expect(out).toMatch(/^KIND:\s+Pod$/m);
      expect(out).toMatch(/^VERSION:\s+v1$/m);
      expect(out).toMatch(/^FIELD:\s+containers <\[\]Container>$/m);
      expect(out).toMatch(/^DESCRIPTION:\n\s+List of containers belonging to the pod/m);
      expect(out).toMatch(/^\s+image\t<string>$/m);
      expect(out).toMatch(/^\s+name\t<string> -required-$/m);
      expect(out).toMatch(/^\s+env\t<\[\]EnvVar>$/m);
    });

    it("explain deployment.spec.strategy describes the strategy fields", () => {
      const out = ok("explain", "deployment.spec.strategy");
      expect(out).toMatch(/^GROUP:\s+apps$/m);
      expect(out).toMatch(/^KIND:\s+Deployment$/m);
      expect(out).toMatch(/^FIELD:\s+strategy <DeploymentStrategy>$/m);
      expect(out).toMatch(/^\s+rollingUpdate\t<RollingUpdateDeployment>$/m);
      expect(out).toMatch(/^\s+type\t<string>$/m);
      expect(out).toMatch(/"Recreate" or "RollingUpdate"/);
    });
  });
});
