// The stream handlers of the agent's tunnel, by stream kind (see types.ts for headers).

import { connectHandler } from "./connect.ts";
import { attachHandler, execHandler } from "./exec.ts";
import { httpHandler, websocketHandler } from "./http.ts";
import { portForwardHandler } from "./portforward.ts";
import type { StreamHandler } from "./types.ts";

export const HANDLERS: Record<string, StreamHandler> = {
  http: httpHandler,
  websocket: websocketHandler,
  exec: execHandler,
  attach: attachHandler,
  connect: connectHandler,
  portforward: portForwardHandler,
};
