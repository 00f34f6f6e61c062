// The controller manager's logic, kept out of the Durable Object class so it runs with
// any Store (tests use the in-memory one): follow the store into the cache, turn each
// change into the reconcile keys it affects, and run the level-based reconcilers for
// due keys, applying what they return.
//
// Keys: "rs:<ns>/<name>", "deploy:<ns>/<name>", "node:<name>", "ep:<ns>/<name>",
// "ns:<name>", "sa:<namespace>", "gcowner:<store key>", "gcdep:<store key>"; with a
// cloud provider also "lb:<ns>/<name>" (service controller), "cloudnode:<name>" (node
// initialisation and lifecycle), "cloudpoll" (every node's instance, on a timer),
// "cloudpoll:<name>" (one new node's instance) and "lbnodes" (the LB node set changed).

import { decodeKV } from "../../workers/api/codec.ts";
import type { Ctx } from "../../workers/api/registry.ts";
import { lookupResource, objectKey, RESOURCES, type ResourceInfo } from "../../workers/shared/resources.ts";
import { fromLabelSelectorObject, matchLabels } from "../../workers/shared/selectors.ts";
import type { Store } from "../store/types.ts";
import { applyActions } from "./apply.ts";
import { type CacheChange, ObjectCache } from "./cache.ts";
import { type InstanceView, reconcileCloudNode, reconcileCloudNodeLifecycle } from "./cloud/node.ts";
import { CLOUD_COMPONENTS, type CloudProvider } from "./cloud/provider.ts";
import { reconcileServiceLB, type ServiceOutcome, serviceStep, wantsLoadBalancer } from "./cloud/service.ts";
import { reconcileDeployment } from "./deployment.ts";
import { reconcileEndpoints } from "./endpoints.ts";
import { reconcileDependent, reconcileOwner } from "./gc.ts";
import { reconcileNamespace } from "./namespace.ts";
import { type NodeLifecycleConfig, reconcileNode } from "./nodelifecycle.ts";
import { WorkQueue } from "./queue.ts";
import { reconcileReplicaSet } from "./replicaset.ts";
import { COMPONENTS, type GVR, type Obj, type ReconcileResult } from "./types.ts";

const R = (group: string, resource: string) => lookupResource(group, "v1", resource)!;
export const PODS = R("", "pods");
export const NODES = R("", "nodes");
const NAMESPACES = R("", "namespaces");
const SERVICES = R("", "services");
const ENDPOINTS = R("", "endpoints");
const LEASES = R("coordination.k8s.io", "leases");
const DEPLOYMENTS = R("apps", "deployments");
const REPLICASETS = R("apps", "replicasets");

/** What the controller manager keeps in memory. */
export const CACHED: ResourceInfo[] = [PODS, NODES, NAMESPACES, SERVICES, ENDPOINTS, LEASES, DEPLOYMENTS, REPLICASETS];

export interface ManagerConfig {
  node: NodeLifecycleConfig;
  /** The cloud controller manager's provider; without it the cloud controllers do not run. */
  cloud?: CloudConfig;
}

export interface CloudConfig {
  provider: CloudProvider;
  /** How often every node's instance is asked about (a new node is asked at once). */
  pollIntervalMs: number;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function nodeReady(n: Obj | undefined): boolean {
  return Array.isArray(n?.status?.conditions) && n.status.conditions.some((c: Obj) => c?.type === "Ready" && c.status === "True");
}

/** Runs fn over items, at most limit at a time. */
async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Asks the provider about one node's instance; an error is recorded, never thrown. */
export async function pollInstance(provider: CloudProvider, node: Obj): Promise<InstanceView> {
  try {
    const exists = await provider.instances.instanceExists(node);
    if (!exists) return { exists };
    const [shutdown, metadata] = await Promise.all([
      provider.instances.instanceShutdown?.(node) ?? false,
      provider.instances.instanceMetadata(node),
    ]);
    return { exists, shutdown, metadata };
  } catch (e) {
    return { error: errorText(e) };
  }
}

function gvrOf(info: ResourceInfo): GVR {
  return { group: info.group, version: info.version, resource: info.resource };
}

function nsName(o: Obj): string {
  return `${o.metadata.namespace}/${o.metadata.name}`;
}

function controllerOf(o: Obj | undefined): Obj | undefined {
  return o?.metadata?.ownerReferences?.find((r: Obj) => r?.controller);
}

function selects(selector: unknown, labels: Record<string, string> | undefined): boolean {
  try {
    const sel = fromLabelSelectorObject(selector as never);
    return sel !== null && sel.length > 0 && matchLabels(sel, labels);
  } catch {
    return false;
  }
}

function serviceSelects(svc: Obj, labels: Record<string, string> | undefined): boolean {
  const sel = svc.spec?.selector;
  if (!sel || typeof sel !== "object" || Object.keys(sel).length === 0) return false;
  return Object.entries(sel).every(([k, v]) => labels?.[k] === v);
}

export class ControllerManager {
  readonly cache: ObjectCache;
  readonly queue = new WorkQueue({ baseDelayMs: 50, maxDelayMs: 60_000 });
  private readonly store: Store;
  private readonly ctx: Ctx;
  private readonly cfg: ManagerConfig;
  private readonly now: () => Date;
  private started = false;
  private readonly startedAt: Date;
  /** The last poll of each node's instance (cloud controllers). */
  readonly instances = new Map<string, InstanceView>();
  /** Services already told that the provider has no load balancers (by uid). */
  private readonly lbUnsupportedReported = new Set<string>();

