import { isDeepStrictEqual } from "node:util";
import { describe, expect, it } from "vitest";
import {
  FOLLOW_UP_MS,
  maxSurge,
  maxUnavailable,
  podTemplateHash,
  reconcileDeployment,
  resolveFenceposts,
} from "../../durable-objects/controllers/deployment.ts";
import { rfc3339 } from "../../durable-objects/controllers/podutil.ts";
import { reconcileReplicaSet } from "../../durable-objects/controllers/replicaset.ts";
import type { Action, Obj, ReconcileResult } from "../../durable-objects/controllers/types.ts";

const T0 = new Date("2024-05-01T12:00:00Z");
const at = (now: Date, deltaS: number): string => rfc3339(new Date(now.getTime() + deltaS * 1000));

const HASH_CHARS = /^[bcdfghjklmnpqrstvwxz2456789]+$/;
const SCALED = /^Scaled (up|down) replica set web-[bcdfghjklmnpqrstvwxz2456789]+ from \d+ to \d+$/;

function template(image: string): Obj {
  return {
    metadata: { labels: { app: "web" } },
    spec: { containers: [{ name: "web", image, imagePullPolicy: "IfNotPresent" }], restartPolicy: "Always" },
  };
}

interface DeploymentOpts {
  replicas?: number;
  image?: string;
  strategy?: Obj;
  paused?: boolean;
  minReadySeconds?: number;
  revisionHistoryLimit?: number;
  progressDeadlineSeconds?: number;
  annotations?: Record<string, string>;
  generation?: number;
  status?: Obj;
}

function newDeployment(o: DeploymentOpts = {}): Obj {
  const spec: Obj = {
    replicas: o.replicas ?? 3,
    selector: { matchLabels: { app: "web" } },
    template: template(o.image ?? "nginx:1"),
    strategy: o.strategy ?? { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: "25%" } },
    revisionHistoryLimit: o.revisionHistoryLimit ?? 10,
    progressDeadlineSeconds: o.progressDeadlineSeconds ?? 600,
  };
  if (o.paused) spec.paused = true;
  if (o.minReadySeconds) spec.minReadySeconds = o.minReadySeconds;
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: "web",
      namespace: "default",
      uid: "d-uid",
      resourceVersion: "1",
      generation: o.generation ?? 1,
      creationTimestamp: rfc3339(T0),
      ...(o.annotations ? { annotations: o.annotations } : {}),
    },
    spec,
    status: o.status ?? {},
  };
}

interface RSOpts {
  image: string;
  replicas: number;
  available?: number;
  statusReplicas?: number;
  revision?: number;
  age?: number;
  annotations?: Record<string, string>;
  observedGeneration?: number;
  owner?: Obj | null;
}

/** A ReplicaSet as the Deployment controller would have created it for `image`. */
function newRS(d: Obj, o: RSOpts): Obj {
  const hash = podTemplateHash(template(o.image));
  const tpl = template(o.image);
  tpl.metadata.labels["pod-template-hash"] = hash;
  const owner = o.owner === undefined ? d : o.owner;
  const annotations: Record<string, string> = {
    "deployment.kubernetes.io/desired-replicas": String(d.spec.replicas),
    "deployment.kubernetes.io/max-replicas": String(d.spec.replicas + maxSurge(d)),
    ...(o.revision !== undefined ? { "deployment.kubernetes.io/revision": String(o.revision) } : {}),
    ...(o.annotations ?? {}),
  };
  const available = o.available ?? o.replicas;
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name: `web-${hash}`,
      namespace: "default",
      uid: `rs-${o.image}`,
      resourceVersion: "5",
      generation: 1,
      creationTimestamp: at(T0, -(o.age ?? 1000)),
      labels: { ...tpl.metadata.labels },
      annotations,
      ...(owner
        ? {
            ownerReferences: [
              {
                apiVersion: "apps/v1",
                kind: "Deployment",
                name: owner.metadata.name,
                uid: owner.metadata.uid,
                controller: true,
                blockOwnerDeletion: true,
              },
            ],
          }
        : {}),
    },
    spec: { replicas: o.replicas, selector: { matchLabels: { app: "web", "pod-template-hash": hash } }, template: tpl },
    status: {
      replicas: o.statusReplicas ?? o.replicas,
      readyReplicas: available,
      availableReplicas: available,
      observedGeneration: o.observedGeneration ?? 1,
    },
  };
}

function newPod(name: string, rs: Obj, ready = true): Obj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "default",
      uid: `uid-${name}`,
      resourceVersion: "9",
      creationTimestamp: at(T0, -500),
      labels: { ...rs.spec.template.metadata.labels },
      ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: rs.metadata.name, uid: rs.metadata.uid, controller: true }],
    },
    spec: { ...rs.spec.template.spec, nodeName: "node-1" },
    status: { phase: "Running", conditions: [{ type: "Ready", status: ready ? "True" : "False", lastTransitionTime: at(T0, -400) }] },
  };
}

/** kubectl rollout status's verdict for a Deployment (DeploymentStatusViewer). */
function rolloutStatus(d: Obj): "done" | "waiting" | "error" {
  const s = d.status ?? {};
  if ((d.metadata.generation ?? 0) > (s.observedGeneration ?? 0)) return "waiting";
  const progressing = (s.conditions ?? []).find((c: Obj) => c.type === "Progressing");
  if (progressing?.reason === "ProgressDeadlineExceeded") return "error";
  if ((s.updatedReplicas ?? 0) < d.spec.replicas) return "waiting";
  if ((s.replicas ?? 0) > (s.updatedReplicas ?? 0)) return "waiting";
  if ((s.availableReplicas ?? 0) < (s.updatedReplicas ?? 0)) return "waiting";
  return "done";
}

const cond = (o: Obj, type: string): Obj | undefined => (o.status?.conditions ?? []).find((c: Obj) => c.type === type);
const of = <T extends Action["type"]>(actions: Action[], type: T) =>
  actions.filter((a) => a.type === type) as Extract<Action, { type: T }>[];
const rsUpdates = (actions: Action[]) => of(actions, "update").filter((u) => u.gvr.resource === "replicasets");
const dStatus = (actions: Action[]) => of(actions, "update").find((u) => u.gvr.resource === "deployments" && u.subresource === "status");
const dMain = (actions: Action[]) => of(actions, "update").find((u) => u.gvr.resource === "deployments" && !u.subresource);
const eventMessages = (actions: Action[]) => of(actions, "event").map((e) => e.message);

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object" && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as Obj)) deepFreeze(v);
  }
  return o;
}

