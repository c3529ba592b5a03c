// Bundles the web console (console/) into dist/console: one script (Preact + htm + the pages,
// minified, no CDN), the style sheet and index.html. Run by `npm run build` after tsc.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const out = 'dist/console';
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ['console/src/main.js'],
  bundle: true,
  format: 'esm',
  minify: true,
  sourcemap: true,
  target: ['chrome110', 'firefox110', 'safari16'],
  outfile: `${out}/app.js`,
  logLevel: 'warning',
  legalComments: 'linked',
});
copyFileSync('console/index.html', `${out}/index.html`);
copyFileSync('console/style.css', `${out}/app.css`);
