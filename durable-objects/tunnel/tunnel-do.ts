// NodeTunnelDO: one per node. Skeleton; the implementation follows.

import { DurableObject } from "cloudflare:workers";
import type { Env } from "../../workers/env.ts";

/** What the tunnel knows of its node's machine (the edge cloud provider's instance view). */
export interface TunnelInfo {
  node: string;
  /** An agent WebSocket is open now. */
  connected: boolean;
  /** When an agent last connected / last spoke (ISO), if ever. */
  connectedAt?: string;
  lastSeen?: string;
  /** The agent's public address as the edge saw it (CF-Connecting-IP), its colo and country. */
  remoteAddress?: string;
  colo?: string;
  country?: string;
  /** Open streams. */
  streams: number;
}

export class NodeTunnelDO extends DurableObject<Env> {
  async info(): Promise<TunnelInfo> {
    return { node: "", connected: false, streams: 0 };
  }

  override async fetch(_request: Request): Promise<Response> {
    return new Response("not implemented", { status: 501 });
  }
}