/** Reconciles with frozen inputs: the reconcilers must not mutate their snapshot. */
function reconcile(d: Obj, rss: Obj[], pods: Obj[], now: Date): ReconcileResult {
  return reconcileDeployment(deepFreeze(structuredClone(d)), deepFreeze(structuredClone(rss)), deepFreeze(structuredClone(pods)), now);
}

// ---------------------------------------------------------------------------------------
// A tiny cluster: applies actions like the registry would (generateName, uid,
// resourceVersion compare-and-swap, status subresource, generation), runs both
// controllers and plays the kubelet.

type Store = { deployments: Obj[]; replicasets: Obj[]; pods: Obj[] };

class Cluster {
  now: Date;
  store: Store;
  events: { reason: string; message: string; involved: string }[] = [];
  conflicts = 0;
  /** Called after every controller pass, to assert invariants. */
  check: (() => void) | undefined;
  /** Whether the kubelet may make this pod ready. */
  canBecomeReady: (pod: Obj) => boolean = () => true;
  lastDeploymentResult: ReconcileResult = { actions: [] };
  private seq = 0;
  private rv = 100;

  constructor(d: Obj) {
    this.now = new Date(T0);
    this.store = { deployments: [structuredClone(d)], replicasets: [], pods: [] };
  }

  get d(): Obj {
    return this.store.deployments[0];
  }

  get replicaSets(): Obj[] {
    return this.store.replicasets;
  }

  rsFor(image: string): Obj | undefined {
    return this.replicaSets.find((rs) => rs.spec.template.spec.containers[0].image === image);
  }

  podsOf(rs: Obj | undefined, activeOnly = true): Obj[] {
    if (!rs) return [];
    return this.store.pods.filter(
      (p) => p.metadata.ownerReferences?.[0]?.uid === rs.metadata.uid && (!activeOnly || !p.metadata.deletionTimestamp),
    );
  }

  activePods(): Obj[] {
    return this.store.pods.filter((p) => !p.metadata.deletionTimestamp);
  }

  apply(actions: Action[]): void {
    for (const a of actions) {
      if (a.type === "event") {
        this.events.push({ reason: a.reason, message: a.message, involved: `${a.involved.kind}/${a.involved.metadata.name}` });
        continue;
      }
      const list = this.store[a.gvr.resource as keyof Store];
      if (a.type === "create") {
        const o = structuredClone(a.object);
        const m = o.metadata;
        m.name ??= `${m.generateName}${(++this.seq).toString(36).padStart(5, "0")}`;
        if (list.some((x) => x.metadata.name === m.name)) throw new Error(`AlreadyExists: ${m.name}`);
        m.uid = `uid-${++this.seq}`;
        m.creationTimestamp = rfc3339(this.now);
        m.resourceVersion = String(++this.rv);
        m.generation = 1;
        o.status = a.gvr.resource === "pods" ? { phase: "Pending" } : {};
        list.push(o);
      } else if (a.type === "update") {
        const i = list.findIndex((x) => x.metadata.name === a.object.metadata.name);
        if (i < 0) throw new Error(`NotFound: ${a.object.metadata.name}`);
        const cur = list[i];
        if (cur.metadata.resourceVersion !== a.object.metadata.resourceVersion) {
          this.conflicts++;
          continue;
        }
        let next: Obj;
        if (a.subresource === "status") {
          next = structuredClone(cur);
          next.status = structuredClone(a.object.status);
        } else {
          next = structuredClone(a.object);
          next.status = cur.status;
          next.metadata.generation = cur.metadata.generation + (isDeepStrictEqual(next.spec, cur.spec) ? 0 : 1);
        }
        next.metadata.resourceVersion = String(++this.rv);
        list[i] = next;
      } else {
        const i = list.findIndex((x) => x.metadata.name === a.name);
        if (i < 0 || (a.preconditionUID && list[i].metadata.uid !== a.preconditionUID)) continue;
        if (a.gvr.resource === "pods") list[i].metadata.deletionTimestamp ??= rfc3339(this.now);
        else list.splice(i, 1);
      }
    }
  }

  /** Edits the Deployment's spec like a client would (generation moves). */
  updateSpec(f: (spec: Obj) => void): void {
    const d = structuredClone(this.d);
    f(d.spec);
    d.metadata.generation++;
    d.metadata.resourceVersion = String(++this.rv);
    this.store.deployments[0] = d;
  }

  syncDeployment(): ReconcileResult {
    const r = reconcile(this.d, this.replicaSets, this.store.pods, this.now);
    this.apply(r.actions);
    this.lastDeploymentResult = r;
    this.check?.();
    return r;
  }

  syncReplicaSets(): number {
    let n = 0;
    for (const { metadata } of [...this.replicaSets]) {
      const rs = this.replicaSets.find((x) => x.metadata.uid === metadata.uid);
      if (!rs) continue;
      const r = reconcileReplicaSet(deepFreeze(structuredClone(rs)), deepFreeze(structuredClone(this.store.pods)), this.now);
      this.apply(r.actions);
      n += r.actions.length + (r.requeueAfterMs !== undefined ? 1 : 0);
    }
    this.check?.();
    return n;
  }

  /** Terminating pods go away; pending pods start and become ready (at most `maxReady`). */
  kubelet(maxReady = Number.POSITIVE_INFINITY): void {
    this.store.pods = this.store.pods.filter((p) => !p.metadata.deletionTimestamp);
    let readied = 0;
    for (const p of this.store.pods) {
      if (p.status.phase !== "Pending" || readied >= maxReady || !this.canBecomeReady(p)) continue;
      p.spec.nodeName = "node-1";
      p.status = { phase: "Running", conditions: [{ type: "Ready", status: "True", lastTransitionTime: rfc3339(this.now) }] };
      p.metadata.resourceVersion = String(++this.rv);
      readied++;
    }
  }

  tick(opts: { readyPerTick?: number; stepMs?: number } = {}): boolean {
    const dr = this.syncDeployment();
    const d = dr.actions.length + (dr.requeueAfterMs !== undefined ? 1 : 0);
    let rs = this.syncReplicaSets();
    rs += this.syncReplicaSets();
    this.now = new Date(this.now.getTime() + (opts.stepMs ?? 1000));
    this.kubelet(opts.readyPerTick);
    rs += this.syncReplicaSets();
    return d === 0 && rs === 0;
  }

  /** Ticks until neither controller has anything left to do or to wait for. */
  settle(opts: { readyPerTick?: number; stepMs?: number } = {}, maxTicks = 200): number {
    for (let i = 1; i <= maxTicks; i++) if (this.tick(opts)) return i;
    throw new Error("the cluster did not settle");
  }
}

