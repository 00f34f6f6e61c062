import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  initialProbeState,
  nextProbe,
  type ProbeState,
  probeHandler,
  probeTimeoutMs,
  recordProbe,
  resolvePort,
  runExec,
  runHttpGet,
  runTcpSocket,
} from "../../node-agent/probes.ts";

type Obj = Record<string, any>;

const T0 = Date.parse("2025-03-01T12:00:00Z");
const S = 1000;

function newProbe(extra: Obj = {}): Obj {
  return { httpGet: { path: "/healthz", port: 8080 }, ...extra };
}

function newState(o: Partial<ProbeState> = {}): ProbeState {
  return { ...initialProbeState(), ...o };
}

describe("nextProbe", () => {
  const table: [desc: string, probe: Obj | undefined, state: ProbeState | undefined, now: number, due: number | undefined][] = [
    ["no probe", undefined, undefined, T0, undefined],
    ["a probe without a handler", { periodSeconds: 5 }, undefined, T0, undefined],
    ["first run right at start without initialDelaySeconds", newProbe(), undefined, T0, T0],
    ["first run after initialDelaySeconds", newProbe({ initialDelaySeconds: 15 }), undefined, T0, T0 + 15 * S],
    ["next run periodSeconds after the last", newProbe({ periodSeconds: 5 }), newState({ lastRun: T0 + 20 * S }), T0 + 21 * S, T0 + 25 * S],
    ["default period of 10 s", newProbe(), newState({ lastRun: T0 + 20 * S }), T0 + 21 * S, T0 + 30 * S],
    ["never before the initial delay", newProbe({ initialDelaySeconds: 60 }), newState({ lastRun: T0 + 1 * S }), T0 + 2 * S, T0 + 60 * S],
    ["a last run in the future (clock went back): now", newProbe(), newState({ lastRun: T0 + 100 * S }), T0 + 50 * S, T0 + 50 * S],
  ];
  it.each(table)("%s", (_desc, probe, state, now, due) => {
    expect(nextProbe(probe, state, T0, now)).toBe(due);
  });
});

describe("recordProbe", () => {
  const run = (probe: Obj, results: boolean[]): ProbeState => {
    let st: ProbeState | undefined;
    results.forEach((ok, i) => {
      st = recordProbe(probe, st, ok, T0 + i * S, ok ? undefined : `failure ${i}`);
    });
    return st!;
  };
  const table: [desc: string, probe: Obj, results: boolean[], result: ProbeState["result"]][] = [
    ["nothing known before a threshold is reached", newProbe({ failureThreshold: 3 }), [false, false], "unknown"],
    ["failure after failureThreshold consecutive failures", newProbe({ failureThreshold: 3 }), [false, false, false], "failure"],
    ["default failureThreshold of 3", newProbe(), [false, false, false], "failure"],
    ["a success resets the failure count", newProbe({ failureThreshold: 3 }), [false, false, true, false, false], "success"],
    ["success after successThreshold consecutive successes", newProbe({ successThreshold: 2 }), [true, true], "success"],
    ["not yet with fewer", newProbe({ successThreshold: 2 }), [true], "unknown"],
    ["a reached result holds until the other threshold", newProbe({ failureThreshold: 2 }), [true, false], "success"],
    ["then flips", newProbe({ failureThreshold: 2 }), [true, false, false], "failure"],
  ];
  it.each(table)("%s", (_desc, probe, results, result) => {
    expect(run(probe, results).result).toBe(result);
  });

  it("counts runs, remembers the last time and failure message, and marks started on success", () => {
    const st = run(newProbe({ failureThreshold: 5 }), [false, false]);
    expect(st).toEqual({ successes: 0, failures: 2, result: "unknown", lastRun: T0 + S, message: "failure 1" });
    const ok = recordProbe(newProbe(), st, true, T0 + 2 * S);
    expect(ok).toEqual({ successes: 1, failures: 0, result: "success", lastRun: T0 + 2 * S, started: true });
  });

  it("does not modify the state passed in", () => {
    const st = newState();
    recordProbe(newProbe(), st, false, T0);
    expect(st).toEqual(newState());
  });
});

describe("probe helpers", () => {
  const ports: [port: unknown, expected: number | undefined][] = [
    [8080, 8080],
    ["8080", 8080],
    ["http", 80],
    ["metrics", 9090],
    ["nope", undefined],
    [0, undefined],
    [70000, undefined],
  ];
  it.each(ports)("resolvePort(%j) = %j", (port, expected) => {
    const container = {
      ports: [
        { name: "http", containerPort: 80 },
        { name: "metrics", containerPort: 9090 },
      ],
    };
    expect(resolvePort(port, container)).toBe(expected);
  });

  it("names the handler and the timeout", () => {
    expect(probeHandler({ exec: { command: ["true"] } })).toBe("exec");
    expect(probeHandler({ tcpSocket: { port: 1 } })).toBe("tcpSocket");
    expect(probeHandler({ grpc: { port: 1 } })).toBe("grpc");
    expect(probeHandler(newProbe())).toBe("httpGet");
    expect(probeTimeoutMs({})).toBe(1000);
    expect(probeTimeoutMs({ timeoutSeconds: 3 })).toBe(3000);
  });
});

