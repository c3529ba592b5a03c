// Mutation testing (StrykerJS 9.x: 10.x needs Node 22, Depot is on Node 20). `npm run test:mutation`
// runs every module below one after another; `STRYKER_MODULE=<name> npx stryker run` runs one.
//
// How it works here: Stryker instruments the TypeScript sources of one module with all its mutants at
// once (mutation switching: each mutant is guarded by a check of the active mutant's id), copies the
// project into a sandbox, runs `tsc` there once (the buildCommand; instrumented files get
// `// @ts-nocheck`), and then runs the compiled test files from `dist/` with the tap runner
// (`node --test-reporter=tap <file>`, one process per test file). No rebuild per mutant. With
// coverageAnalysis "perTest" each test *file* is one test, so a mutant runs only the files whose
// run reached it. Scores and positions are those of the .ts sources.
//
// Each module has its own list of test files: the ones that exercise it directly (unit and
// conformance tests). Interop, integration and end-to-end tests (child processes, peers, seconds
// each) are left out on purpose: a mutant they alone would kill counts as survived, which is the
// point (issue 19: a unit-level oracle should catch it).
import { fileURLToPath } from 'node:url';

const modules = {
  record: {
    mutate: ['src/dtls/record.ts'],
    tests: ['dist/test/unit/dtls/record*.test.js', 'dist/test/unit/dtls/cid.test.js', 'dist/test/unit/dtls/footprint.test.js'],
  },
  coap: {
    mutate: ['src/coap/codec.ts', 'src/coap/block.ts', 'src/coap/dedup.ts'],
    tests: ['dist/test/unit/coap/*.test.js'],
  },
  content: {
    mutate: ['src/lwm2m/content/*.ts'],
    tests: [
      'dist/test/unit/lwm2m/{cbor,cbor-edges,lwm2mcbor,lwm2mcbor-values,plaintext,senml,tlv,tlv-spec,content-dispatch,cbor-decode-spec,cbor-encode-spec,senml-spec,values,json}.test.js',
      'dist/test/conformance/object9/encoding.test.js',
    ],
  },
  object9: {
    mutate: ['src/lwm2m/objects/software-management/machine.ts', 'src/lwm2m/objects/software-management/transitions.ts'],
    tests: ['dist/test/conformance/object9/*.test.js', 'dist/test/unit/lwm2m/object9-*.test.js'],
  },
};

const name = process.env.STRYKER_MODULE ?? 'record';
const selected = modules[name];
if (!selected) throw new Error(`STRYKER_MODULE=${name}: not one of ${Object.keys(modules).join(', ')}`);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'tap',
  plugins: ['@stryker-mutator/tap-runner'],
  // The sandbox lies inside the work tree, so node_modules is found from it by Node's lookup; tsc
  // is named by absolute path (a node_modules that is itself a symlink is not linked into it).
  buildCommand: `node ${fileURLToPath(new URL('node_modules/typescript/bin/tsc', import.meta.url))} -p tsconfig.json`,
  mutate: selected.mutate,
  tap: {
    testFiles: selected.tests,
    nodeArgs: ['--test-reporter=tap', '-r', '{{hookFile}}', '{{testFile}}'],
  },
  coverageAnalysis: 'perTest',
  // 2 cores shared by several people: one mutant at a time unless told otherwise (--concurrency 2).
  concurrency: 1,
  timeoutMS: 20000,
  timeoutFactor: 2,
  ignorePatterns: ['dist', 'reports', 'docs', 'depot-data', '.stryker-tmp'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
  reporters: ['clear-text', 'progress-append-only', 'json'],
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true, reportMutants: true },
  thresholds: { high: 90, low: 85, break: Number(process.env.STRYKER_BREAK ?? 0) || null },
};