// ---------------------------------------------------------------------------------------

describe("podTemplateHash", () => {
  it("is deterministic, safe-encoded, insensitive to key order and to a pod-template-hash label", () => {
    const a = podTemplateHash(template("nginx:1"));
    expect(a).toMatch(HASH_CHARS);
    expect(a.length).toBeGreaterThanOrEqual(1);
    expect(a.length).toBeLessThanOrEqual(10);
    expect(podTemplateHash(template("nginx:1"))).toBe(a);
    const reordered = {
      spec: { restartPolicy: "Always", containers: [{ imagePullPolicy: "IfNotPresent", image: "nginx:1", name: "web" }] },
      metadata: { labels: { app: "web" } },
    };
    expect(podTemplateHash(reordered)).toBe(a);
    const labeled = template("nginx:1");
    labeled.metadata.labels["pod-template-hash"] = "whatever";
    labeled.metadata.creationTimestamp = null;
    expect(podTemplateHash(labeled)).toBe(a);
  });

  it("changes with the template and with collisionCount", () => {
    const a = podTemplateHash(template("nginx:1"));
    expect(podTemplateHash(template("nginx:2"))).not.toBe(a);
    expect(podTemplateHash(template("nginx:1"), 0)).not.toBe(a);
    expect(podTemplateHash(template("nginx:1"), 1)).not.toBe(podTemplateHash(template("nginx:1"), 0));
  });
});

describe("rolling update fenceposts", () => {
  it.each([
    [10, "25%", "25%", 3, 2],
    [3, "25%", "25%", 1, 0],
    [1, "25%", "25%", 1, 0],
    [4, 1, 0, 1, 0],
    [3, 0, 1, 0, 1],
    [5, "0%", "10%", 0, 1], // both zero after rounding: maxUnavailable 1
    [5, "50%", "0%", 3, 0],
    [2, 0, 5, 0, 2], // maxUnavailable capped at replicas
  ])(
    "replicas %i, maxSurge %s, maxUnavailable %s → surge %i, unavailable %i",
    (replicas, surge, unavailable, wantSurge, wantUnavailable) => {
      const d = newDeployment({
        replicas,
        strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: surge, maxUnavailable: unavailable } },
      });
      expect(maxSurge(d)).toBe(wantSurge);
      expect(maxUnavailable(d)).toBe(wantUnavailable);
    },
  );

  it("is zero for Recreate", () => {
    const d = newDeployment({ strategy: { type: "Recreate" } });
    expect([maxSurge(d), maxUnavailable(d)]).toEqual([0, 0]);
    expect(resolveFenceposts(newDeployment({ replicas: 4 }))).toEqual({ maxSurge: 1, maxUnavailable: 1 });
  });
});

describe("reconcileDeployment: first reconcile", () => {
  it("creates the new ReplicaSet with the hash in its name, selector and labels, revision 1 and the replicas", () => {
    const d = newDeployment({
      replicas: 3,
      annotations: { "kubernetes.io/change-cause": "first", "kubectl.kubernetes.io/last-applied-configuration": "{}" },
    });
    const res = reconcile(d, [], [], T0);
    const hash = podTemplateHash(d.spec.template);
    const created = of(res.actions, "create");
    expect(created).toHaveLength(1);
    expect(created[0].gvr).toEqual({ group: "apps", version: "v1", resource: "replicasets" });
    expect(created[0].object).toEqual({
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: {
        name: `web-${hash}`,
        namespace: "default",
        labels: { app: "web", "pod-template-hash": hash },
        annotations: {
          "kubernetes.io/change-cause": "first",
          "deployment.kubernetes.io/revision": "1",
          "deployment.kubernetes.io/desired-replicas": "3",
          "deployment.kubernetes.io/max-replicas": "4",
        },
        ownerReferences: [
          { apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: "d-uid", controller: true, blockOwnerDeletion: true },
        ],
      },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: "web", "pod-template-hash": hash } },
        template: { ...template("nginx:1"), metadata: { labels: { app: "web", "pod-template-hash": hash } } },
      },
    });
    expect(eventMessages(res.actions)).toEqual([`Scaled up replica set web-${hash} from 0 to 3`]);
    const status = dStatus(res.actions)?.object.status;
    expect(status).toEqual({
      observedGeneration: 1,
      unavailableReplicas: 3,
      conditions: [
        {
          type: "Progressing",
          status: "True",
          lastUpdateTime: rfc3339(T0),
          lastTransitionTime: rfc3339(T0),
          reason: "NewReplicaSetCreated",
          message: `Created new replica set "web-${hash}"`,
        },
        {
          type: "Available",
          status: "False",
          lastUpdateTime: rfc3339(T0),
          lastTransitionTime: rfc3339(T0),
          reason: "MinimumReplicasUnavailable",
          message: "Deployment does not have minimum availability.",
        },
      ],
    });
    // The revision annotation on the Deployment follows in the next reconcile.
    expect(dMain(res.actions)).toBeUndefined();
    expect(res.requeueAfterMs).toBe(FOLLOW_UP_MS);
  });

  it("writes the revision annotation on the Deployment once status is written", () => {
    const c = new Cluster(newDeployment());
    c.syncDeployment();
    const second = c.syncDeployment();
    expect(second.actions).toHaveLength(1);
    expect(dMain(second.actions)?.object.metadata.annotations).toEqual({ "deployment.kubernetes.io/revision": "1" });
    expect(c.d.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("1");
    expect(c.d.metadata.generation).toBe(1);
  });

  it("brings a new Deployment up to available, then has nothing to do", () => {
    const c = new Cluster(newDeployment({ replicas: 3 }));
    c.settle();
    const rs = c.replicaSets;
    expect(rs).toHaveLength(1);
    expect(c.podsOf(rs[0])).toHaveLength(3);
    expect(rolloutStatus(c.d)).toBe("done");
    expect(c.d.status).toMatchObject({ observedGeneration: 1, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3 });
    expect(c.d.status.unavailableReplicas).toBeUndefined();
    expect(cond(c.d, "Available")).toMatchObject({
      status: "True",
      reason: "MinimumReplicasAvailable",
      message: "Deployment has minimum availability.",
    });
    expect(cond(c.d, "Progressing")).toMatchObject({
      status: "True",
      reason: "NewReplicaSetAvailable",
      message: `ReplicaSet "${rs[0].metadata.name}" has successfully progressed.`,
    });
    const again = reconcile(c.d, c.replicaSets, c.store.pods, new Date(c.now.getTime() + 3600_000));
    expect(again).toEqual({ actions: [] });
    expect(c.conflicts).toBe(0);
  });

  it("does nothing for a Deployment being deleted", () => {
    const d = newDeployment();
    d.metadata.deletionTimestamp = rfc3339(T0);
    expect(reconcile(d, [], [], T0)).toEqual({ actions: [] });
  });
});