  constructor(store: Store, now: () => Date, cfg: ManagerConfig) {
    this.store = store;
    this.now = now;
    this.cfg = cfg;
    this.ctx = { store, now };
    this.startedAt = now();
    this.cache = new ObjectCache(store, CACHED);
  }

  /** Reads the store's changes since the cursor and queues the keys they affect. */
  async sync(resync = false): Promise<void> {
    const t = this.now().getTime();
    if (!this.started) {
      await this.cache.relist();
      this.started = true;
      this.enqueueAll(t);
      if (this.cfg.cloud) this.queue.add("cloudpoll", t);
      return;
    }
    const changes = await this.cache.catchUp();
    if (changes === null || resync) {
      this.enqueueAll(t);
      return;
    }
    for (const c of changes) for (const k of this.keysFor(c)) this.queue.add(k, t);
  }

  /** Every reconcile key there is (cron resync, restart, relist after 410). */
  enqueueAll(t: number): void {
    for (const rs of this.cache.list(REPLICASETS)) this.queue.add(`rs:${nsName(rs)}`, t);
    for (const d of this.cache.list(DEPLOYMENTS)) this.queue.add(`deploy:${nsName(d)}`, t);
    for (const n of this.cache.list(NODES)) this.queue.add(`node:${n.metadata.name}`, t);
    for (const s of this.cache.list(SERVICES)) this.queue.add(`ep:${nsName(s)}`, t);
    if (this.cfg.cloud) {
      this.enqueueLoadBalancers(t);
      for (const n of this.cache.list(NODES)) this.queue.add(`cloudnode:${n.metadata.name}`, t);
    }
    for (const e of this.cache.list(ENDPOINTS)) this.queue.add(`ep:${nsName(e)}`, t);
    for (const ns of this.cache.list(NAMESPACES)) this.queue.add(`${ns.metadata.deletionTimestamp ? "ns" : "sa"}:${ns.metadata.name}`, t);
    for (const info of CACHED) {
      for (const o of this.cache.list(info)) {
        const key = objectKey(info, o.metadata.namespace, o.metadata.name);
        if (o.metadata.ownerReferences?.length) this.queue.add(`gcdep:${key}`, t);
        if (o.metadata.deletionTimestamp && o.metadata.finalizers?.length) this.queue.add(`gcowner:${key}`, t);
      }
    }
  }

  /** Every Service's service-controller key (e.g. after the public host changed). */
  enqueueLoadBalancers(t = this.now().getTime()): void {
    if (!this.cfg.cloud) return;
    for (const s of this.cache.list(SERVICES)) this.queue.add(`lb:${nsName(s)}`, t);
  }

  get isStarted(): boolean {
    return this.started;
  }

