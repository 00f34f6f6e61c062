// The informer of a subscriber Durable Object: an in-memory copy of the objects it
// cares about, kept current by reading the store's changes after a cursor revision
// (woken by the store's commit notifications), and rebuilt by a full list when the
// cursor falls below the compacted revision (410). Writes made by the subscriber itself
// are put in at once (write-through), so a reconcile never acts on a cache that has not
// yet seen its own previous writes.

import { decodeKV } from "../../workers/api/codec.ts";
import { ApiError } from "../../workers/shared/errors.ts";
import { keyPrefix, objectKey, type ResourceInfo } from "../../workers/shared/resources.ts";
import type { Store, WatchEvent } from "../store/types.ts";
import type { Obj } from "./types.ts";

export interface CacheChange {
  type: "put" | "delete";
  info: ResourceInfo;
  key: string;
  obj: Obj;
  /** The cached object before this change, if any. */
  old?: Obj;
}

function rvOf(o: Obj | undefined): number {
  return o ? Number(o.metadata?.resourceVersion ?? 0) : 0;
}

export class ObjectCache {
  /** Current cursor: every change at or below it has been applied. */
  revision = 0;
  private readonly store: Store;
  private readonly infos: ResourceInfo[];
  private readonly prefixes: string[];
  /** resource prefix → namespace ("" for cluster-scoped) → name → object */
  private readonly data = new Map<string, Map<string, Map<string, Obj>>>();
  private readonly byUID = new Map<string, Obj>();
  /** owner uid → keys of objects that name it in ownerReferences */
  private readonly dependents = new Map<string, Set<string>>();
  private readonly keyInfo = new Map<string, ResourceInfo>();

  constructor(store: Store, infos: ResourceInfo[]) {
    this.store = store;
    this.infos = infos;
    this.prefixes = infos.map((i) => keyPrefix(i));
    for (const p of this.prefixes) this.data.set(p, new Map());
  }

  private infoForKey(key: string): ResourceInfo | undefined {
    for (let i = 0; i < this.prefixes.length; i++) if (key.startsWith(this.prefixes[i])) return this.infos[i];
    return undefined;
  }

  /** Lists everything afresh at one revision. Returns the revision. */
  async relist(): Promise<number> {
    const first = await this.store.list(this.prefixes[0]);
    const revision = first.revision;
    const lists = [first, ...(await Promise.all(this.prefixes.slice(1).map((p) => this.store.list(p, { revision }))))];
    for (const m of this.data.values()) m.clear();
    this.byUID.clear();
    this.dependents.clear();
    this.keyInfo.clear();
    lists.forEach((res, i) => {
      for (const kv of res.items) this.insert(this.infos[i], kv.key, decodeKV(kv));
    });
    this.revision = revision;
    return revision;
  }

  /**
   * Applies the store's changes after the cursor, up to the current revision. Returns
   * the changes applied, or null when the cursor had been compacted away and the cache
   * was rebuilt by a relist (the caller should then resync everything).
   */
  async catchUp(): Promise<CacheChange[] | null> {
    const out: CacheChange[] = [];
    for (;;) {
      let res: Awaited<ReturnType<Store["changes"]>>;
      try {
        res = await this.store.changes(this.prefixes, this.revision, 2000);
      } catch (e) {
        if (e instanceof ApiError && e.code === 410) {
          await this.relist();
          return null;
        }
        throw e;
      }
      for (const ev of res.events) {
        const c = this.applyEvent(ev);
        if (c) out.push(c);
      }
      const last = res.events[res.events.length - 1];
      if (res.more && last && (last.type === "put" || last.type === "delete")) this.revision = last.kv.modRevision;
      else {
        this.revision = Math.max(this.revision, res.revision);
        return out;
      }
    }
  }

  private applyEvent(ev: WatchEvent): CacheChange | undefined {
    if (ev.type !== "put" && ev.type !== "delete") return undefined;
    const info = this.infoForKey(ev.kv.key);
    if (!info) return undefined;
    const old = this.getByKey(ev.kv.key);
    // Write-through may already have put a newer version in; never go backwards.
    if (old && rvOf(old) >= ev.kv.modRevision) return undefined;
    const obj = decodeKV(ev.kv);
    if (ev.type === "delete") {
      if (old) this.remove(info, ev.kv.key);
      return { type: "delete", info, key: ev.kv.key, obj, old };
    }
    this.insert(info, ev.kv.key, obj);
    return { type: "put", info, key: ev.kv.key, obj, old };
  }

