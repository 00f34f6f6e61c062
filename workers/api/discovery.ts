// Discovery documents (/version, /api, /apis, /api/v1, /apis/<group>/<version>), built
// from the resource table so they always describe exactly what is served.

import { groupVersions, RESOURCES, type ResourceInfo } from "../shared/resources.ts";

export const SERVER_VERSION = {
  major: "1",
  minor: "32",
  gitVersion: "v1.32.0-kubeflare.0",
  gitCommit: "",
  gitTreeState: "clean",
  buildDate: "2026-11-26T00:00:00Z",
  goVersion: "workerd",
  compiler: "workerd",
  platform: "cloudflare/workers",
};

const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

function resourceEntries(info: ResourceInfo): object[] {
  const main = {
    name: info.resource,
    singularName: info.singular,
    namespaced: info.namespaced,
    kind: info.kind,
    verbs: info.verbs ?? VERBS,
    ...(info.shortNames.length ? { shortNames: info.shortNames } : {}),
    ...(info.categories.length ? { categories: info.categories } : {}),
    storageVersionHash: "",
  };
  const subs = info.subresources.map((sub) => {
    if (sub === "scale")
      return {
        name: `${info.resource}/scale`,
        singularName: "",
        namespaced: info.namespaced,
        group: "autoscaling",
        version: "v1",
        kind: "Scale",
        verbs: ["get", "patch", "update"],
      };
    if (sub === "binding")
      return { name: `${info.resource}/binding`, singularName: "", namespaced: info.namespaced, kind: "Binding", verbs: ["create"] };
    if (sub === "token")
      return {
        name: `${info.resource}/token`,
        singularName: "",
        namespaced: info.namespaced,
        group: "authentication.k8s.io",
        version: "v1",
        kind: "TokenRequest",
        verbs: ["create"],
      };
    if (sub === "finalize")
      return { name: `${info.resource}/finalize`, singularName: "", namespaced: info.namespaced, kind: info.kind, verbs: ["update"] };
    // Connect subresources (served through the node's tunnel), as kube lists them.
    const connect: Record<string, [string, string[]]> = {
      log: ["Pod", ["get"]],
      exec: ["PodExecOptions", ["create", "get"]],
      attach: ["PodAttachOptions", ["create", "get"]],
      portforward: ["PodPortForwardOptions", ["create", "get"]],
      proxy: [info.resource === "nodes" ? "NodeProxyOptions" : "ServiceProxyOptions", ["create", "delete", "get", "patch", "update"]],
      tunnel: ["Node", ["create", "get"]],
    };
    if (connect[sub])
      return {
        name: `${info.resource}/${sub}`,
        singularName: "",
        namespaced: info.namespaced,
        kind: connect[sub][0],
        verbs: connect[sub][1],
      };
    return {
      name: `${info.resource}/${sub}`,
      singularName: "",
      namespaced: info.namespaced,
      kind: info.kind,
      verbs: ["get", "patch", "update"],
    };
  });
  return [main, ...subs];
}

export function apiResourceList(group: string, version: string): object | undefined {
  const infos = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (!infos.length) return undefined;
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: group ? `${group}/${version}` : version,
    resources: infos.flatMap(resourceEntries),
  };
}

export function apiVersions(): object {
  return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "" }] };
}

function apiGroup(group: string, versions: string[]): object {
  const vs = versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
  return { name: group, versions: vs, preferredVersion: vs[0] };
}

export function apiGroupList(): object {
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: groupVersions()
      .filter((g) => g.group !== "")
      .map((g) => apiGroup(g.group, g.versions)),
  };
}

export function apiGroupDoc(group: string): object | undefined {
  const g = groupVersions().find((x) => x.group === group && group !== "");
  return g ? { kind: "APIGroup", apiVersion: "v1", ...apiGroup(g.group, g.versions) } : undefined;
}

// ------------------------------------------------------------------ aggregated discovery
//
// kubectl first asks /api and /apis for apidiscovery.k8s.io/v2 APIGroupDiscoveryList
// (everything in two requests) and falls back to the per-group-version documents above.

export const AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
export const AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/** The aggregated-discovery content type the Accept header asks for, if any. */
export function wantsAggregated(accept: string | undefined): string | undefined {
  if (!accept) return undefined;
  for (const clause of accept.split(",")) {
    const parts = clause.split(";").map((p) => p.trim().toLowerCase());
    if (parts[0] !== "application/json" || !parts.includes("g=apidiscovery.k8s.io") || !parts.includes("as=apigroupdiscoverylist"))
      continue;
    if (parts.includes("v=v2")) return AGGREGATED_V2;
    if (parts.includes("v=v2beta1")) return AGGREGATED_V2BETA1;
  }
  return undefined;
}

function discoveryResource(info: ResourceInfo): object {
  const subresources = (
    resourceEntries(info).slice(1) as { name: string; group?: string; version?: string; kind: string; verbs: string[] }[]
  ).map((s) => ({
    subresource: s.name.slice(info.resource.length + 1),
    responseKind: { group: s.group ?? info.group, version: s.version ?? info.version, kind: s.kind },
    verbs: s.verbs,
  }));
  return {
    resource: info.resource,
    responseKind: { group: info.group, version: info.version, kind: info.kind },
    scope: info.namespaced ? "Namespaced" : "Cluster",
    singularResource: info.singular,
    verbs: info.verbs ?? VERBS,
    ...(info.shortNames.length ? { shortNames: info.shortNames } : {}),
    ...(info.categories.length ? { categories: info.categories } : {}),
    ...(subresources.length ? { subresources } : {}),
  };
}

/** /api (core = true) or /apis as an APIGroupDiscoveryList. */
export function aggregatedDiscovery(core: boolean, contentType: string): object {
  const apiVersion = contentType === AGGREGATED_V2 ? "apidiscovery.k8s.io/v2" : "apidiscovery.k8s.io/v2beta1";
  const items = groupVersions()
    .filter((g) => (g.group === "") === core)
    .map((g) => ({
      metadata: { name: g.group, creationTimestamp: null },
      versions: g.versions.map((version) => ({
        version,
        resources: RESOURCES.filter((r) => r.group === g.group && r.version === version).map(discoveryResource),
        freshness: "Current",
      })),
    }));
  return { kind: "APIGroupDiscoveryList", apiVersion, metadata: {}, items };
}
