// Joining nodes: POST /apis/kubeflare.dev/v1/nodecredentials, authenticated with a join
// token (a bootstrap token `<id>.<secret>`, Secret kube-system/bootstrap-token-<id>),
// turns `{ "nodeName": "n1" }` into a node credential `kfn_<node>.<secret>` that
// authenticates as system:node:<node> (groups system:nodes, system:authenticated).
// Only a SHA-256 of the credential's secret is stored, in Secret
// kube-system/node-credential-<node>; asking again for the same node rotates it.
//
// Anyone holding a valid join token may ask for any node name (as with kubeadm's
// bootstrap tokens), so a join token is as sensitive as the nodes it can impersonate:
// keep its TTL short and revoke it when the nodes have joined.

import { ApiError, badRequest, invalid } from "../shared/errors.ts";
import { lookupResource } from "../shared/resources.ts";
import { isDNS1123Subdomain } from "../shared/validation.ts";
import { b64, invalidateAuthnCache, NODE_CREDENTIAL_TYPE, randomAlnum, SYSTEM_NAMESPACE, sha256Hex, systemSecretKey } from "./authn.ts";
import type { UserInfo } from "./authz.ts";
import type { Obj } from "./codec.ts";
import { type Ctx, create, guaranteedUpdate } from "./registry.ts";
import { rfc3339 } from "./strategy.ts";

const SECRETS = lookupResource("", "v1", "secrets")!;
export const NODE_CREDENTIAL_PREFIX = "node-credential-";
/** Longest node name whose credential Secret name still fits in 253 characters. */
export const MAX_NODE_NAME = 253 - NODE_CREDENTIAL_PREFIX.length;

function invalidNodeName(value: unknown, message: string): ApiError {
  return invalid("NodeCredential", "kubeflare.dev", undefined, [
    { field: "nodeName", type: "FieldValueInvalid", message: `Invalid value: ${JSON.stringify(value)}: ${message}` },
  ]);
}

/** Issues (or rotates) the credential of one node. The caller is authorized already. */
export async function issueNodeCredential(ctx: Ctx, user: UserInfo, body: unknown): Promise<Obj> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw badRequest("the request body must be a JSON object");
  const nodeName = (body as Obj).nodeName;
  if (typeof nodeName !== "string" || nodeName === "") {
    throw invalid("NodeCredential", "kubeflare.dev", undefined, [
      { field: "nodeName", type: "FieldValueRequired", message: "Required value" },
    ]);
  }
  if (!isDNS1123Subdomain(nodeName) || nodeName.length > MAX_NODE_NAME) {
    throw invalidNodeName(
      nodeName,
      `a node name must be a lowercase RFC 1123 subdomain of at most ${MAX_NODE_NAME} characters (lowercase alphanumerics, '-' and '.')`,
    );
  }
  const secret = randomAlnum(32);
  const now = ctx.now();
  const data = { node: b64(nodeName), "token-secret-sha256": b64(await sha256Hex(secret)) };
  const annotations = { "kubeflare.dev/issued-by": user.username, "kubeflare.dev/issued-at": rfc3339(now) };
  const name = NODE_CREDENTIAL_PREFIX + nodeName;
  const t = { info: SECRETS, namespace: SYSTEM_NAMESPACE, name };
  const rotate = () =>
    guaranteedUpdate(
      ctx,
      t,
      (cur) => {
        cur.type = NODE_CREDENTIAL_TYPE;
        cur.data = data;
        cur.metadata.annotations = { ...(cur.metadata.annotations ?? {}), ...annotations };
        return cur;
      },
      { dryRun: false },
    );
  try {
    if (await ctx.store.get(systemSecretKey(name))) await rotate();
    else {
      const obj = {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name, namespace: SYSTEM_NAMESPACE, annotations },
        type: NODE_CREDENTIAL_TYPE,
        data,
      };
      try {
        await create(ctx, t, obj, { dryRun: false });
      } catch (e) {
        if (!(e instanceof ApiError && e.reason === "AlreadyExists")) throw e;
        await rotate();
      }
    }
  } finally {
    invalidateAuthnCache(); // the old credential stops working in this isolate at once
  }
  return {
    apiVersion: "kubeflare.dev/v1",
    kind: "NodeCredential",
    metadata: { creationTimestamp: rfc3339(now) },
    nodeName,
    token: `kfn_${nodeName}.${secret}`,
  };
}