  /** Write-through of an object this subscriber just wrote (or deleted, with gone). */
  put(info: ResourceInfo, obj: Obj, gone = false): CacheChange | undefined {
    if (!this.covers(info)) return undefined; // e.g. an Event or ServiceAccount a reconciler created
    const key = objectKey(info, obj.metadata.namespace, obj.metadata.name);
    const old = this.getByKey(key);
    if (old && rvOf(old) >= rvOf(obj)) return undefined;
    if (gone) {
      if (old) this.remove(info, key);
      return { type: "delete", info, key, obj, old };
    }
    this.insert(info, key, obj);
    return { type: "put", info, key, obj, old };
  }

  private insert(info: ResourceInfo, key: string, obj: Obj): void {
    const prev = this.getByKey(key);
    if (prev) this.remove(info, key);
    const byNs = this.data.get(keyPrefix(info))!;
    const ns = info.namespaced ? (obj.metadata.namespace ?? "") : "";
    let m = byNs.get(ns);
    if (!m) byNs.set(ns, (m = new Map()));
    m.set(obj.metadata.name, obj);
    this.keyInfo.set(key, info);
    if (obj.metadata.uid) this.byUID.set(obj.metadata.uid, obj);
    for (const ref of obj.metadata.ownerReferences ?? []) {
      if (!ref?.uid) continue;
      let s = this.dependents.get(ref.uid);
      if (!s) this.dependents.set(ref.uid, (s = new Set()));
      s.add(key);
    }
  }

  private remove(info: ResourceInfo, key: string): void {
    const obj = this.getByKey(key);
    if (!obj) return;
    const ns = info.namespaced ? (obj.metadata.namespace ?? "") : "";
    this.data.get(keyPrefix(info))!.get(ns)?.delete(obj.metadata.name);
    this.keyInfo.delete(key);
    if (obj.metadata.uid && this.byUID.get(obj.metadata.uid) === obj) this.byUID.delete(obj.metadata.uid);
    for (const ref of obj.metadata.ownerReferences ?? []) this.dependents.get(ref?.uid)?.delete(key);
  }

  getByKey(key: string): Obj | undefined {
    const info = this.keyInfo.get(key) ?? this.infoForKey(key);
    if (!info) return undefined;
    const rest = key.slice(keyPrefix(info).length);
    if (info.namespaced) {
      const i = rest.indexOf("/");
      return this.data
        .get(keyPrefix(info))!
        .get(rest.slice(0, i))
        ?.get(rest.slice(i + 1));
    }
    return this.data.get(keyPrefix(info))!.get("")?.get(rest);
  }

  get(info: ResourceInfo, namespace: string | undefined, name: string): Obj | undefined {
    return this.data
      .get(keyPrefix(info))
      ?.get(info.namespaced ? (namespace ?? "") : "")
      ?.get(name);
  }

  /** Objects of a resource, in one namespace or all. */
  list(info: ResourceInfo, namespace?: string): Obj[] {
    const byNs = this.data.get(keyPrefix(info));
    if (!byNs) return [];
    if (namespace !== undefined) return [...(byNs.get(namespace)?.values() ?? [])];
    const out: Obj[] = [];
    for (const m of byNs.values()) for (const o of m.values()) out.push(o);
    return out;
  }

  byUid(uid: string): Obj | undefined {
    return this.byUID.get(uid);
  }

  /** Keys of cached objects whose ownerReferences name uid. */
  dependentKeys(uid: string): string[] {
    return [...(this.dependents.get(uid) ?? [])];
  }

  infoOf(key: string): ResourceInfo | undefined {
    return this.keyInfo.get(key) ?? this.infoForKey(key);
  }

  /** Whether this cache holds objects of the resource (so absence means "does not exist"). */
  covers(info: ResourceInfo): boolean {
    return this.data.has(keyPrefix(info));
  }
}
