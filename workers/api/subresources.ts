// Subresources with their own shapes: pods/binding (the scheduler's write) and the
// scale subresource of deployments and replicasets (autoscaling/v1 Scale).

import { ApiError, badRequest } from "../shared/errors.ts";
import { applyPatch, type PatchType } from "../shared/patch.ts";
import { fromLabelSelectorObject, labelSelectorToString } from "../shared/selectors.ts";
import { decodeKV, type Obj, parseResourceVersion } from "./codec.ts";
import { type Ctx, getObject, guaranteedUpdate, type Target, type UpdateOptions } from "./registry.ts";
import { rfc3339 } from "./strategy.ts";

/**
 * What a binding does to a pod: spec.nodeName and PodScheduled=True, in one write.
 * Shared by the binding subresource and the scheduler's batched binds. Mutates pod.
 */
export function bindPod(pod: Obj, node: string, now: Date): Obj {
  pod.spec.nodeName = node;
  pod.status ??= {};
  const conds: Obj[] = (pod.status.conditions ??= []);
  const ts = rfc3339(now);
  const c = conds.find((x) => x.type === "PodScheduled");
  if (c) {
    if (c.status !== "True") c.lastTransitionTime = ts;
    c.status = "True";
    delete c.reason;
    delete c.message;
  } else conds.push({ type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: ts });
  return pod;
}

/** POST pods/{name}/binding: sets spec.nodeName once, as kube-apiserver's BindingREST does. */
export async function bind(ctx: Ctx, t: Target, body: unknown, opts: UpdateOptions): Promise<Obj> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw badRequest("the request body must be a Binding object");
  const b = body as Obj;
  const node = b.target?.name;
  if (typeof node !== "string" || node === "") {
    throw new ApiError(422, "Invalid", `Binding.core "${t.name}" is invalid: target.name: Required value`, {
      name: t.name,
      kind: "Binding",
      causes: [{ reason: "FieldValueRequired", message: "Required value", field: "target.name" }],
    });
  }
  if (b.metadata?.name !== undefined && b.metadata.name !== t.name) throw badRequest("the name of the binding does not match the pod");
  const uid = b.metadata?.uid;
  // One write: spec.nodeName and the PodScheduled=True condition, as the scheduler's
  // binding does, compare-and-swapped on the pod's resourceVersion.
  await guaranteedUpdate(
    ctx,
    t,
    (pod) => {
      if (uid && pod.metadata.uid !== uid) {
        throw new ApiError(
          409,
          "Conflict",
          `Operation cannot be fulfilled on pods/binding "${t.name}": Precondition failed: UID in precondition: ${uid}, UID in object meta: ${pod.metadata.uid}`,
        );
      }
      if (pod.metadata.deletionTimestamp) {
        throw new ApiError(
          409,
          "Conflict",
          `Operation cannot be fulfilled on pods/binding "${t.name}": pod ${t.name} is being deleted, cannot be assigned to a host`,
        );
      }
      if (pod.spec?.nodeName) {
        throw new ApiError(
          409,
          "Conflict",
          `Operation cannot be fulfilled on pods/binding "${t.name}": pod ${t.name} is already assigned to node "${pod.spec.nodeName}"`,
        );
      }
      return bindPod(pod, node, ctx.now());
    },
    { ...opts, subresource: "binding" },
  );
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", code: 201 };
}

function scaleOf(obj: Obj): Obj {
  const sel = fromLabelSelectorObject(obj.spec?.selector);
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: {
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      uid: obj.metadata.uid,
      resourceVersion: obj.metadata.resourceVersion,
      creationTimestamp: obj.metadata.creationTimestamp,
    },
    spec: { replicas: obj.spec?.replicas ?? 0 },
    status: { replicas: obj.status?.replicas ?? 0, selector: sel ? labelSelectorToString(sel) : "" },
  };
}

export async function getScale(ctx: Ctx, t: Target): Promise<Obj> {
  return scaleOf(decodeKV(await getObject(ctx, t)));
}

function replicasFrom(scale: unknown, name: string | undefined): number {
  const s = scale as Obj;
  if (typeof s !== "object" || s === null || Array.isArray(s)) throw badRequest("the request body must be a Scale object");
  const r = s.spec?.replicas;
  if (!Number.isInteger(r) || r < 0) {
    throw new ApiError(
      422,
      "Invalid",
      `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(r)}: must be greater than or equal to 0`,
      {
        name,
        group: "autoscaling",
        kind: "Scale",
        causes: [{ reason: "FieldValueInvalid", message: "must be greater than or equal to 0", field: "spec.replicas" }],
      },
    );
  }
  return r;
}

/** PUT or PATCH of /scale: writes spec.replicas of the owner, CAS on the Scale's resourceVersion if given. */
export async function updateScale(
  ctx: Ctx,
  t: Target,
  change: { put: unknown } | { patchType: PatchType; patch: unknown },
  opts: UpdateOptions,
): Promise<Obj> {
  let pinned: number | undefined;
  if ("put" in change) {
    pinned = parseResourceVersion((change.put as Obj)?.metadata?.resourceVersion);
    if (Number.isNaN(pinned)) throw badRequest("invalid resourceVersion");
  }
  const updated = await guaranteedUpdate(
    ctx,
    t,
    (obj) => {
      const current = scaleOf(obj);
      const desired = "put" in change ? change.put : applyPatch(change.patchType, current, change.patch, "Scale");
      obj.spec.replicas = replicasFrom(desired, t.name);
      return obj;
    },
    { ...opts, subresource: undefined, pinnedRV: pinned },
  );
  return scaleOf(updated);
}