describe("runHttpGet", () => {
  let server: http.Server;
  let port = 0;
  const seen: Obj[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push({ url: req.url, headers: req.headers });
      if (req.url === "/slow") return; // never answers
      const code = Number(req.url?.slice(1)) || 200;
      if (code >= 300 && code < 400) res.setHeader("Location", "/elsewhere");
      res.writeHead(code);
      res.end("body");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const table: [path: string, ok: boolean, message: string][] = [
    ["/200", true, ""],
    ["/204", true, ""],
    ["/302", true, ""],
    ["/404", false, "HTTP probe failed with statuscode: 404"],
    ["/500", false, "HTTP probe failed with statuscode: 500"],
  ];
  it.each(table)("GET %s → ok %s", async (path, ok, message) => {
    expect(await runHttpGet({ httpGet: { path, port, scheme: "HTTP" } }, "127.0.0.1", 2000)).toEqual({ ok, message });
  });

  it("sends kube-probe's User-Agent and the probe's headers", async () => {
    seen.length = 0;
    await runHttpGet({ httpGet: { path: "/200", port, httpHeaders: [{ name: "X-Probe", value: "yes" }] } }, "127.0.0.1", 2000);
    expect(seen[0].headers["user-agent"]).toMatch(/^kube-probe\//);
    expect(seen[0].headers["x-probe"]).toBe("yes");
  });

  it("fails after the timeout when the server does not answer", async () => {
    const r = await runHttpGet({ httpGet: { path: "/slow", port } }, "127.0.0.1", 100);
    expect(r.ok).toBe(false);
    expect(r.message).toBe(
      `Get "http://127.0.0.1:${port}/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`,
    );
  });

  it("fails when nothing listens", async () => {
    const closed = await freePort();
    const r = await runHttpGet({ httpGet: { path: "/", port: closed } }, "127.0.0.1", 2000);
    expect(r).toEqual({
      ok: false,
      message: `Get "http://127.0.0.1:${closed}/": dial tcp 127.0.0.1:${closed}: connect: connection refused`,
    });
  });

  it("fails without throwing on a named port the caller did not resolve", async () => {
    const r = await runHttpGet({ httpGet: { path: "/", port: "http" } }, "127.0.0.1", 2000);
    expect(r.ok).toBe(false);
  });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

describe("runTcpSocket", () => {
  it("succeeds when the port accepts a connection", async () => {
    const s = net.createServer((c) => c.end());
    await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    const port = (s.address() as AddressInfo).port;
    try {
      expect(await runTcpSocket({ tcpSocket: { port } }, "127.0.0.1", 2000)).toEqual({ ok: true, message: "" });
    } finally {
      await new Promise((resolve) => s.close(resolve));
    }
  });

  it("fails when nothing listens", async () => {
    const port = await freePort();
    expect(await runTcpSocket({ tcpSocket: { port } }, "127.0.0.1", 2000)).toEqual({
      ok: false,
      message: `dial tcp 127.0.0.1:${port}: connect: connection refused`,
    });
  });

  it("uses the probe's host over the pod IP", async () => {
    const port = await freePort();
    const r = await runTcpSocket({ tcpSocket: { port, host: "127.0.0.1" } }, "203.0.113.1", 2000);
    expect(r.message).toContain("127.0.0.1");
  });
});

describe("runExec", () => {
  const probe = { exec: { command: ["cat", "/tmp/healthy"] } };
  const table: [
    desc: string,
    exec: (...a: any[]) => Promise<{ exitCode: number; output: string }>,
    expected: { ok: boolean; message: string },
  ][] = [
    ["exit 0", async () => ({ exitCode: 0, output: "" }), { ok: true, message: "" }],
    [
      "non-zero exit: the output",
      async () => ({ exitCode: 1, output: "cat: /tmp/healthy: No such file or directory\n" }),
      { ok: false, message: "cat: /tmp/healthy: No such file or directory" },
    ],
    [
      "non-zero exit without output",
      async () => ({ exitCode: 2, output: "" }),
      { ok: false, message: 'command "cat /tmp/healthy" exited with 2' },
    ],
    [
      "the runtime throws",
      async () => {
        throw new Error("container not running");
      },
      { ok: false, message: "container not running" },
    ],
  ];
  it.each(table)("%s", async (_desc, exec, expected) => {
    expect(await runExec(probe, "c1", exec, 1000)).toEqual(expected);
  });

  it("passes the container id, command and timeout to the runtime", async () => {
    const calls: unknown[] = [];
    await runExec(
      probe,
      "c1",
      async (...a) => {
        calls.push(a);
        return { exitCode: 0, output: "" };
      },
      3000,
    );
    expect(calls).toEqual([["c1", ["cat", "/tmp/healthy"], 3000]]);
  });

  it("gives up on a runtime that never answers", async () => {
    const r = await runExec(probe, "c1", () => new Promise(() => {}), 10);
    expect(r).toEqual({ ok: false, message: 'command "cat /tmp/healthy" timed out' });
  });
});
