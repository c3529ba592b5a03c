/**
 * The web console (console/, bundled by `npm run build` into dist/console): served from the
 * HTTP port at `/` (index.html) and `/console/<file>` (its script and style sheet). These are
 * public — the page is the login form; every piece of data comes from the API, which checks
 * the session. Only the files present at start are served (no path from the request touches
 * the file system), with a strict Content-Security-Policy: the console loads nothing from
 * anywhere else and runs no inline script.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** dist/console beside dist/src (this file is dist/src/api/console.js once built). */
export const CONSOLE_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.map': 'application/json' };

export const CONSOLE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

function secure(reply: FastifyReply): FastifyReply {
  return reply.header('content-security-policy', CONSOLE_CSP).header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer').header('x-frame-options', 'DENY');
}

export function registerConsole(app: FastifyInstance, dir: string = CONSOLE_DIR): void {
  const files = new Map<string, { body: Buffer; type: string }>();
  if (existsSync(dir)) {
    for (const name of readdirSync(dir)) {
      const type = TYPES[extname(name)];
      if (type) files.set(name, { body: readFileSync(join(dir, name)), type });
    }
  }
  app.get('/', { config: { public: true, summary: 'The web console (index.html; it signs in with POST /api/v1/login)' } }, async (_request, reply) => {
    const index = files.get('index.html');
    if (!index) return reply.code(503).type('text/plain; charset=utf-8').send('The console is not built: run "npm run build" (it bundles console/ into dist/console).\n');
    return secure(reply).header('cache-control', 'no-cache').type(index.type).send(index.body);
  });
  app.get('/console/:file', { config: { public: true, summary: "The console's bundled script, style sheet and source map" } }, async (request, reply) => {
    const file = files.get((request.params as { file: string }).file);
    if (!file) return reply.code(404).type('application/problem+json').send({ type: 'about:blank', title: 'Not Found', status: 404, detail: 'no such console file', error: 'NOT_FOUND', message: 'no such console file' });
    return secure(reply).header('cache-control', 'no-cache').type(file.type).send(file.body);
  });
}
