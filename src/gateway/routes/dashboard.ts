/**
 * @module gateway/routes/dashboard
 * `GET /dashboard` and its assets: the page operators open, served by every gateway with nothing
 * fetched from elsewhere (a Content-Security-Policy of `'self'` says so to the browser). The page's
 * own modules and styles are the .js and .css files of src/gateway/dashboard/; the charting library
 * (uPlot) is served from its installed package. The page holds no data: it asks the API for it with
 * the token the operator types in, so serving it needs no token. The files are read once, at start.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Third-party files the page loads, by the name it asks for: nothing else under vendor/ is served. */
const VENDOR: Record<string, string> = {
  'uPlot.esm.js': 'uplot/dist/uPlot.esm.js',
  'uPlot.min.css': 'uplot/dist/uPlot.min.css',
};

const CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

interface Asset {
  type: string;
  body: Buffer;
}

export function registerDashboard(app: FastifyInstance): void {
  // Beside this module's folder in a checkout (src/) and in a build (dist/src/, copied by `npm run build`).
  const dir = new URL('../dashboard/', import.meta.url);
  const page = readFileSync(new URL('index.html', dir));
  const assets = new Map<string, Asset>(
    readdirSync(dir)
      .filter((name) => TYPES[extname(name)])
      .map((name) => [name, { type: TYPES[extname(name)]!, body: readFileSync(new URL(name, dir)) }]),
  );
  const require = createRequire(import.meta.url);
  const vendor = new Map<string, Asset>(
    Object.entries(VENDOR).map(([name, path]) => [
      name,
      { type: TYPES[extname(name)]!, body: readFileSync(require.resolve(path)) },
    ]),
  );
  const headers = {
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-cache',
  };
  app.get('/dashboard', (_req, reply) => reply.headers(headers).type('text/html; charset=utf-8').send(page));
  const serve =
    (files: Map<string, Asset>) =>
    (req: FastifyRequest<{ Params: { file: string } }>, reply: FastifyReply) => {
      const asset = files.get(req.params.file);
      if (!asset)
        return reply.code(404).send({ code: 'not_found', message: `no dashboard asset ${req.params.file}` });
      return reply.headers(headers).type(asset.type).send(asset.body);
    };
  app.get<{ Params: { file: string } }>('/dashboard/assets/:file', serve(assets));
  app.get<{ Params: { file: string } }>('/dashboard/vendor/:file', serve(vendor));
}
