import { defineCcatConfig } from '@ccat/vitest-config';

// Regenerating renders sample mails and reads the workspace's sources; give it time on a slow machine.
export default defineCcatConfig({ test: { testTimeout: 120_000 } });
