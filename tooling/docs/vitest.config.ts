import { defineCcatConfig } from '@ccat/vitest-config';

// Regenerating parses the workspace's TypeScript sources; give it time on a slow machine.
export default defineCcatConfig({ test: { testTimeout: 120_000 } });