  /** The reconcile keys a change touches (old and new versions both count). */
  keysFor(c: CacheChange): string[] {
    const keys = new Set<string>();
    const versions = [c.obj, c.old].filter(Boolean) as Obj[];
    const ns = c.obj.metadata.namespace;
    switch (c.info) {
      case PODS:
        for (const p of versions) {
          const owner = controllerOf(p);
          if (owner?.kind === "ReplicaSet") {
            keys.add(`rs:${ns}/${owner.name}`);
            const rs = this.cache.get(REPLICASETS, ns, owner.name);
            const d = controllerOf(rs);
            if (d?.kind === "Deployment") keys.add(`deploy:${ns}/${d.name}`);
          } else if (!owner) {
            for (const rs of this.cache.list(REPLICASETS, ns))
              if (selects(rs.spec?.selector, p.metadata.labels)) keys.add(`rs:${nsName(rs)}`);
          }
          for (const svc of this.cache.list(SERVICES, ns)) if (serviceSelects(svc, p.metadata.labels)) keys.add(`ep:${nsName(svc)}`);
          if (p.spec?.nodeName) keys.add(`node:${p.spec.nodeName}`);
        }
        break;
      case REPLICASETS:
        keys.add(`rs:${ns}/${c.obj.metadata.name}`);
        for (const rs of versions) {
          const d = controllerOf(rs);
          if (d?.kind === "Deployment") keys.add(`deploy:${ns}/${d.name}`);
          else if (!d)
            for (const dep of this.cache.list(DEPLOYMENTS, ns))
              if (selects(dep.spec?.selector, rs.metadata.labels)) keys.add(`deploy:${nsName(dep)}`);
        }
        break;
      case DEPLOYMENTS:
        keys.add(`deploy:${ns}/${c.obj.metadata.name}`);
        break;
      case NODES:
        keys.add(`node:${c.obj.metadata.name}`);
        if (this.cfg.cloud) {
          const name = c.obj.metadata.name;
          if (c.type === "delete") this.instances.delete(name);
          else {
            keys.add(`cloudnode:${name}`);
            if (!this.instances.has(name)) keys.add(`cloudpoll:${name}`);
          }
          if (c.type === "delete" || !c.old || nodeReady(c.old) !== nodeReady(c.obj)) keys.add("lbnodes");
        }
        break;
      case LEASES:
        if (ns === "kube-node-lease") keys.add(`node:${c.obj.metadata.name}`);
        break;
      case SERVICES:
        if (this.cfg.cloud) keys.add(`lb:${ns}/${c.obj.metadata.name}`);
        keys.add(`ep:${ns}/${c.obj.metadata.name}`);
        break;
      case ENDPOINTS:
        keys.add(`ep:${ns}/${c.obj.metadata.name}`);
        break;
      case NAMESPACES:
        if (c.obj.metadata.deletionTimestamp) keys.add(`ns:${c.obj.metadata.name}`);
        else if (c.type === "put" && !c.old) keys.add(`sa:${c.obj.metadata.name}`);
        break;
    }
    // Namespace deletion waits on everything in the namespace.
    if (ns && c.info.namespaced) {
      const n = this.cache.get(NAMESPACES, undefined, ns);
      if (n?.metadata.deletionTimestamp) keys.add(`ns:${ns}`);
    }
    // Garbage collection: owners being deleted with a finalizer, dependents of deleted owners.
    const key = c.key;
    if (c.type === "delete") {
      for (const d of this.cache.dependentKeys(c.obj.metadata.uid)) keys.add(`gcdep:${d}`);
    } else if (c.obj.metadata.deletionTimestamp && c.obj.metadata.finalizers?.length) {
      keys.add(`gcowner:${key}`);
    }
    for (const p of versions) {
      for (const ref of p.metadata.ownerReferences ?? []) {
        const owner = ref?.uid ? this.cache.byUid(ref.uid) : undefined;
        if (owner?.metadata.deletionTimestamp) {
          const info = this.infoForKind(owner.kind);
          if (info) keys.add(`gcowner:${objectKey(info, owner.metadata.namespace, owner.metadata.name)}`);
        }
        if (!owner && this.infoForKind(ref?.kind)) keys.add(`gcdep:${key}`);
      }
    }
    return [...keys];
  }

  private infoForKind(kind: string | undefined): ResourceInfo | undefined {
    return CACHED.find((i) => i.kind === kind);
  }

  /** Reconciles every due key. Returns how many ran. */
  async runReady(): Promise<number> {
    const keys = this.queue.takeReady(this.now().getTime());
    for (const key of keys) await this.runKey(key);
    return keys.length;
  }

