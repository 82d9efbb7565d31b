// Small helpers every benchmark shares: percentiles, rates and one printed line per figure.

/** The p-th percentile (0..100) of samples, nearest-rank. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function fmt(n: number, digits = 2): string {
  if (!Number.isFinite(n)) return String(n);
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits);
}

/** Prints `label: value unit` aligned, and returns the value for ratios. */
export function report(label: string, value: number, unit: string): number {
  console.log(`  ${label.padEnd(58)} ${fmt(value).padStart(12)} ${unit}`);
  return value;
}

export function ratio(label: string, ours: number, baseline: number, target?: string): void {
  const r = ours / baseline;
  console.log(`  ${label.padEnd(58)} ${r.toFixed(2).padStart(12)} x${target ? `   (target ${target})` : ''}`);
}

export function heading(text: string): void {
  console.log(`\n${text}\n${'-'.repeat(text.length)}`);
}

/** Runs `n` tasks with at most `concurrency` in flight; returns elapsed ms. */
export async function runConcurrently(
  n: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const i = next++;
        await task(i);
      }
    }),
  );
  return performance.now() - start;
}
