// Byte plumbing shared by the service proxy and the "connect" stream handler: a TCP
// socket to a socket, and a TCP socket to a tunnel stream, both ways, with backpressure
// and half-close. Every function resolves once both directions are finished or torn
// down; none rejects.

import type { Socket } from "node:net";
import { MAX_CHUNK, type TunnelStream } from "../../workers/shared/tunnel.ts";

/**
 * Pipes two sockets into each other. Both must be made with allowHalfOpen: an end from
 * one side is passed on as an end (FIN) to the other, which may go on sending. An error
 * or a reset on either destroys both.
 */
export function pipeSockets(a: Socket, b: Socket): Promise<void> {
  return new Promise((resolve) => {
    let closed = 0;
    const teardown = () => {
      a.destroy();
      b.destroy();
    };
    const onClose = () => {
      teardown();
      if (++closed === 2) resolve();
    };
    a.on("error", teardown);
    b.on("error", teardown);
    a.once("close", onClose);
    b.once("close", onClose);
    a.pipe(b);
    b.pipe(a);
  });
}

/** Resolves when the socket can take more (drain), or is gone. */
function writable(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off("drain", done);
      socket.off("close", done);
      resolve();
    };
    socket.on("drain", done);
    socket.on("close", done);
  });
}

/**
 * Pipes a socket (made with allowHalfOpen) and a tunnel stream into each other: socket
 * bytes go out in chunks of at most MAX_CHUNK (the socket is paused while the stream has
 * no credit), stream chunks are written to the socket (the stream is not read while the
 * socket's buffer is full, which withholds the peer's credit). The socket's end becomes
 * the stream's end and the other way round; an error on the socket resets the stream, a
 * reset of the stream destroys the socket.
 */
export function pipeSocketStream(socket: Socket, stream: TunnelStream): Promise<void> {
  let failed = false;
  const fail = (reason: string) => {
    if (failed) return;
    failed = true;
    stream.reset(reason);
    socket.destroy();
  };

  const up = new Promise<void>((resolve) => {
    let busy = false;
    let ended = false;
    const finish = () => {
      if (!failed) stream.end();
      resolve();
    };
    socket.on("data", (buf: Buffer) => {
      socket.pause();
      busy = true;
      (async () => {
        for (let off = 0; off < buf.length; off += MAX_CHUNK) await stream.write(buf.subarray(off, off + MAX_CHUNK));
      })().then(
        () => {
          busy = false;
          if (ended) finish();
          else socket.resume();
        },
        (e) => {
          fail(e instanceof Error ? e.message : String(e));
          resolve();
        },
      );
    });
    socket.on("end", () => {
      ended = true;
      if (!busy) finish();
    });
    socket.on("error", (e) => {
      fail(e.message);
      resolve();
    });
    socket.on("close", () => {
      // Closed without an end (destroyed): the stream cannot complete normally.
      if (!ended) fail("connection closed");
      resolve();
    });
  });

  const down = (async () => {
    try {
      for (;;) {
        const chunk = await stream.read();
        if (chunk === null) break;
        if (socket.destroyed) return;
        if (!socket.write(chunk)) await writable(socket);
      }
      socket.end();
    } catch {
      // Reset by the peer (or by fail above).
      socket.destroy();
    }
  })();

  return Promise.all([up, down]).then(() => {
    if (!socket.destroyed && socket.writableFinished && socket.readableEnded) socket.destroy();
  });
}
