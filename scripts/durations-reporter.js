// A node:test reporter that prints, once the run is over, how long each test file took (its top-level tests and
// suites added up), slowest first: where the suite's minutes go.
export default async function* durations(source) {
  const byFile = new Map();
  for await (const event of source) {
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.nesting === 0 && event.data.file) {
      const f = event.data.file.replace(`${process.cwd()}/`, '');
      byFile.set(f, (byFile.get(f) ?? 0) + (event.data.details?.duration_ms ?? 0));
    }
  }
  const rows = [...byFile].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((n, [, ms]) => n + ms, 0);
  yield `\ntime per test file (${(total / 60000).toFixed(1)} min in all):\n`;
  for (const [f, ms] of rows) yield `${(ms / 1000).toFixed(1).padStart(8)} s  ${f}\n`;
}
