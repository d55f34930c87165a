/**
 * @module gateway/routes/dashboard
 * `GET /dashboard` and its assets (src/gateway/dashboard/): the page operators open, served by
 * every gateway with nothing fetched from elsewhere (a Content-Security-Policy of `'self'` says
 * so to the browser). The page holds no data: it asks the API for it with the token the operator
 * types in, so serving it needs no token. The files are read once, at start.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

/** The files the page is made of, and their types: nothing else under /dashboard is served. */
const ASSETS: Record<string, string> = {
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
};

const CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

export function registerDashboard(app: FastifyInstance): void {
  // Beside this module's folder in a checkout (src/) and in a build (dist/src/, copied by `npm run build`).
  const dir = new URL('../dashboard/', import.meta.url);
  const read = (name: string) => readFileSync(new URL(name, dir));
  const page = read('index.html');
  const files = new Map(Object.keys(ASSETS).map((name) => [name, read(name)]));
  const headers = {
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-cache',
  };
  app.get('/dashboard', (_req, reply) => reply.headers(headers).type('text/html; charset=utf-8').send(page));
  app.get<{ Params: { file: string } }>('/dashboard/assets/:file', (req, reply) => {
    const body = files.get(req.params.file);
    if (!body)
      return reply.code(404).send({ code: 'not_found', message: `no dashboard asset ${req.params.file}` });
    return reply.headers(headers).type(ASSETS[req.params.file]!).send(body);
  });
}