describe("reconcileDeployment: rolling update", () => {
  type Row = [string, number, number | string, number | string, number, number, number?];
  const rows: Row[] = [
    ["ints surge 1 / unavailable 0", 4, 1, 0, 1, 0],
    ["25% / 25% of 10", 10, "25%", "25%", 3, 2],
    ["25% / 25% of 10, one pod ready per tick", 10, "25%", "25%", 3, 2, 1],
    ["surge 0 / unavailable 1", 3, 0, 1, 0, 1],
    ["50% / 0% of 5", 5, "50%", "0%", 3, 0],
    ["0% / 50% of 4", 4, "0%", "50%", 0, 2],
    ["25% / 25% of 1", 1, "25%", "25%", 1, 0],
    ["ints 2 / 1 of 6, one pod ready per tick", 6, 2, 1, 2, 1, 1],
  ];

  it.each(rows)(
    "%s respects maxSurge and maxUnavailable at every step",
    (_name, replicas, surge, unavailable, wantSurge, wantUnavailable, perTick) => {
      const d = newDeployment({
        replicas,
        strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: surge, maxUnavailable: unavailable } },
      });
      const c = new Cluster(d);
      c.settle();
      const oldRS = c.rsFor("nginx:1")!;
      expect(oldRS.spec.replicas).toBe(replicas);

      c.updateSpec((s) => {
        s.template.spec.containers[0].image = "nginx:2";
      });
      expect(rolloutStatus(c.d)).toBe("waiting");
      let maxTotal = 0;
      let minAvailable = Number.POSITIVE_INFINITY;
      c.check = () => {
        const totalSpec = c.replicaSets.reduce((n, rs) => n + rs.spec.replicas, 0);
        const active = c.activePods();
        const available = active.filter((p) => p.status.conditions?.some((x: Obj) => x.type === "Ready" && x.status === "True")).length;
        maxTotal = Math.max(maxTotal, totalSpec, active.length);
        minAvailable = Math.min(minAvailable, available);
        expect(totalSpec).toBeLessThanOrEqual(replicas + wantSurge);
        expect(active.length).toBeLessThanOrEqual(replicas + wantSurge);
        expect(available).toBeGreaterThanOrEqual(replicas - wantUnavailable);
        if (rolloutStatus(c.d) === "done") {
          // kubectl rollout status only says done once every pod is a ready new one.
          const newRS = c.rsFor("nginx:2")!;
          expect(active.every((p) => p.metadata.ownerReferences[0].uid === newRS.metadata.uid)).toBe(true);
          expect(available).toBe(replicas);
        }
      };
      const ticks = c.settle({ readyPerTick: perTick });
      expect(ticks).toBeGreaterThan(1);
      // The rollout used its surge budget (and not more).
      expect(maxTotal).toBe(replicas + wantSurge);
      if (wantSurge === 0) expect(minAvailable).toBe(replicas - wantUnavailable);

      const newRS = c.rsFor("nginx:2")!;
      const old = c.rsFor("nginx:1")!;
      expect(old.spec.replicas).toBe(0);
      expect(newRS.spec.replicas).toBe(replicas);
      expect(c.podsOf(old)).toHaveLength(0);
      expect(c.podsOf(newRS)).toHaveLength(replicas);
      expect(newRS.metadata.name).toBe(`web-${podTemplateHash(c.d.spec.template)}`);
      expect(newRS.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("2");
      expect(old.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("1");
      expect(c.d.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("2");
      expect(rolloutStatus(c.d)).toBe("done");
      expect(c.d.status).toMatchObject({
        observedGeneration: 2,
        replicas,
        updatedReplicas: replicas,
        readyReplicas: replicas,
        availableReplicas: replicas,
      });
      expect(cond(c.d, "Available")).toMatchObject({ status: "True", reason: "MinimumReplicasAvailable" });
      expect(cond(c.d, "Progressing")).toMatchObject({
        status: "True",
        reason: "NewReplicaSetAvailable",
        message: `ReplicaSet "${newRS.metadata.name}" has successfully progressed.`,
      });
      for (const e of c.events.filter((x) => x.involved === "Deployment/web")) {
        expect(e.reason).toBe("ScalingReplicaSet");
        expect(e.message).toMatch(SCALED);
      }
      const oldDown = new RegExp(`^Scaled down replica set ${old.metadata.name} from \\d+ to 0$`);
      expect(c.events.filter((e) => oldDown.test(e.message))).toHaveLength(1);
      expect(c.conflicts).toBe(0);
    },
  );

  it("first step: the new ReplicaSet gets the surge, old ones go down only within maxUnavailable", () => {
    const d = newDeployment({ replicas: 10, image: "nginx:2", generation: 2 });
    const old = newRS(d, { image: "nginx:1", replicas: 10, revision: 1 });
    const res = reconcile(d, [old], [], T0);
    const created = of(res.actions, "create")[0].object;
    expect(created.spec.replicas).toBe(3);
    expect(created.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("2");
    const upd = rsUpdates(res.actions);
    expect(upd).toHaveLength(1);
    expect(upd[0].object.metadata.name).toBe(old.metadata.name);
    expect(upd[0].object.spec.replicas).toBe(8);
    expect(upd[0].object.metadata.resourceVersion).toBe("5");
    expect(eventMessages(res.actions)).toEqual([
      `Scaled up replica set ${created.metadata.name} from 0 to 3`,
      `Scaled down replica set ${old.metadata.name} from 10 to 8`,
    ]);
  });

  it("scales unhealthy old replicas down first, even without an availability budget", () => {
    const d = newDeployment({
      replicas: 3,
      image: "nginx:2",
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
    });
    const old = newRS(d, { image: "nginx:1", replicas: 3, available: 1, revision: 1, age: 2000 });
    const cur = newRS(d, { image: "nginx:2", replicas: 1, available: 1, revision: 2 });
    const res = reconcile(d, [old, cur], [], T0);
    const upd = rsUpdates(res.actions);
    expect(upd.map((u) => [u.object.metadata.name, u.object.spec.replicas])).toEqual([[old.metadata.name, 2]]);
  });

  it("does not scale old ReplicaSets down while the new one is not available", () => {
    const d = newDeployment({
      replicas: 4,
      image: "nginx:2",
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
    });
    const old = newRS(d, { image: "nginx:1", replicas: 4, revision: 1, age: 2000 });
    const cur = newRS(d, { image: "nginx:2", replicas: 1, available: 0, revision: 2 });
    const res = reconcile(d, [old, cur], [], T0);
    expect(rsUpdates(res.actions)).toEqual([]);
  });
});

describe("reconcileDeployment: Recreate", () => {
  it("scales old ReplicaSets to 0, waits until no old pod is left, then creates the new one at full size", () => {
    const c = new Cluster(newDeployment({ replicas: 3, strategy: { type: "Recreate" } }));
    c.settle();
    c.updateSpec((s) => {
      s.template.spec.containers[0].image = "nginx:2";
    });
    c.check = () => {
      const newPods = c.podsOf(c.rsFor("nginx:2"), false);
      const oldPods = c.podsOf(c.rsFor("nginx:1"), false);
      // Never old and new pods at the same time, not even terminating old ones.
      expect(newPods.length === 0 || oldPods.length === 0).toBe(true);
    };
    const first = c.syncDeployment();
    expect(of(first.actions, "create")).toEqual([]);
    expect(rsUpdates(first.actions).map((u) => u.object.spec.replicas)).toEqual([0]);
    c.syncReplicaSets();
    expect(c.podsOf(c.rsFor("nginx:1"))).toHaveLength(0); // all terminating
    expect(c.podsOf(c.rsFor("nginx:1"), false)).toHaveLength(3);
    c.syncReplicaSets();
    // Old pods still terminating: no new ReplicaSet yet.
    const waiting = c.syncDeployment();
    expect(of(waiting.actions, "create")).toEqual([]);
    expect(c.rsFor("nginx:2")).toBeUndefined();
    c.kubelet();
    c.syncReplicaSets();
    const go = c.syncDeployment();
    const created = of(go.actions, "create");
    expect(created).toHaveLength(1);
    expect(created[0].object.spec.replicas).toBe(3);
    expect(eventMessages(go.actions)).toEqual([`Scaled up replica set ${created[0].object.metadata.name} from 0 to 3`]);
    c.settle();
    expect(rolloutStatus(c.d)).toBe("done");
    expect(c.rsFor("nginx:1")!.spec.replicas).toBe(0);
    expect(c.podsOf(c.rsFor("nginx:2"))).toHaveLength(3);
    expect(cond(c.d, "Available")).toMatchObject({ status: "True" });
    expect(cond(c.d, "Progressing")).toMatchObject({ reason: "NewReplicaSetAvailable" });
    expect(c.conflicts).toBe(0);
  });
});

describe("reconcileDeployment: paused", () => {
  it("does not roll out a new template, keeps replica counts in sync, and resumes", () => {
    const c = new Cluster(newDeployment({ replicas: 3 }));
    c.settle();
    c.updateSpec((s) => {
      s.paused = true;
      s.template.spec.containers[0].image = "nginx:2";
    });
    c.settle();
    expect(c.replicaSets).toHaveLength(1);
    expect(cond(c.d, "Progressing")).toMatchObject({ status: "Unknown", reason: "DeploymentPaused", message: "Deployment is paused" });
    expect(c.d.status.observedGeneration).toBe(2);

    c.updateSpec((s) => {
      s.replicas = 5;
    });
    const res = c.syncDeployment();
    const old = c.rsFor("nginx:1")!;
    expect(rsUpdates(res.actions)).toHaveLength(1);
    expect(old.spec.replicas).toBe(5);
    expect(old.metadata.annotations["deployment.kubernetes.io/desired-replicas"]).toBe("5");
    expect(old.metadata.annotations["deployment.kubernetes.io/max-replicas"]).toBe("7");
    expect(eventMessages(res.actions)).toEqual([`Scaled up replica set ${old.metadata.name} from 3 to 5`]);
    c.settle();
    expect(c.replicaSets).toHaveLength(1);
    expect(c.podsOf(old)).toHaveLength(5);

    c.updateSpec((s) => {
      s.paused = false;
    });
    const resumed = c.syncDeployment();
    expect(of(resumed.actions, "create")).toHaveLength(1);
    c.settle();
    expect(rolloutStatus(c.d)).toBe("done");
    expect(c.podsOf(c.rsFor("nginx:2"))).toHaveLength(5);
    expect(cond(c.d, "Progressing")).toMatchObject({ status: "True", reason: "NewReplicaSetAvailable" });
  });

  it("marks a Deployment resumed and starts counting its progress deadline again", () => {
    const d = newDeployment({ replicas: 3, generation: 3 });
    const rs = newRS(d, { image: "nginx:1", replicas: 3, available: 1, revision: 1 });
    d.metadata.annotations = { "deployment.kubernetes.io/revision": "1" };
    d.status = {
      observedGeneration: 3,
      replicas: 3,
      updatedReplicas: 3,
      readyReplicas: 1,
      availableReplicas: 1,
      unavailableReplicas: 2,
      conditions: [
        {
          type: "Available",
          status: "False",
          lastUpdateTime: at(T0, -50),
          lastTransitionTime: at(T0, -50),
          reason: "MinimumReplicasUnavailable",
          message: "Deployment does not have minimum availability.",
        },
        {
          type: "Progressing",
          status: "Unknown",
          lastUpdateTime: at(T0, -50),
          lastTransitionTime: at(T0, -50),
          reason: "DeploymentPaused",
          message: "Deployment is paused",
        },
      ],
    };
    const res = reconcile(d, [rs], [], T0);
    expect(cond(dStatus(res.actions)!.object, "Progressing")).toEqual({
      type: "Progressing",
      status: "Unknown",
      lastUpdateTime: rfc3339(T0),
      lastTransitionTime: at(T0, -50),
      reason: "DeploymentResumed",
      message: "Deployment is resumed",
    });
    expect(res.requeueAfterMs).toBe(600_000);
  });
});

describe("reconcileDeployment: rollback", () => {
  it("reuses the old ReplicaSet for an old template and gives it a new revision", () => {
    const c = new Cluster(newDeployment({ replicas: 2, annotations: { "kubernetes.io/change-cause": "v1" } }));
    c.settle();
    const v1 = c.rsFor("nginx:1")!;
    c.updateSpec((s) => {
      s.template.spec.containers[0].image = "nginx:2";
    });
    c.d.metadata.annotations["kubernetes.io/change-cause"] = "v2";
    c.settle();
    expect(c.rsFor("nginx:2")!.metadata.annotations).toMatchObject({
      "deployment.kubernetes.io/revision": "2",
      "kubernetes.io/change-cause": "v2",
    });
    // kubectl rollout undo: the old template (without pod-template-hash) back into the Deployment.
    c.updateSpec((s) => {
      s.template = template("nginx:1");
    });
    c.d.metadata.annotations["kubernetes.io/change-cause"] = "v1";
    c.settle();
    expect(c.replicaSets).toHaveLength(2);
    const back = c.rsFor("nginx:1")!;
    expect(back.metadata.uid).toBe(v1.metadata.uid);
    expect(back.metadata.name).toBe(v1.metadata.name);
    expect(back.spec.replicas).toBe(2);
    expect(back.metadata.annotations).toMatchObject({
      "deployment.kubernetes.io/revision": "3",
      "deployment.kubernetes.io/revision-history": "1",
      "kubernetes.io/change-cause": "v1",
    });
    expect(c.rsFor("nginx:2")!.spec.replicas).toBe(0);
    expect(c.d.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("3");
    expect(rolloutStatus(c.d)).toBe("done");
    // And forward again: v2 gets revision 4 with history "2".
    c.updateSpec((s) => {
      s.template = template("nginx:2");
    });
    c.settle();
    expect(c.rsFor("nginx:2")!.metadata.annotations).toMatchObject({
      "deployment.kubernetes.io/revision": "4",
      "deployment.kubernetes.io/revision-history": "2",
    });
    expect(c.conflicts).toBe(0);
  });

  it("appends to an existing revision history", () => {
    const d = newDeployment({ replicas: 1, image: "nginx:1", generation: 5 });
    const old = newRS(d, { image: "nginx:1", replicas: 0, revision: 3, annotations: { "deployment.kubernetes.io/revision-history": "1" } });
    const cur = newRS(d, { image: "nginx:2", replicas: 1, revision: 4 });
    const res = reconcile(d, [old, cur], [], T0);
    const upd = rsUpdates(res.actions).find((u) => u.object.metadata.name === old.metadata.name)!;
    expect(upd.object.metadata.annotations).toMatchObject({
      "deployment.kubernetes.io/revision": "5",
      "deployment.kubernetes.io/revision-history": "1,3",
    });
  });
});

describe("reconcileDeployment: revisionHistoryLimit", () => {
  function history(mutate: (rss: Obj[], pods: Obj[]) => void = () => {}): { deleted: string[]; rss: Obj[] } {
    const d = newDeployment({ replicas: 3, image: "nginx:6", revisionHistoryLimit: 2 });
    const rss = [1, 2, 3, 4, 5].map((i) => newRS(d, { image: `nginx:${i}`, replicas: 0, revision: i, age: 1000 - i }));
    rss.push(newRS(d, { image: "nginx:6", replicas: 3, revision: 6, age: 1 }));
    const pods: Obj[] = [];
    mutate(rss, pods);
    d.status = { observedGeneration: 1, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3 };
    d.metadata.annotations = { "deployment.kubernetes.io/revision": "6" };
    const res = reconcile(d, rss, pods, T0);
    const deleted = of(res.actions, "delete");
    for (const del of deleted) {
      expect(del.gvr.resource).toBe("replicasets");
      expect(del.preconditionUID).toBe(rss.find((r) => r.metadata.name === del.name)?.metadata.uid);
    }
    return { deleted: deleted.map((x) => rss.find((r) => r.metadata.name === x.name)!.spec.template.spec.containers[0].image), rss };
  }

  it.each([
    ["deletes the oldest revisions beyond the limit", () => {}, ["nginx:1", "nginx:2", "nginx:3"]],
    [
      "keeps a ReplicaSet that still has active pods",
      (rss: Obj[], pods: Obj[]) => pods.push(newPod("left", rss[0])),
      ["nginx:2", "nginx:3"],
    ],
    ["keeps a ReplicaSet that still reports replicas", (rss: Obj[]) => (rss[1].status.replicas = 1), ["nginx:1", "nginx:3"]],
    ["keeps a ReplicaSet whose status is behind its generation", (rss: Obj[]) => (rss[2].metadata.generation = 2), ["nginx:1", "nginx:2"]],
    [
      "orders by revision, not by age",
      (rss: Obj[]) => {
        rss[4].metadata.annotations["deployment.kubernetes.io/revision"] = "0";
      },
      ["nginx:5", "nginx:1", "nginx:2"],
    ],
  ] as [string, (rss: Obj[], pods: Obj[]) => void, string[]][])("%s", (_name, mutate, want) => {
    expect(history(mutate).deleted.sort()).toEqual([...want].sort());
  });

  it("keeps only the limit's worth of old ReplicaSets across rollouts", () => {
    const c = new Cluster(newDeployment({ replicas: 2, revisionHistoryLimit: 1 }));
    c.settle();
    for (const image of ["nginx:2", "nginx:3", "nginx:4"]) {
      c.updateSpec((s) => {
        s.template.spec.containers[0].image = image;
      });
      c.settle();
    }
    expect(c.replicaSets.map((rs) => rs.spec.template.spec.containers[0].image).sort()).toEqual(["nginx:3", "nginx:4"]);
  });
});

describe("reconcileDeployment: progress deadline", () => {
  it("reports ProgressDeadlineExceeded when a rollout makes no progress, and kubectl rollout status fails", () => {
    const c = new Cluster(newDeployment({ replicas: 3, progressDeadlineSeconds: 60 }));
    c.settle();
    c.canBecomeReady = (p) => p.spec.containers[0].image !== "broken";
    c.updateSpec((s) => {
      s.template.spec.containers[0].image = "broken";
    });
    const requeues: number[] = [];
    for (let i = 0; i < 20 && rolloutStatus(c.d) !== "error"; i++) {
      c.tick({ stepMs: 10_000 });
      if (c.lastDeploymentResult.requeueAfterMs !== undefined) requeues.push(c.lastDeploymentResult.requeueAfterMs);
    }
    expect(rolloutStatus(c.d)).toBe("error");
    const p = cond(c.d, "Progressing")!;
    const newRS = c.rsFor("broken")!;
    expect(p).toMatchObject({
      status: "False",
      reason: "ProgressDeadlineExceeded",
      message: `ReplicaSet "${newRS.metadata.name}" has timed out progressing.`,
    });
    expect(p.lastTransitionTime).toBe(p.lastUpdateTime);
    // Old pods kept serving.
    expect(cond(c.d, "Available")).toMatchObject({ status: "True" });
    expect(c.podsOf(c.rsFor("nginx:1"))).toHaveLength(3);
    // The reconciler asked to be woken up for the deadline.
    expect(requeues.length).toBeGreaterThan(0);
    expect(Math.max(...requeues)).toBeLessThanOrEqual(60_000);
    // Once timed out, it stays so (no more requeues for the deadline).
    expect(reconcile(c.d, c.replicaSets, c.store.pods, new Date(c.now.getTime() + 1000)).requeueAfterMs).toBeUndefined();
  });

  function stuck(sinceS: number): ReconcileResult {
    const d = newDeployment({ replicas: 3, image: "nginx:2", generation: 2 });
    const old = newRS(d, { image: "nginx:1", replicas: 3, revision: 1, age: 5000 });
    const cur = newRS(d, { image: "nginx:2", replicas: 1, available: 0, revision: 2 });
    d.metadata.annotations = { "deployment.kubernetes.io/revision": "2" };
    d.status = {
      observedGeneration: 2,
      replicas: 4,
      updatedReplicas: 1,
      readyReplicas: 3,
      availableReplicas: 3,
      unavailableReplicas: 1,
      conditions: [
        {
          type: "Available",
          status: "True",
          lastUpdateTime: at(T0, -900),
          lastTransitionTime: at(T0, -900),
          reason: "MinimumReplicasAvailable",
          message: "Deployment has minimum availability.",
        },
        {
          type: "Progressing",
          status: "True",
          lastUpdateTime: at(T0, -sinceS),
          lastTransitionTime: at(T0, -900),
          reason: "ReplicaSetUpdated",
          message: `ReplicaSet "${cur.metadata.name}" is progressing.`,
        },
      ],
    };
    return reconcile(d, [old, cur], [], T0);
  }

  it.each([
    [100, undefined, 500_000],
    [599, undefined, 1000],
    [600, "ProgressDeadlineExceeded", undefined],
    [900, "ProgressDeadlineExceeded", undefined],
  ])("with no progress for %is: condition %s, requeue %s ms", (sinceS, reason, requeue) => {
    const res = stuck(sinceS);
    const w = dStatus(res.actions);
    if (reason === undefined) expect(w).toBeUndefined();
    else
      expect(cond(w!.object, "Progressing")).toMatchObject({
        status: "False",
        reason,
        lastUpdateTime: rfc3339(T0),
        lastTransitionTime: rfc3339(T0),
      });
    expect(res.requeueAfterMs).toBe(requeue);
  });
});

describe("reconcileDeployment: scaling", () => {
  it("scales the only active ReplicaSet to the new size", () => {
    const d = newDeployment({ replicas: 5, image: "nginx:1", generation: 2 });
    const rs = newRS(newDeployment({ replicas: 3 }), { image: "nginx:1", replicas: 3, revision: 1 });
    const res = reconcile(d, [rs], [], T0);
    const upd = rsUpdates(res.actions);
    expect(upd).toHaveLength(1);
    expect(upd[0].object.spec.replicas).toBe(5);
    expect(upd[0].object.metadata.annotations).toMatchObject({
      "deployment.kubernetes.io/desired-replicas": "5",
      "deployment.kubernetes.io/max-replicas": "7",
    });
    expect(eventMessages(res.actions)).toEqual([`Scaled up replica set ${rs.metadata.name} from 3 to 5`]);
  });

  it.each([
    // kube's documented example: 10 replicas, surge 3, unavailable 2, mid-rollout, scaled to 15.
    [15, 11, 7],
    [5, 5, 3],
    [0, 0, 0],
  ])("scales ReplicaSets proportionally during a rollout (to %i: old %i, new %i)", (to, wantOld, wantNew) => {
    const strategy = { type: "RollingUpdate", rollingUpdate: { maxSurge: 3, maxUnavailable: 2 } };
    const before = newDeployment({ replicas: 10, strategy });
    const old = newRS(before, { image: "nginx:1", replicas: 8, revision: 1, age: 5000 });
    const cur = newRS(before, { image: "nginx:2", replicas: 5, available: 0, revision: 2 });
    const d = newDeployment({ replicas: to, image: "nginx:2", strategy, generation: 3 });
    d.status = { observedGeneration: 2, replicas: 13, updatedReplicas: 5, readyReplicas: 8, availableReplicas: 8, unavailableReplicas: 5 };
    const res = reconcile(d, [old, cur], [], T0);
    const size = (rs: Obj) => rsUpdates(res.actions).find((u) => u.object.metadata.name === rs.metadata.name)?.object.spec.replicas;
    expect([size(old), size(cur)]).toEqual([wantOld, wantNew]);
    for (const u of rsUpdates(res.actions)) {
      expect(u.object.metadata.annotations["deployment.kubernetes.io/desired-replicas"]).toBe(String(to));
    }
    expect(of(res.actions, "create")).toEqual([]);
  });

  it("keeps the rollout within bounds when scaled in the middle of it", () => {
    const c = new Cluster(
      newDeployment({ replicas: 4, strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } } }),
    );
    c.settle();
    c.updateSpec((s) => {
      s.template.spec.containers[0].image = "nginx:2";
    });
    c.tick({ readyPerTick: 0 });
    c.updateSpec((s) => {
      s.replicas = 8;
    });
    c.settle();
    expect(rolloutStatus(c.d)).toBe("done");
    expect(c.rsFor("nginx:2")!.spec.replicas).toBe(8);
    expect(c.rsFor("nginx:1")!.spec.replicas).toBe(0);
    expect(c.podsOf(c.rsFor("nginx:2"))).toHaveLength(8);
  });
});

describe("reconcileDeployment: ownership", () => {
  it("adopts a matching orphan ReplicaSet (and uses it as the new one) and releases a non-matching owned one", () => {
    const d = newDeployment({ replicas: 2 });
    const orphan = newRS(d, { image: "nginx:1", replicas: 2, owner: null });
    const stray = newRS(d, { image: "nginx:0", replicas: 0, revision: 1 });
    stray.metadata.labels = { app: "other" };
    const res = reconcile(d, [orphan, stray], [], T0);
    expect(of(res.actions, "create")).toEqual([]);
    const upd = rsUpdates(res.actions);
    const adopted = upd.find((u) => u.object.metadata.name === orphan.metadata.name)!;
    expect(adopted.object.metadata.ownerReferences).toEqual([
      { apiVersion: "apps/v1", kind: "Deployment", name: "web", uid: "d-uid", controller: true, blockOwnerDeletion: true },
    ]);
    expect(adopted.object.metadata.annotations["deployment.kubernetes.io/revision"]).toBe("1");
    const released = upd.find((u) => u.object.metadata.name === stray.metadata.name)!;
    expect(released.object.metadata.ownerReferences).toBeUndefined();
    expect(upd).toHaveLength(2);
  });

  it("ignores ReplicaSets controlled by something else", () => {
    const d = newDeployment({ replicas: 2 });
    const foreign = newRS(d, { image: "nginx:1", replicas: 2, owner: { metadata: { name: "other", uid: "other-uid" } } });
    foreign.metadata.name = "foreign";
    const res = reconcile(d, [foreign], [], T0);
    expect(rsUpdates(res.actions)).toEqual([]);
    expect(of(res.actions, "create")).toHaveLength(1);
  });

  it("bumps collisionCount when a foreign ReplicaSet holds the name, then uses the next hash", () => {
    const d = newDeployment({ replicas: 2 });
    const squatter = newRS(d, { image: "nginx:9", replicas: 0, owner: null });
    squatter.metadata.name = `web-${podTemplateHash(d.spec.template)}`;
    squatter.metadata.labels = { app: "squatter" };
    const res = reconcile(d, [squatter], [], T0);
    expect(of(res.actions, "create")).toEqual([]);
    expect(dStatus(res.actions)?.object.status.collisionCount).toBe(1);
    expect(res.requeueAfterMs).toBe(FOLLOW_UP_MS);
    const d2 = { ...d, status: { collisionCount: 1 } };
    const next = reconcile(d2, [squatter], [], T0);
    const created = of(next.actions, "create")[0].object;
    expect(created.metadata.name).toBe(`web-${podTemplateHash(d.spec.template, 1)}`);
    expect(created.spec.template.metadata.labels["pod-template-hash"]).toBe(podTemplateHash(d.spec.template, 1));
    expect(dStatus(next.actions)?.object.status.collisionCount).toBe(1);
  });

  it("finds the new ReplicaSet by template, ignoring pod-template-hash and defaulted-field order", () => {
    const d = newDeployment({ replicas: 2 });
    const rs = newRS(d, { image: "nginx:1", replicas: 2, revision: 1 });
    // Same template, different key order, renamed (e.g. created with another collisionCount).
    rs.metadata.name = "web-other";
    rs.spec.template = {
      spec: { restartPolicy: "Always", containers: [{ imagePullPolicy: "IfNotPresent", image: "nginx:1", name: "web" }] },
      metadata: rs.spec.template.metadata,
    };
    d.metadata.annotations = { "deployment.kubernetes.io/revision": "1" };
    d.status = { observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 };
    const res = reconcile(d, [rs], [], T0);
    expect(of(res.actions, "create")).toEqual([]);
    expect(rsUpdates(res.actions)).toEqual([]);
    expect(cond(dStatus(res.actions)!.object, "Progressing")).toMatchObject({
      reason: "NewReplicaSetAvailable",
      message: 'ReplicaSet "web-other" has successfully progressed.',
    });
  });
});

describe("reconcileDeployment: status for kubectl rollout status", () => {
  it("goes waiting → done through a rollout and tracks updated/old replicas", () => {
    const c = new Cluster(
      newDeployment({ replicas: 2, strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } }),
    );
    c.settle();
    c.updateSpec((s) => {
      s.template.spec.containers[0].image = "nginx:2";
    });
    expect(rolloutStatus(c.d)).toBe("waiting"); // observedGeneration behind
    c.syncDeployment();
    expect(c.d.status.observedGeneration).toBe(2);
    expect(cond(c.d, "Progressing")).toMatchObject({ status: "True", reason: "NewReplicaSetCreated" });
    c.syncReplicaSets();
    c.syncReplicaSets();
    c.syncDeployment();
    expect(c.d.status).toMatchObject({ replicas: 3, updatedReplicas: 1, availableReplicas: 2 });
    expect(cond(c.d, "Progressing")).toMatchObject({ status: "True", reason: "ReplicaSetUpdated" });
    expect(rolloutStatus(c.d)).toBe("waiting");
    c.settle();
    expect(rolloutStatus(c.d)).toBe("done");
    expect(c.d.status).toEqual({
      observedGeneration: 2,
      replicas: 2,
      updatedReplicas: 2,
      readyReplicas: 2,
      availableReplicas: 2,
      conditions: [
        expect.objectContaining({ type: "Available", status: "True", reason: "MinimumReplicasAvailable" }),
        expect.objectContaining({ type: "Progressing", status: "True", reason: "NewReplicaSetAvailable" }),
      ],
    });
    for (const x of c.d.status.conditions) {
      expect(x.lastUpdateTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(x.lastTransitionTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
  });

  it("requeues for minReadySeconds and counts availability from ReplicaSet status", () => {
    const c = new Cluster(newDeployment({ replicas: 2, minReadySeconds: 30 }));
    c.tick();
    c.tick();
    const rs = c.replicaSets[0];
    expect(rs.spec.minReadySeconds).toBe(30);
    expect(c.d.status.availableReplicas).toBeUndefined();
    const res = reconcile(c.d, c.replicaSets, c.store.pods, c.now);
    expect(res.requeueAfterMs).toBeGreaterThan(0);
    expect(res.requeueAfterMs).toBeLessThanOrEqual(30_000);
    c.settle({ stepMs: 10_000 });
    expect(c.d.status.availableReplicas).toBe(2);
    expect(rolloutStatus(c.d)).toBe("done");
  });

  it("removes the Progressing condition when there is no progress deadline", () => {
    const d = newDeployment({ replicas: 1 });
    delete d.spec.progressDeadlineSeconds;
    const res = reconcile(d, [], [], T0);
    expect(cond(dStatus(res.actions)!.object, "Progressing")).toBeUndefined();
    expect(res.requeueAfterMs).toBe(FOLLOW_UP_MS);
  });
});

describe("reconcileDeployment: stale annotations", () => {
  it("refreshes a stale desired-replicas annotation instead of treating every reconcile as a scaling event", () => {
    const d = newDeployment({ replicas: 3, image: "nginx:2", generation: 2 });
    const rs = newRS(d, { image: "nginx:1", replicas: 3, revision: 1 });
    rs.metadata.annotations["deployment.kubernetes.io/desired-replicas"] = "7";
    const c = new Cluster(d);
    c.store.replicasets.push(rs);
    const first = c.syncDeployment();
    expect(of(first.actions, "create")).toEqual([]);
    expect(c.rsFor("nginx:1")!.metadata.annotations["deployment.kubernetes.io/desired-replicas"]).toBe("3");
    expect(eventMessages(first.actions)).toEqual([]);
    // The next reconcile rolls out the new template.
    expect(of(c.syncDeployment().actions, "create")).toHaveLength(1);
  });
});
