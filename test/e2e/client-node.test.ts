// The real Kubernetes JavaScript client (@kubernetes/client-node v2) against the
// control plane: typed CoreV1Api calls, Watch, and informers, including an informer
// that has to relist after its resourceVersion was compacted away while it was
// disconnected (410 Gone).

import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ControlPlane, kubeconfigYAML } from "../../scripts/control-plane.ts";
import { type Json, portOf, removeStateDir, sleep, start, tempStateDir, waitFor } from "./harness.ts";

/** A client from the control plane's kubeconfig (HTTPS, its self-signed CA, the admin token). */
function clientFor(cp: ControlPlane): { kc: k8s.KubeConfig; core: k8s.CoreV1Api } {
  expect(cp.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  expect(cp.caCert).toBeTruthy();
  const kc = new k8s.KubeConfig();
  kc.loadFromString(kubeconfigYAML(cp.url, cp.token, cp.caCert));
  expect(kc.getCurrentCluster()?.server).toBe(cp.url);
  expect(kc.getCurrentCluster()?.skipTLSVerify).toBeFalsy();
  expect(kc.getCurrentUser()?.token).toBe(cp.token);
  return { kc, core: kc.makeApiClient(k8s.CoreV1Api) };
}

function pod(name: string, labels: Record<string, string>): k8s.V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels },
    spec: { containers: [{ name: "main", image: "nginx:1.27" }] },
  };
}

const mergePatch = () => k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

function names(objs: ReadonlyArray<{ metadata?: { name?: string } }>): string[] {
  return objs.map((o) => o.metadata?.name ?? "").sort();
}

async function expectApiError(p: Promise<unknown>, code: number, reason: string): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(k8s.ApiException);
  const e = err as k8s.ApiException<unknown>;
  expect(e.code).toBe(code);
  const body = typeof e.body === "string" ? (JSON.parse(e.body) as Json) : (e.body as Json);
  expect(body).toMatchObject({ kind: "Status", code, reason });
}

