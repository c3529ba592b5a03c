// Summarises Stryker JSON reports (reports/mutation/<module>.json): the score of each file and the
// mutants that survived or had no coverage, one line each (file:line:column mutator → replacement).
// Usage: node scripts/mutation-report.mjs [module ...]   (default: every report there is)
import { existsSync, readdirSync, readFileSync } from 'node:fs';

const dir = 'reports/mutation';
const names = process.argv.slice(2).length > 0 ? process.argv.slice(2) : existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)) : [];
const undetected = new Set(['Survived', 'NoCoverage']);
const detected = new Set(['Killed', 'Timeout']);
for (const name of names) {
  const report = JSON.parse(readFileSync(`${dir}/${name}.json`, 'utf8'));
  for (const [file, { source, mutants }] of Object.entries(report.files)) {
    const lines = source.split('\n');
    const killed = mutants.filter((m) => detected.has(m.status)).length;
    const counted = mutants.filter((m) => detected.has(m.status) || undetected.has(m.status)).length;
    const score = counted === 0 ? 100 : (100 * killed) / counted;
    console.log(`${name}  ${file}: ${score.toFixed(2)} % (${killed} killed of ${counted}; ${mutants.length - counted} ignored/errors)`);
    for (const m of mutants.filter((m) => undetected.has(m.status)).sort((a, b) => a.location.start.line - b.location.start.line)) {
      const { line, column } = m.location.start;
      const original = lines[line - 1]?.trim().slice(0, 90);
      console.log(`  ${m.status === 'NoCoverage' ? 'no-cov ' : 'survive'} ${file}:${line}:${column} ${m.mutatorName}: ${JSON.stringify(m.replacement ?? '').slice(0, 70)}   | ${original}`);
    }
  }
}
