// The stream handlers of the agent's tunnel, by stream kind (see types.ts for headers).

import { connectHandler } from "./connect.ts";
import { httpHandler, websocketHandler } from "./http.ts";
import type { StreamHandler } from "./types.ts";

export const HANDLERS: Record<string, StreamHandler> = {
  http: httpHandler,
  websocket: websocketHandler,
  connect: connectHandler,
};
