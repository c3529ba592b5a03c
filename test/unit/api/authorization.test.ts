/** installAuthorization on a bare Fastify app over a real socket: routes added later, in plugins or with their own hooks are protected too. */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { AuthFailureThrottle, installAuthorization, registeredRoutes } from '../../../src/api/auth.js';
import { rawRequest } from '../../support/api-client.js';

test('a route registered after installAuthorization — directly, in a plugin, with its own onRequest hook — needs the token; only config.public routes do not', async () => {
  const app = Fastify();
  installAuthorization(app, { token: 'secret', now: Date.now, throttle: new AuthFailureThrottle({ maxFailures: 1000 }) });
  let ownHookRan = 0;
  app.get('/later', () => Promise.resolve({ served: 'later' }));
  app.post('/later-with-hook', { onRequest: (_request, _reply, done) => ((ownHookRan += 1), done()) }, () => Promise.resolve({ served: 'hooked' }));
  await app.register(
    (scope, _options, done) => {
      scope.get('/inner', () => Promise.resolve({ served: 'inner' }));
      done();
    },
    { prefix: '/plugin' },
  );
  app.get('/open', { config: { public: true } }, () => Promise.resolve({ served: 'open' }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const port = (app.server.address() as AddressInfo).port;
    for (const [method, target] of [['GET', '/later'], ['HEAD', '/later'], ['POST', '/later-with-hook'], ['GET', '/plugin/inner'], ['GET', '/plugin/%69nner'], ['GET', `http://127.0.0.1:${port}/later`]] as const) {
      assert.equal((await rawRequest(port, method, target)).status, 401, `${method} ${target}`);
      assert.equal((await rawRequest(port, method, target, { headers: { authorization: 'Bearer secrets' } })).status, 401, `${method} ${target}`);
      assert.equal((await rawRequest(port, method, target, { headers: { authorization: 'bearer secret' } })).status, 200, `${method} ${target}`);
    }
    // The route's own hook runs after the check, and only for authorized requests.
    assert.equal(ownHookRan, 1);
    assert.equal((await rawRequest(port, 'GET', '/open')).status, 200);
    assert.deepEqual(
      registeredRoutes(app).map((r) => `${r.method} ${r.url}${r.public ? ' (public)' : ''}`).sort(),
      ['GET /later', 'GET /open (public)', 'GET /plugin/inner', 'HEAD /later', 'HEAD /open (public)', 'HEAD /plugin/inner', 'POST /later-with-hook'],
    );
  } finally {
    await app.close();
  }
});
