// The connect subresources' checks, inside workerd, with no agent connected: every bad
// request is a Kubernetes Status with the right code before any tunnel is asked, and a
// pod on a node whose agent is not connected answers 503, never a 500.

import { describe, expect, it } from "vitest";
import { api, freshNamespace, newPod } from "./helpers.ts";

function expectStatus(r: { status: number; body: any }, code: number, reason: string, message?: string | RegExp) {
  expect(r.status, JSON.stringify(r.body)).toBe(code);
  expect(r.body).toMatchObject({ kind: "Status", status: "Failure", code, reason });
  if (typeof message === "string") expect(r.body.message).toBe(message);
  else if (message) expect(r.body.message).toMatch(message);
}

const WS = { upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" };

async function podOn(ns: string, name: string, node: string | undefined, extra: Record<string, unknown> = {}) {
  const p = newPod(name, { nodeName: node });
  Object.assign(p.spec, extra);
  const r = await api("POST", `/api/v1/namespaces/${ns}/pods`, p);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

describe("connect subresources", () => {
  it("pods/log: options are checked as kube checks PodLogOptions", async () => {
    const ns = await freshNamespace("log");
    await podOn(ns, "p", "n1");
    const log = (q: string) => api("GET", `/api/v1/namespaces/${ns}/pods/p/log${q}`);
    expectStatus(await log("?tailLines=-1"), 422, "Invalid", /tailLines: Invalid value: -1: must be greater than or equal to 0/);
    expectStatus(await log("?limitBytes=0"), 422, "Invalid");
    expectStatus(await log("?sinceSeconds=0"), 422, "Invalid");
    expectStatus(await log("?sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z"), 422, "Invalid");
    expectStatus(await log("?tailLines=ten"), 400, "BadRequest");
    expectStatus(await log("?follow=maybe"), 400, "BadRequest");
    expectStatus(await log("?sinceTime=yesterday"), 400, "BadRequest");
    expectStatus(await log("?container=nope"), 400, "BadRequest", `container nope is not valid for pod p`);
    expectStatus(await api("POST", `/api/v1/namespaces/${ns}/pods/p/log`), 405, "MethodNotAllowed");
    expectStatus(await api("GET", `/api/v1/namespaces/${ns}/pods/ghost/log`), 404, "NotFound");
  });

  it("a pod on a node with no tunnel answers 503, and an unbound pod 400", async () => {
    const ns = await freshNamespace("log");
    await podOn(ns, "p", "no-such-agent");
    expectStatus(await api("GET", `/api/v1/namespaces/${ns}/pods/p/log`), 503, "ServiceUnavailable", /is not connected/);
    await podOn(ns, "pending", undefined);
    expectStatus(
      await api("GET", `/api/v1/namespaces/${ns}/pods/pending/log`),
      400,
      "BadRequest",
      "pod pending does not have a host assigned",
    );
  });

  it("a pod with several containers needs the container named (or kubectl's default annotation)", async () => {
    const ns = await freshNamespace("log");
    const p = newPod("two", { nodeName: "n1" });
    p.spec.containers.push({ name: "side", image: "busybox" });
    expect((await api("POST", `/api/v1/namespaces/${ns}/pods`, p)).status).toBe(201);
    expectStatus(
      await api("GET", `/api/v1/namespaces/${ns}/pods/two/log`),
      400,
      "BadRequest",
      "a container name must be specified for pod two, choose one of: [app side]",
    );
    // Named, it gets as far as the (absent) node.
    expectStatus(await api("GET", `/api/v1/namespaces/${ns}/pods/two/log?container=side`), 503, "ServiceUnavailable");
  });

  it("exec, attach and portforward: WebSocket only, with their options checked first", async () => {
    const ns = await freshNamespace("exec");
    await podOn(ns, "p", "n1");
    const exec = (q: string, headers: Record<string, string> = WS) =>
      api("GET", `/api/v1/namespaces/${ns}/pods/p/exec${q}`, undefined, { headers });
    expectStatus(await exec("?command=ls&stdout=true", {}), 400, "BadRequest", "Upgrade request required");
    expectStatus(await exec("?stdout=true"), 400, "BadRequest", "you must specify at least one command for the container");
    expectStatus(await exec("?command=ls"), 400, "BadRequest", "you must specify at least 1 of stdin, stdout, stderr");
    expectStatus(await exec("?command=ls&stdout=yes"), 400, "BadRequest");
    expectStatus(await exec("?command=ls&stdout=true&container=nope"), 400, "BadRequest", "container nope is not valid for pod p");
    // Valid, but no agent: 503.
    expectStatus(await exec("?command=ls&stdout=true"), 503, "ServiceUnavailable");
    const pf = (q: string) => api("GET", `/api/v1/namespaces/${ns}/pods/p/portforward${q}`, undefined, { headers: WS });
    expectStatus(await pf("?ports=http"), 400, "BadRequest");
    expectStatus(await pf("?ports=70000"), 400, "BadRequest");
    expectStatus(await api("DELETE", `/api/v1/namespaces/${ns}/pods/p/exec?command=ls`), 405, "MethodNotAllowed");
    // A completed pod cannot be exec'd into.
    await podOn(ns, "done", "n1");
    const st = await api("GET", `/api/v1/namespaces/${ns}/pods/done`);
    const put = { ...st.body, status: { phase: "Succeeded" } };
    expect((await api("PUT", `/api/v1/namespaces/${ns}/pods/done/status`, put)).status).toBe(200);
    expectStatus(
      await api("GET", `/api/v1/namespaces/${ns}/pods/done/exec?command=ls&stdout=true`, undefined, { headers: WS }),
      400,
      "BadRequest",
      "cannot exec into a container in a completed pod; current phase is Succeeded",
    );
  });

  it("nodes/proxy needs the node; nodes/tunnel is for the node alone", async () => {
    expectStatus(await api("GET", "/api/v1/nodes/absent/proxy/healthz"), 404, "NotFound");
    expectStatus(
      await api("GET", "/api/v1/nodes/absent/tunnel", undefined, { headers: WS }),
      403,
      "Forbidden",
      /only node "absent" may open its tunnel/,
    );
  });

  it("discovery lists the connect subresources with kube's verbs", async () => {
    const r = await api("GET", "/api/v1");
    const names = new Map((r.body.resources as any[]).map((x) => [x.name, x.verbs]));
    expect(names.get("pods/log")).toEqual(["get"]);
    expect(names.get("pods/exec")).toEqual(["create", "get"]);
    expect(names.get("pods/portforward")).toEqual(["create", "get"]);
    expect(names.get("nodes/proxy")).toEqual(["create", "delete", "get", "patch", "update"]);
  });
});