describe("@kubernetes/client-node against the control plane", () => {
  const NS = "client-node";
  let stateDir = "";
  let cp: ControlPlane | undefined;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;

  beforeAll(async () => {
    stateDir = tempStateDir();
    cp = await start({ stateDir, tls: true });
    ({ kc, core } = clientFor(cp));
  });

  afterAll(async () => {
    await cp?.stop();
    removeStateDir(stateDir);
  });

  it("creates, lists (with a label selector), gets, merge-patches and deletes pods with CoreV1Api", async () => {
    const ns = await core.createNamespace({ body: { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } } });
    expect(ns.metadata?.name).toBe(NS);
    expect(ns.metadata?.uid).toBeTruthy();

    const created: k8s.V1Pod[] = [];
    for (const [name, app] of [
      ["web-0", "web"],
      ["web-1", "web"],
      ["db-0", "db"],
    ] as const) {
      const p = await core.createNamespacedPod({ namespace: NS, body: pod(name, { app }) });
      expect(p.metadata?.namespace).toBe(NS);
      expect(p.metadata?.uid).toBeTruthy();
      expect(Number(p.metadata?.resourceVersion)).toBeGreaterThan(0);
      created.push(p);
    }
    await expectApiError(core.createNamespacedPod({ namespace: NS, body: pod("web-0", { app: "web" }) }), 409, "AlreadyExists");

    const all = await core.listNamespacedPod({ namespace: NS });
    expect(all.kind).toBe("PodList");
    expect(names(all.items)).toEqual(["db-0", "web-0", "web-1"]);
    expect(Number(all.metadata?.resourceVersion)).toBeGreaterThanOrEqual(Number(created[2].metadata?.resourceVersion));

    const web = await core.listNamespacedPod({ namespace: NS, labelSelector: "app=web" });
    expect(names(web.items)).toEqual(["web-0", "web-1"]);
    const notWeb = await core.listNamespacedPod({ namespace: NS, labelSelector: "app!=web" });
    expect(names(notWeb.items)).toEqual(["db-0"]);

    // (The scheduler may have written the pod's status since: the resourceVersion can only have grown.)
    const got = await core.readNamespacedPod({ name: "web-0", namespace: NS });
    expect(got.metadata?.uid).toBe(created[0].metadata?.uid);
    expect(got.metadata?.labels).toEqual({ app: "web" });
    expect(Number(got.metadata?.resourceVersion)).toBeGreaterThanOrEqual(Number(created[0].metadata?.resourceVersion));
    expect(got.spec?.containers[0]?.image).toBe("nginx:1.27");

    // A JSON merge patch (not the client's default JSON Patch content type): the new
    // label is merged in, the old one stays.
    const before = await core.readNamespacedPod({ name: "web-1", namespace: NS });
    const patched = await core.patchNamespacedPod(
      { name: "web-1", namespace: NS, body: { metadata: { labels: { tier: "frontend" } } } },
      mergePatch(),
    );
    expect(patched.metadata?.labels).toEqual({ app: "web", tier: "frontend" });
    expect(Number(patched.metadata?.resourceVersion)).toBeGreaterThan(Number(before.metadata?.resourceVersion));
    expect(patched.spec?.containers[0]?.image).toBe("nginx:1.27");
    expect(patched.metadata?.uid).toBe(created[1].metadata?.uid);
    const frontend = await core.listNamespacedPod({ namespace: NS, labelSelector: "app=web,tier=frontend" });
    expect(names(frontend.items)).toEqual(["web-1"]);

    const deleted = await core.deleteNamespacedPod({ name: "db-0", namespace: NS });
    expect(deleted.metadata?.name).toBe("db-0");
    await expectApiError(core.readNamespacedPod({ name: "db-0", namespace: NS }), 404, "NotFound");
    expect(names((await core.listNamespacedPod({ namespace: NS })).items)).toEqual(["web-0", "web-1"]);
  });

  it("streams ADDED, MODIFIED and DELETED through k8s.Watch from a list's resourceVersion", async () => {
    const list = await core.listNamespacedPod({ namespace: NS });
    const from = list.metadata!.resourceVersion!;
    const events: Array<{ type: string; name: string; rv: number; labels: Record<string, string> }> = [];
    let doneErr: unknown = "not done";
    const watch = new k8s.Watch(kc);
    const req = await watch.watch(
      `/api/v1/namespaces/${NS}/pods`,
      { resourceVersion: from },
      (type: string, obj: k8s.V1Pod) => {
        events.push({
          type,
          name: obj.metadata?.name ?? "",
          rv: Number(obj.metadata?.resourceVersion),
          labels: obj.metadata?.labels ?? {},
        });
      },
      (err: unknown) => {
        doneErr = err;
      },
    );
    try {
      const p = await core.createNamespacedPod({ namespace: NS, body: pod("watched", { app: "watched" }) });
      const m = await core.patchNamespacedPod(
        { name: "watched", namespace: NS, body: { metadata: { labels: { step: "two" } } } },
        mergePatch(),
      );
      const d = await core.deleteNamespacedPod({ name: "watched", namespace: NS });
      await waitFor("the DELETED event", () => events.some((e) => e.type === "DELETED"));
      await sleep(200); // nothing else should arrive after it
      // Only changes after `from` arrive, in revision order. Besides ours, the scheduler
      // may modify the pod (its PodScheduled condition): extra MODIFIED events between.
      const mine = events.filter((e) => e.name === "watched");
      expect(mine[0]).toMatchObject({ type: "ADDED", rv: Number(p.metadata?.resourceVersion), labels: { app: "watched" } });
      expect(mine[mine.length - 1]).toMatchObject({ type: "DELETED", rv: Number(d.metadata?.resourceVersion) });
      expect(mine.slice(1, -1).every((e) => e.type === "MODIFIED")).toBe(true);
      expect(mine.find((e) => e.rv === Number(m.metadata?.resourceVersion))).toMatchObject({
        type: "MODIFIED",
        labels: { app: "watched", step: "two" },
      });
      expect(events.filter((e) => e.type !== "MODIFIED").map((e) => [e.type, e.name])).toEqual([
        ["ADDED", "watched"],
        ["DELETED", "watched"],
      ]);
      for (let i = 1; i < events.length; i++) expect(events[i].rv).toBeGreaterThan(events[i - 1].rv);
      expect(events[0].rv).toBeGreaterThan(Number(from));
      expect(doneErr).toBe("not done"); // the watch stayed open
    } finally {
      req.abort();
    }
  });

  it("keeps an informer (makeInformer) in sync: initial list, then add, update and delete callbacks", async () => {
    const path = `/api/v1/namespaces/${NS}/pods`;
    const informer = k8s.makeInformer(kc, path, () => core.listNamespacedPod({ namespace: NS }));
    const added: string[] = [];
    const updated: string[] = [];
    const removed: string[] = [];
    const errors: unknown[] = [];
    informer.on("add", (o: k8s.V1Pod) => added.push(o.metadata!.name!));
    informer.on("update", (o: k8s.V1Pod) => updated.push(o.metadata!.name!));
    informer.on("delete", (o: k8s.V1Pod) => removed.push(o.metadata!.name!));
    informer.on("error", (e: unknown) => errors.push(e));
    await informer.start();
    try {
      await waitFor("initial list", () => names(informer.list(NS)).join() === "web-0,web-1");
      expect(added.sort()).toEqual(["web-0", "web-1"]);

      await core.createNamespacedPod({ namespace: NS, body: pod("informed", { app: "informed" }) });
      await waitFor("add callback", () => added.includes("informed"));
      expect(informer.get("informed", NS)?.metadata?.labels).toEqual({ app: "informed" });

      const updatesBefore = updated.length;
      const m = await core.patchNamespacedPod(
        { name: "informed", namespace: NS, body: { metadata: { labels: { v: "2" } } } },
        mergePatch(),
      );
      await waitFor("the patch in the cache", () => informer.get("informed", NS)?.metadata?.labels?.v === "2");
      expect(updated.slice(updatesBefore)).toContain("informed");
      expect(Number(informer.get("informed", NS)?.metadata?.resourceVersion)).toBeGreaterThanOrEqual(Number(m.metadata?.resourceVersion));

      await core.deleteNamespacedPod({ name: "informed", namespace: NS });
      await waitFor("delete callback", () => removed.includes("informed"));
      expect(names(informer.list(NS))).toEqual(["web-0", "web-1"]);
      expect(informer.get("informed", NS)).toBeUndefined();
      expect(errors).toEqual([]);
    } finally {
      await informer.stop();
    }
  });
});