  private async runKey(key: string): Promise<void> {
    try {
      if (key === "cloudpoll" || key.startsWith("cloudpoll:") || key === "lbnodes") {
        await this.runCloudKey(key);
        this.queue.forget(key);
        return;
      }
      const r = await this.reconcile(key);
      if (!r) {
        this.queue.forget(key);
        return;
      }
      const t = this.now().getTime();
      const outcome = await applyActions(this.ctx, this.cache, r.result.actions, r.component, (c) => {
        for (const k of this.keysFor(c)) this.queue.add(k, t);
      });
      if (outcome === "conflict") {
        this.queue.addRateLimited(key, this.now().getTime());
        return;
      }
      if (r.failed) {
        // The provider failed (the reconciler has recorded why): back off and retry.
        this.queue.addRateLimited(key, this.now().getTime());
        return;
      }
      this.queue.forget(key);
      if (r.result.requeueAfterMs !== undefined) this.queue.addAt(key, this.now().getTime() + Math.max(0, r.result.requeueAfterMs));
    } catch (e) {
      const delay = this.queue.addRateLimited(key, this.now().getTime());
      console.warn(`reconcile ${key} failed (retry in ${delay} ms): ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /**
   * The cloud keys that are not reconcilers: polls of instances (every node on the
   * timer, or one new node) and updateLoadBalancer when the set of ready nodes changed.
   * A poll never fails: a provider error is kept in the node's view, which makes the
   * node controllers do nothing until a later poll succeeds.
   */
  private async runCloudKey(key: string): Promise<void> {
    const cloud = this.cfg.cloud;
    if (!cloud) return;
    if (key === "lbnodes") {
      const lb = cloud.provider.loadBalancer;
      if (!lb) return;
      const nodes = this.lbNodes();
      for (const svc of this.cache.list(SERVICES)) {
        if (!wantsLoadBalancer(svc) || serviceStep(svc, true) !== "ensure") continue;
        try {
          await lb.updateLoadBalancer(svc, nodes);
        } catch (e) {
          console.warn(`updateLoadBalancer ${nsName(svc)} failed: ${errorText(e)}`);
          this.queue.add(`lb:${nsName(svc)}`, this.now().getTime());
        }
      }
      return;
    }
    const names = key === "cloudpoll" ? this.cache.list(NODES).map((n) => n.metadata.name as string) : [key.slice("cloudpoll:".length)];
    if (key === "cloudpoll") this.queue.addAt(key, this.now().getTime() + cloud.pollIntervalMs);
    await eachLimit(names, 8, async (name) => {
      const node = this.cache.get(NODES, undefined, name);
      if (!node) {
        this.instances.delete(name);
        return;
      }
      const view = await pollInstance(cloud.provider, node);
      if (view.error !== undefined) console.warn(`cloud provider: instance of node ${name}: ${view.error}`);
      this.instances.set(name, view);
      this.queue.add(`cloudnode:${name}`, this.now().getTime());
    });
  }

  /** The nodes a load balancer sends traffic to: the Ready ones. */
  private lbNodes(): Obj[] {
    return this.cache.list(NODES).filter(nodeReady);
  }

  private async reconcile(key: string): Promise<{ result: ReconcileResult; component: string; failed?: boolean } | null> {
    const i = key.indexOf(":");
    const kind = key.slice(0, i);
    const rest = key.slice(i + 1);
    const now = this.now();
    const [ns, name] = rest.includes("/") && !rest.startsWith("/") ? rest.split("/", 2) : [undefined, rest];
    switch (kind) {
      case "rs": {
        const rs = this.cache.get(REPLICASETS, ns, name);
        if (!rs) return null;
        return { result: reconcileReplicaSet(rs, this.cache.list(PODS, ns), now), component: COMPONENTS.replicaset };
      }
      case "deploy": {
        const d = this.cache.get(DEPLOYMENTS, ns, name);
        if (!d) return null;
        return {
          result: reconcileDeployment(d, this.cache.list(REPLICASETS, ns), this.cache.list(PODS, ns), now),
          component: COMPONENTS.deployment,
        };
      }
      case "node": {
        const node = this.cache.get(NODES, undefined, name);
        if (!node) return null;
        const lease = this.withStartupGrace(this.cache.get(LEASES, "kube-node-lease", name), now);
        const pods = this.cache.list(PODS).filter((p) => p.spec?.nodeName === name);
        return { result: reconcileNode(node, lease, pods, now, this.cfg.node), component: COMPONENTS.nodeLifecycle };
      }
      case "ep": {
        const svc = this.cache.get(SERVICES, ns, name);
        const existing = this.cache.get(ENDPOINTS, ns, name);
        if (!svc && !existing) return null;
        return { result: reconcileEndpoints(svc, this.cache.list(PODS, ns), existing, ns!, name), component: COMPONENTS.endpoints };
      }
      case "lb": {
        const cloud = this.cfg.cloud;
        const svc = this.cache.get(SERVICES, ns, name);
        if (!cloud || !svc) return null;
        const lb = cloud.provider.loadBalancer;
        const step = serviceStep(svc, lb !== undefined);
        let outcome: ServiceOutcome;
        let failed = false;
        switch (step) {
          case "none":
            return null;
          case "unsupported": {
            const uid = svc.metadata.uid as string;
            outcome = { step, provider: cloud.provider.name, reported: this.lbUnsupportedReported.has(uid) };
            this.lbUnsupportedReported.add(uid);
            break;
          }
          case "add-finalizer":
            outcome = { step };
            break;
          case "ensure":
            try {
              outcome = { step, result: await lb!.ensureLoadBalancer(svc, this.lbNodes()) };
            } catch (e) {
              outcome = { step, error: errorText(e) };
              failed = true;
            }
            break;
          case "delete":
            try {
              await lb?.ensureLoadBalancerDeleted(svc);
              outcome = { step };
            } catch (e) {
              outcome = { step, error: errorText(e) };
              failed = true;
            }
            break;
        }
        return { result: reconcileServiceLB(svc, outcome), component: CLOUD_COMPONENTS.service, failed };
      }
      case "cloudnode": {
        const cloud = this.cfg.cloud;
        const node = this.cache.get(NODES, undefined, name);
        if (!cloud || !node) return null;
        const view = this.instances.get(name);
        const gone = reconcileCloudNodeLifecycle(node, view, cloud.provider.name);
        if (gone.actions.length > 0) return { result: gone, component: CLOUD_COMPONENTS.nodeLifecycle };
        return { result: reconcileCloudNode(node, view), component: CLOUD_COMPONENTS.node };
      }
      case "ns": {
        const n = this.cache.get(NAMESPACES, undefined, rest);
        if (!n?.metadata.deletionTimestamp) return null;
        return { result: reconcileNamespace(n, await this.namespaceContents(rest)), component: COMPONENTS.namespace };
      }
      case "sa": {
        // The ServiceAccount controller's one job here: every live namespace has "default".
        const n = this.cache.get(NAMESPACES, undefined, rest);
        if (!n || n.metadata.deletionTimestamp) return null;
        if (await this.store.get(`/registry/core/serviceaccounts/${rest}/default`)) return null;
        const object = { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: rest } };
        return {
          result: { actions: [{ type: "create", gvr: { group: "", version: "v1", resource: "serviceaccounts" }, object }] },
          component: "serviceaccount-controller",
        };
      }
      case "gcowner": {
        const info = this.cache.infoOf(rest);
        const owner = this.cache.getByKey(rest);
        if (!info || !owner) return null;
        const dependents = this.cache.dependentKeys(owner.metadata.uid).flatMap((k) => {
          const o = this.cache.getByKey(k);
          const di = this.cache.infoOf(k);
          return o && di ? [{ gvr: gvrOf(di), obj: o }] : [];
        });
        return { result: reconcileOwner(owner, gvrOf(info), dependents), component: COMPONENTS.gc };
      }
      case "gcdep": {
        const info = this.cache.infoOf(rest);
        const dep = this.cache.getByKey(rest);
        if (!info || !dep) return null;
        const exists = (ref: { kind: string; uid: string }) => {
          const oi = this.infoForKind(ref.kind);
          if (!oi) return true; // a kind we do not follow: assume it exists
          return this.cache.byUid(ref.uid) !== undefined;
        };
        return { result: reconcileDependent(dep, gvrOf(info), exists), component: COMPONENTS.gc };
      }
      default:
        return null;
    }
  }

  /**
   * Like kube's node lifecycle controller, a manager that just started counts every
   * node as heard from at its start: after the control plane was down, agents get a
   * full grace period to renew their leases before their nodes are marked Unknown.
   */
  private withStartupGrace(lease: Obj | undefined, now: Date): Obj | undefined {
    const start = this.startedAt.toISOString().replace("Z", "000Z");
    const renewed = lease?.spec?.renewTime ? Date.parse(lease.spec.renewTime) : Number.NaN;
    if (now.getTime() - this.startedAt.getTime() > this.cfg.node.gracePeriodMs) return lease;
    if (!Number.isNaN(renewed) && renewed >= this.startedAt.getTime()) return lease;
    return { ...(lease ?? { metadata: {} }), spec: { ...(lease?.spec ?? {}), renewTime: start } };
  }

  /** Everything in a namespace: cached kinds from the cache, the rest read from the store. */
  private async namespaceContents(ns: string): Promise<{ gvr: GVR; obj: Obj }[]> {
    const out: { gvr: GVR; obj: Obj }[] = [];
    for (const info of RESOURCES) {
      if (!info.namespaced) continue;
      if (this.cache.covers(info)) {
        for (const o of this.cache.list(info, ns)) out.push({ gvr: gvrOf(info), obj: o });
        continue;
      }
      const res = await this.store.list(`/registry/${info.group || "core"}/${info.resource}/${ns}/`);
      for (const kv of res.items) out.push({ gvr: gvrOf(info), obj: decodeKV(kv) });
    }
    return out;
  }

  nextDue(): number | undefined {
    return this.queue.nextDue();
  }
}
