// The stream handlers of the agent's tunnel, by stream kind (see types.ts for headers).

import { connectHandler } from "./connect.ts";
import type { StreamHandler } from "./types.ts";

export const HANDLERS: Record<string, StreamHandler> = {
  connect: connectHandler,
};