/** Opens a watch from rv with k8s.Watch and returns its first event (then hangs up); undefined if none comes within 3 s. */
async function firstWatchEvent(kc: k8s.KubeConfig, path: string, rv: string): Promise<{ type: string; object: Json } | undefined> {
  let resolve!: (v: { type: string; object: Json } | undefined) => void;
  const first = new Promise<{ type: string; object: Json } | undefined>((r) => (resolve = r));
  const timer = setTimeout(() => resolve(undefined), 3000);
  const req = await new k8s.Watch(kc).watch(
    path,
    { resourceVersion: rv },
    (type: string, object: Json) => resolve({ type, object }),
    () => resolve(undefined),
  );
  try {
    return await first;
  } finally {
    clearTimeout(timer);
    req.abort();
  }
}

describe("@kubernetes/client-node informer across a restart with compaction (410 Gone)", () => {
  const NS = "relist";
  const PATH = `/api/v1/namespaces/${NS}/pods`;
  // Compact every second, keeping only the newest revision.
  const vars = { COMPACT_MIN_AGE_SECONDS: "0", COMPACT_MIN_REVISIONS: "1", COMPACT_INTERVAL_SECONDS: "1" };
  let stateDir = "";
  let cp: ControlPlane | undefined;
  let informer: k8s.Informer<k8s.V1Pod> & k8s.ObjectCache<k8s.V1Pod>;

  beforeAll(async () => {
    stateDir = tempStateDir();
    cp = await start({ stateDir, vars, tls: true });
  });

  afterAll(async () => {
    await informer?.stop();
    await cp?.stop();
    removeStateDir(stateDir);
  });

  it("re-watches after the server comes back, gets 410 for its compacted resourceVersion, relists and keeps working", async () => {
    const { kc, core } = clientFor(cp!);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await core.createNamespacedPod({ namespace: NS, body: pod("keep", { app: "a" }) });
    await core.createNamespacedPod({ namespace: NS, body: pod("doomed", { app: "a" }) });

    let listCalls = 0;
    informer = k8s.makeInformer(kc, PATH, () => {
      listCalls++;
      return core.listNamespacedPod({ namespace: NS });
    });
    const added: string[] = [];
    const removed: string[] = [];
    const errors: unknown[] = [];
    // client-node's ListWatch does not restart itself after an error (a refused
    // connection, a broken stream): its documented remedy is to start() it again from
    // the 'error' handler. Until `restartOnError` is set, it is left stopped, so that
    // it stays disconnected for the whole outage.
    let restartOnError = false;
    let stopped = false;
    informer.on("add", (o: k8s.V1Pod) => added.push(o.metadata!.name!));
    informer.on("delete", (o: k8s.V1Pod) => removed.push(o.metadata!.name!));
    informer.on("error", (e: unknown) => {
      errors.push(e);
      if (restartOnError && !stopped) {
        setTimeout(() => {
          if (!stopped) informer.start().catch(() => {});
        }, 200);
      }
    });
    // makeInformer's informer is a ListWatch; its resourceVersion shows where it would re-watch from.
    expect(informer).toBeInstanceOf(k8s.ListWatch);
    const lw = informer as unknown as k8s.ListWatch<k8s.V1Pod>;
    await informer.start();
    await waitFor("initial list", () => names(informer.list(NS)).join() === "doomed,keep");
    expect(listCalls).toBe(1);

    // A change seen through the watch, so the informer's resourceVersion is a live one.
    const m = await core.patchNamespacedPod({ name: "keep", namespace: NS, body: { metadata: { labels: { seen: "yes" } } } }, mergePatch());
    await waitFor("the patch through the watch", () => informer.get("keep", NS)?.metadata?.labels?.seen === "yes");
    expect(listCalls).toBe(1); // still the first list: changes came through the watch

    // ---- outage: stop the control plane; the informer's watch breaks.
    const port = portOf(cp!);
    const errorsBefore = errors.length;
    await cp!.stop();
    cp = undefined;
    await waitFor("the informer to notice the outage", () => errors.length > errorsBefore, 20_000);
    const lastRV = lw.latestResourceVersion();
    expect(Number(lastRV)).toBeGreaterThanOrEqual(Number(m.metadata?.resourceVersion));

    // ---- same state dir, same port, aggressive compaction.
    cp = await start({ stateDir, port, vars, tls: true });
    expect(cp.url).toContain(`:${port}`);
    // Changes the informer has not seen: one deletion, one creation, and more writes so
    // that compaction (which keeps the newest revision) passes the informer's revision.
    await core.deleteNamespacedPod({ name: "doomed", namespace: NS });
    await core.createNamespacedPod({ namespace: NS, body: pod("born-after-restart", { app: "a" }) });
    for (let i = 0; i < 3; i++) {
      await core.patchNamespacedPod(
        { name: "keep", namespace: NS, body: { metadata: { annotations: { bump: String(i) } } } },
        mergePatch(),
      );
    }
    // Wait for the compaction alarm: a watch from the informer's revision is now 410.
    const gone = await waitFor(
      "compaction past the informer's resourceVersion",
      async () => {
        const ev = await firstWatchEvent(kc, PATH, lastRV);
        return ev?.type === "ERROR" && ev.object?.code === 410 ? ev : undefined;
      },
      20_000,
      200,
    );
    expect(gone?.object).toMatchObject({ kind: "Status", code: 410, reason: "Expired" });
    // (That watch is the same request the informer makes when it re-watches.)
    expect(
      informer
        .list(NS)
        .map((p) => p.metadata!.name)
        .sort(),
    ).toEqual(["doomed", "keep"]); // still stale

    // ---- reconnect: the informer re-watches from lastRV, gets 410, relists.
    restartOnError = true;
    await informer.start();
    await waitFor("the informer to relist", () => names(informer.list(NS)).join() === "born-after-restart,keep", 20_000);
    expect(listCalls).toBe(2); // the relist really happened (a plain re-watch does not list)
    expect(removed).toContain("doomed"); // dropped by the relist, via the delete callback
    expect(added).toContain("born-after-restart");
    expect(informer.get("doomed", NS)).toBeUndefined();
    expect(informer.get("keep", NS)?.metadata?.annotations).toEqual({ bump: "2" });
    expect(Number(lw.latestResourceVersion())).toBeGreaterThan(Number(lastRV));

    // ... and it keeps working from the new list through its new watch.
    await core.createNamespacedPod({ namespace: NS, body: pod("after-relist", { app: "a" }) });
    await waitFor("an add after the relist", () => added.includes("after-relist"), 20_000);
    await core.deleteNamespacedPod({ name: "born-after-restart", namespace: NS });
    await waitFor("a delete after the relist", () => removed.includes("born-after-restart"), 20_000);
    expect(names(informer.list(NS))).toEqual(["after-relist", "keep"]);
    expect(listCalls).toBe(2);

    stopped = true;
    await informer.stop();
    expect(names((await core.listNamespacedPod({ namespace: NS })).items)).toEqual(["after-relist", "keep"]);
  });
});
