/**
 * Sends a package file to a device over HTTP, whole or from a byte range (RFC 9110 §14:
 * `Range: bytes=N-` or `bytes=N-M` to resume), streamed from disk. Used by the capability links
 * (/pkg/<token> for Object 9 pulls, /d/<token> for SMS links).
 */
import { createReadStream } from 'node:fs';
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface RangeListeners {
  /** After each chunk: bytes of the file up to the end of what was handed to the socket. */
  progress?: (sent: number) => void;
  /** The stream reached its end, with the same count. */
  end?: (sent: number) => void;
}

export function sendFileRange(request: FastifyRequest, reply: FastifyReply, file: { path: string; size: number }, on: RangeListeners = {}): FastifyReply {
  const { path, size } = file;
  let start = 0;
  let end = size - 1;
  const range = request.headers.range;
  if (range !== undefined) {
    const m = /^bytes=(\d+)-(\d*)$/.exec(range.trim());
    if (!m || Number(m[1]) >= size) return reply.code(416).header('content-range', `bytes */${size}`).send({ error: 'RANGE_NOT_SATISFIABLE', message: `the package has ${size} bytes` });
    start = Number(m[1]);
    if (m[2]) end = Math.min(end, Number(m[2]));
    if (end < start) return reply.code(416).header('content-range', `bytes */${size}`).send({ error: 'RANGE_NOT_SATISFIABLE', message: 'empty range' });
    reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
  }
  reply.header('accept-ranges', 'bytes').header('content-type', 'application/octet-stream').header('content-length', String(end - start + 1));
  const stream = createReadStream(path, { start, end });
  let sent = start;
  stream.on('data', (chunk) => {
    sent += chunk.length;
    on.progress?.(sent);
  });
  if (on.end) stream.on('end', () => on.end!(sent));
  return reply.send(stream);
}
