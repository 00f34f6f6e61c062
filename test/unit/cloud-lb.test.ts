import { describe, expect, it } from "vitest";
import type { Obj } from "../../durable-objects/controllers/types.ts";
import { backendsOf, forwardHeaders, matchLB } from "../../workers/lb.ts";

describe("matchLB", () => {
  it.each<[string, string | undefined, unknown]>([
    ["https://kube.example.com/lb/shop/web/", undefined, { namespace: "shop", service: "web", path: "/", prefix: "/lb/shop/web" }],
    [
      "https://kube.example.com/lb/shop/web/a/b?x=1",
      undefined,
      { namespace: "shop", service: "web", path: "/a/b?x=1", prefix: "/lb/shop/web" },
    ],
    ["https://kube.example.com/lb/shop/web", undefined, "redirect"],
    ["https://kube.example.com/api/v1/pods", undefined, undefined],
    ["https://kube.example.com/lb/shop", undefined, undefined],
    ["https://web.shop.lb.example.net/x?y=2", "lb.example.net", { namespace: "shop", service: "web", path: "/x?y=2", prefix: "" }],
    ["https://a.web.shop.lb.example.net/", "lb.example.net", undefined],
    ["https://lb.example.net/", "lb.example.net", undefined],
  ])("%s (domain %s)", (url, domain, want) => {
    expect(matchLB(new URL(url), domain)).toEqual(want);
  });
});

describe("backendsOf", () => {
  const svc = (ports: Obj[]): Obj => ({ spec: { type: "LoadBalancer", ports } });
  const ep: Obj = {
    subsets: [
      {
        addresses: [
          { ip: "10.244.0.1", nodeName: "n1" },
          { ip: "10.244.0.2", nodeName: "n2" },
          { ip: "10.244.0.9" }, // no node: cannot be reached through a tunnel
        ],
        notReadyAddresses: [{ ip: "10.244.0.3", nodeName: "n3" }],
        ports: [
          { name: "http", port: 8080, protocol: "TCP" },
          { name: "metrics", port: 9090, protocol: "TCP" },
        ],
      },
    ],
  };

  it("gives the ready addresses with a node, on the port named like the service's first port", () => {
    expect(backendsOf(svc([{ name: "http", port: 80 }]), ep)).toEqual([
      { ip: "10.244.0.1", port: 8080, nodeName: "n1" },
      { ip: "10.244.0.2", port: 8080, nodeName: "n2" },
    ]);
    expect(backendsOf(svc([{ name: "metrics", port: 9 }]), ep).map((b) => b.port)).toEqual([9090, 9090]);
  });

  it("uses the only port of an unnamed service port", () => {
    const one = { subsets: [{ addresses: [{ ip: "10.244.0.1", nodeName: "n1" }], ports: [{ port: 8080 }] }] };
    expect(backendsOf(svc([{ port: 80 }]), one)).toEqual([{ ip: "10.244.0.1", port: 8080, nodeName: "n1" }]);
  });

  it("has none without Endpoints, ports or ready addresses", () => {
    expect(backendsOf(svc([{ port: 80 }]), undefined)).toEqual([]);
    expect(backendsOf(svc([]), ep)).toEqual([]);
    expect(
      backendsOf(svc([{ name: "http", port: 80 }]), {
        subsets: [{ notReadyAddresses: [{ ip: "1.2.3.4", nodeName: "n" }], ports: [{ name: "http", port: 1 }] }],
      }),
    ).toEqual([]);
  });
});

describe("forwardHeaders", () => {
  const target = { namespace: "shop", service: "web", path: "/", prefix: "/lb/shop/web" };

  it("drops hop-by-hop and Connection-listed headers and adds X-Forwarded-*", () => {
    const req = new Request("https://kube.example.com/lb/shop/web/", {
      headers: {
        accept: "text/html",
        connection: "keep-alive, x-secret-hop",
        "x-secret-hop": "1",
        "keep-alive": "timeout=5",
        "transfer-encoding": "chunked",
        "x-kubeflare-stream": "{}",
        "cf-connecting-ip": "198.51.100.7",
        "x-forwarded-for": "203.0.113.1",
      },
    });
    const h = forwardHeaders(req, target, false);
    expect(Object.fromEntries(h)).toEqual({
      accept: "text/html",
      "cf-connecting-ip": "198.51.100.7",
      "x-forwarded-for": "203.0.113.1, 198.51.100.7",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "kube.example.com",
      "x-forwarded-prefix": "/lb/shop/web",
    });
  });

  it("leaves the WebSocket handshake fields to the agent's client", () => {
    const req = new Request("http://web.shop.lb.example.net/ws", {
      headers: {
        upgrade: "websocket",
        "sec-websocket-key": "k",
        "sec-websocket-version": "13",
        "sec-websocket-protocol": "chat",
        origin: "http://x",
      },
    });
    const h = Object.fromEntries(forwardHeaders(req, { ...target, prefix: "" }, true));
    expect(h).toEqual({ origin: "http://x", "x-forwarded-proto": "http", "x-forwarded-host": "web.shop.lb.example.net" });
  });
});
